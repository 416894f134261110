"""A deterministic generator of loan applications and their default outcomes, with an optional dated drift.

Each day is generated in fixed-size chunks; chunk ``k`` of day ``d`` draws from its own random streams seeded by
``(seed, d.toordinal(), k, stream)``, so a day's rows depend only on the day and the settings, never on which
other days were generated or how the caller consumes the chunks. Outcomes regenerate the features of their
application day chunk by chunk (the same draws) instead of storing them.

Every application gets exactly one outcome, ``label_delay_days`` after it was made: ``outcomes(day)`` holds the
applications of ``day - label_delay_days``. Days before ``start_date`` have no applications, so
``applications`` and ``outcomes`` yield no chunks for them.

This module seeds the streams, chunks the days and shapes the tables; what is drawn (applicant features, the
default probability, the covariate and concept drifts) is in resources/source/synthetic_draws.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, field_validator

from resources.source.base import as_day
from resources.source.synthetic_draws import default_probability, draw_features

if TYPE_CHECKING:  # numpy and pandas are imported inside the functions: this module is imported when definitions load
    import numpy as np
    import pandas as pd

CHUNK_ROWS = 100_000
SECONDS_PER_DAY = 86_400
_FEATURE_STREAM, _OUTCOME_STREAM = 0, 1

# The columns each table of this generator yields, in order (the declarations in dbt_project/models/staging/loans/
# __sources.yml say their types and rules; the raw layer checks every chunk against them).
APPLICATION_COLUMNS = (
    "application_id",
    "applied_at",
    "application_date",
    "annual_income",
    "loan_amount",
    "term_months",
    "interest_rate",
    "credit_score",
    "debt_to_income",
    "employment_length_years",
    "home_ownership",
    "purpose",
    "state",
    "age",
    "open_credit_lines",
    "delinquencies_2y",
    "revolving_utilization",
    "inquiries_6m",
    "channel",
)
OUTCOME_COLUMNS = ("application_id", "application_date", "outcome_date", "observed_at", "defaulted")
TABLES = ("applications", "outcomes")


class SyntheticSource(dg.ConfigurableResource):
    """Synthetic loan applications and outcomes; see the module docstring for the guarantees."""

    rows_per_day: int = Field(default=2000, ge=0, description="Applications per day.")
    seed: int = Field(default=7, ge=0, description="Base seed; every day and chunk derives its own stream from it.")
    label_delay_days: int = Field(default=30, ge=1, description="Days from application to known outcome.")
    start_date: str | None = Field(default=None, description="ISO day of the first applications; none before it.")
    drift_start: str | None = Field(default=None, description="ISO day from which covariate drift applies.")
    concept_drift_start: str | None = Field(
        default=None, description="ISO day from which the feature -> default relationship changes."
    )

    @field_validator("start_date", "drift_start", "concept_drift_start")
    @classmethod
    def _iso_day(cls, value: str | None) -> str | None:
        if value is not None:
            date.fromisoformat(value)  # fail when the resource is built, not mid-run
        return value

    def read(self, table: str, day: date) -> Iterator[pd.DataFrame]:
        """The generated rows of ``table`` (one of ``TABLES``) for ``day``, in chunks."""
        if table == "applications":
            return self.applications(day)
        if table == "outcomes":
            return self.outcomes(day)
        raise KeyError(f"the synthetic_loans generator has no table {table!r}: it makes {', '.join(TABLES)}")

    def applications(self, day: date) -> Iterator[pd.DataFrame]:
        import numpy as np
        import pandas as pd

        day = as_day(day)
        if not self._has_applications(day):
            return
        day_start = np.datetime64(day, "ns")
        for lo, hi, features in self._feature_chunks(day):
            slot_seconds = (np.arange(lo, hi) + features.pop("time_offset")) * (SECONDS_PER_DAY / self.rows_per_day)
            frame = pd.DataFrame(
                {
                    "application_id": self._ids(day, lo, hi),
                    # Row i falls in the i-th equal slice of the day, so applied_at rises with application_id.
                    "applied_at": day_start + (slot_seconds * 1e6).astype("timedelta64[us]"),
                    "application_date": np.full(hi - lo, day_start),
                    **features,
                }
            )
            yield frame[list(APPLICATION_COLUMNS)]

    def outcomes(self, day: date) -> Iterator[pd.DataFrame]:
        import numpy as np
        import pandas as pd

        day = as_day(day)
        applied = day - timedelta(days=self.label_delay_days)
        if not self._has_applications(applied):
            return
        concept_drifted = self._on_or_after(applied, self.concept_drift_start)
        day_start = np.datetime64(day, "ns")
        for k, (lo, hi, features) in enumerate(self._feature_chunks(applied)):
            rng = self._rng(applied, k, _OUTCOME_STREAM)
            defaulted = rng.random(hi - lo) < default_probability(features, concept_drifted)
            observed_seconds = rng.random(hi - lo) * SECONDS_PER_DAY
            frame = pd.DataFrame(
                {
                    "application_id": self._ids(applied, lo, hi),
                    "application_date": np.full(hi - lo, np.datetime64(applied, "ns")),
                    "outcome_date": np.full(hi - lo, day_start),
                    "observed_at": day_start + (observed_seconds * 1e6).astype("timedelta64[us]"),
                    "defaulted": defaulted,
                }
            )
            yield frame[list(OUTCOME_COLUMNS)]

    def describe(self) -> str:
        parts = [f"synthetic seed={self.seed} rows/day={self.rows_per_day} label_delay={self.label_delay_days}d"]
        for name in ("start_date", "drift_start", "concept_drift_start"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)}")
        return " ".join(parts)

    def _feature_chunks(self, day: date) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        drifted = self._on_or_after(day, self.drift_start)
        for k, lo in enumerate(range(0, self.rows_per_day, CHUNK_ROWS)):
            hi = min(lo + CHUNK_ROWS, self.rows_per_day)
            yield lo, hi, draw_features(self._rng(day, k, _FEATURE_STREAM), hi - lo, drifted)

    def _rng(self, day: date, chunk: int, stream: int) -> np.random.Generator:
        import numpy as np

        return np.random.default_rng(np.random.SeedSequence([self.seed, day.toordinal(), chunk, stream]))

    @staticmethod
    def _ids(day: date, lo: int, hi: int) -> list[str]:
        prefix = f"{day:%Y%m%d}-"
        return [f"{prefix}{i:07d}" for i in range(lo, hi)]

    def _has_applications(self, day: date) -> bool:
        return self.start_date is None or self._on_or_after(day, self.start_date)

    @staticmethod
    def _on_or_after(day: date, start: str | None) -> bool:
        return start is not None and day >= date.fromisoformat(start)
