"""How far ordinary days drift, so that a day is judged against what ordinary days do, not against a fixed number.

A column whose values move with the day (weather, a day-level price, the score that follows them) drifts on every
ordinary day against a reference of many days: judged at the spec's fixed threshold it fails every day, and an alarm
that fires daily is ignored. The version's reference sample (``reference: training``) keeps the day of each row, so
each of its days can be compared with the rest of it, by the column's own method. A distance-method column's
threshold is raised to ``MARGIN`` times the largest drift of an ordinary reference day when that is higher; it is
never lowered, a threshold the spec sets for the column itself is kept as written, and p-value methods are left as
they are (their p-values shrink with the row count, not with the day). The score's warn and error thresholds are
raised alike. With ``MIN_DAYS`` days or fewer in the reference (or none recorded: versions trained before the day was
kept), nothing is calibrated.

The drifts are Evidently's own statistics (its stat tests by name, as its report runs them), without building a
report per reference day (about a second each): ``MIN_DAYS``..``MAX_DAYS`` days x the checked columns, the rest of
the reference sampled to ``REST_ROWS`` rows, about a second in all, once per version in a run. The stat tests come
from ``evidently.legacy.calculations.stattests`` (``get_stattest``, in its ``__all__``): the module Evidently's
"Customize Data Drift" page documents for drift methods, which 0.7 keeps only under ``legacy``; no drift method is
reachable outside ``legacy`` but through a report (ARCHITECTURE.md's register; the test that breaks if an upgrade
changes it: tests/test_ordinary_drift.py, whose figures are held against the report's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from assets.ml.spec import Thresholds

DAY_COLUMN = "nightjar_day"  # the reference sample's day of each row, written at training (run_artifacts.py)
MARGIN = 1.25
MIN_DAYS = 3
MAX_DAYS = 30
REST_ROWS = 5000


@dataclass(frozen=True)
class OrdinaryDrift:
    """The largest drift of one reference day against the rest, per column calibrated and for the score."""

    days: int
    columns: dict[str, float] = field(default_factory=dict)
    score: float | None = None

    def column_thresholds(self, base: Mapping[str, float]) -> dict[str, float]:
        """``base`` (each calibrated column's threshold) raised where ordinary days drift further."""
        return {c: max(base[c], MARGIN * self.columns[c]) for c in base if c in self.columns}

    def raised(self, base: Mapping[str, float]) -> dict[str, float]:
        """The columns whose threshold :meth:`column_thresholds` raises, with their new threshold."""
        return {c: t for c, t in self.column_thresholds(base).items() if t > base[c]}

    def score_thresholds(self, thresholds: Thresholds) -> Thresholds:
        """The score's warn and error raised alike (error keeps its ratio to warn), or as given."""
        if self.score is None or MARGIN * self.score <= thresholds.warn:
            return thresholds
        warn = MARGIN * self.score
        return thresholds.model_copy(
            update={"warn": warn, "error": max(thresholds.error, warn * thresholds.error / thresholds.warn)}
        )

    def describe(self, base: Mapping[str, float], score: Thresholds | None = None) -> str:
        raised = self.raised(base)
        parts = [f"{c} {base[c]:g} -> {t:.3g}" for c, t in raised.items()]
        if score is not None and self.score_thresholds(score).warn > score.warn:
            parts.append(f"score warn {score.warn:g} -> {self.score_thresholds(score).warn:.3g}")
        if not parts:
            return f"none raised (ordinary days of the reference, {self.days}, drift less than the thresholds)"
        return f"raised to {MARGIN:g}x the largest drift of {self.days} ordinary reference days: " + ", ".join(parts)


def ordinary_drift(
    reference: pd.DataFrame,
    methods: Mapping[str, tuple[str, str]],
    score_column: str | None,
    score_method: tuple[str, str] = ("wasserstein", "num"),
) -> OrdinaryDrift | None:
    """Per column of ``methods`` (column -> (Evidently method, "num" or "cat")) with a distance method, and for
    ``score_column`` (by ``score_method``: Wasserstein, or Jensen-Shannon for a predicted class), the largest drift
    of one reference day against the rest; None when the reference has no days recorded or too few."""
    if DAY_COLUMN not in reference.columns:
        return None
    days = sorted(reference[DAY_COLUMN].dropna().unique())
    if len(days) <= MIN_DAYS:
        return None
    from evidently.legacy.calculations.stattests import get_stattest

    from assets.ml.spec import DRIFT_METHODS

    judged = {c: m for c, m in methods.items() if DRIFT_METHODS[m[0]][1] == "distance" and c in reference}
    if score_column is not None and score_column in reference and reference[score_column].notna().any():
        judged[score_column] = score_method
    largest: dict[str, float] = {}
    for day in days[-MAX_DAYS:]:
        on_day = reference[DAY_COLUMN] == day
        rest = reference[~on_day]
        if len(rest) > REST_ROWS:
            rest = rest.sample(n=REST_ROWS, random_state=0)
        current = reference[on_day]
        for column, (method, kind) in judged.items():
            ref_values, cur_values = rest[column].dropna(), current[column].dropna()
            if ref_values.empty or cur_values.empty or ref_values.nunique() < 2 and kind == "num":
                continue
            test = get_stattest(ref_values, cur_values, kind, method)
            score = float(test(ref_values, cur_values, kind, DRIFT_METHODS[method][2]).drift_score)
            largest[column] = max(largest.get(column, 0.0), score)
    return OrdinaryDrift(
        days=len(days[-MAX_DAYS:]),
        columns={c: v for c, v in largest.items() if c != score_column},
        score=largest.get(score_column) if score_column is not None else None,
    )


def column_methods(
    numeric: Sequence[str], categorical: Sequence[str], num_method: str, cat_method: str, per_column: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Each checked column's Evidently method and kind, as ``run_drift`` asks the report for them."""
    methods = {c: (per_column.get(c, num_method), "num") for c in numeric}
    methods.update({c: (per_column.get(c, cat_method), "cat") for c in categorical})
    return methods
