"""Where raw rows come from: the one ``source`` resource reads any declared table for a day from its declared
origin, the landing folder or a generator (the built-in synthetic loans), so both live side by side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from resources.source.base import SourceDataError, as_day
from resources.source.schema import LANDING, RawTable
from resources.source.synthetic import SyntheticSource

if TYPE_CHECKING:
    import pandas as pd

    from resources.settings import Settings

__all__ = ["RawSources", "SourceDataError", "SourceDay", "SyntheticSource", "build_source"]


@dataclass(frozen=True)
class SourceDay:
    """One table's rows for one day: ``chunks`` is None when a landing table has no file that day (a generator
    always yields, maybe no chunks: it decides which days have rows); ``origin`` names the file or generator."""

    chunks: Iterator[pd.DataFrame] | None
    origin: str
    file: Path | None = None


class RawSources(dg.ConfigurableResource):
    """Reads declared raw tables: ``landing`` tables from ``landing_dir``, generated ones from their generator."""

    landing_dir: str = Field(description="Landing folder: <landing_dir>/<source>/<table>/<day>.csv|.parquet")
    synthetic_loans: SyntheticSource = Field(
        description="The built-in synthetic loan generator (origin synthetic_loans)"
    )

    def read(self, table: RawTable, day: date) -> SourceDay:
        day = as_day(day)
        if table.origin == LANDING:
            from resources.source.landing import LandingFolder

            folder = LandingFolder(self.landing_dir)
            file = folder.file_for(table, day)
            if file is None:
                expected = " or ".join(str(p) for p in folder.candidates(table, day))
                return SourceDay(None, f"no file (expected {expected})")
            return SourceDay(folder.read(table, day, file), str(file), file)
        generator = self.generator(table.origin)
        return SourceDay(generator.read(table.name, day), f"generator {table.origin} ({generator.describe()})")

    def generator(self, name: str) -> SyntheticSource:
        if name == "synthetic_loans":
            return self.synthetic_loans
        raise SourceDataError(f"no generator named {name!r}")

    def describe(self, table: RawTable) -> str:
        if table.origin == LANDING:
            return f"landing folder {Path(self.landing_dir) / table.source / table.name}"
        return f"generator {table.origin} ({self.generator(table.origin).describe()})"


def build_source(settings: Settings) -> RawSources:
    return RawSources(
        landing_dir=str(settings.landing_dir),
        synthetic_loans=SyntheticSource(
            rows_per_day=settings.rows_per_day,
            seed=settings.seed,
            label_delay_days=settings.label_delay_days,
            start_date=_iso(settings.start_date),
            drift_start=_iso(settings.drift_start),
            concept_drift_start=_iso(settings.concept_drift_start),
        ),
    )


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
