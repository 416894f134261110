"""Fairness across segments (the spec's ``fairness`` section): per segment its rows, approval rate and ROC AUC, and
per segment column the largest gap between two segments, against the spec's limits.

The gate measures a version on its holdout (decisions from the version's scores and the spec's bands) and refuses
it when a gap is above its limit (:mod:`assets.ml.gate`); the daily quality asset measures a served day's labeled
rows with the decisions that were made (:mod:`assets.monitoring.quality_assets`).

A segment with fewer than ``min_segment_rows`` rows is listed but left out of both gaps (a handful of rows would
open any gap); a segment whose rows hold a single class has no ROC AUC and is left out of the AUC gap. A column with
fewer than two segments left has no gap (NaN): nothing to compare, so no limit is broken.

pandas and scikit-learn are imported inside the functions: the gate imports this module when definitions load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from assets.ml.spec.fairness import MISSING_SEGMENT

if TYPE_CHECKING:
    import pandas as pd

    from assets.ml.spec import Fairness, Segment

APPROVAL_RATE = "approval_rate"
ROC_AUC = "roc_auc"
LIMIT_FIELDS = {APPROVAL_RATE: "max_approval_rate_gap", ROC_AUC: "max_auc_gap"}
# The gaps recorded on a judged version, next to the gate.* tags (a version's fairness in the MLflow UI).
GAP_TAGS = {APPROVAL_RATE: "gate.fairness.approval_rate_gap", ROC_AUC: "gate.fairness.auc_gap"}
# Gaps are compared after rounding, as the gate compares metrics: a gap written in the spec holds as written.
GAP_DECIMALS = 12
SEGMENT_COLUMNS = [
    "segment_column",
    "segment",
    "rows",
    "approved",
    "approval_rate",
    "positives",
    "roc_auc",
    "in_gaps",
    "note",
]


@dataclass(frozen=True)
class Gap:
    """The largest gap in ``metric`` between two segments of ``column``: ``high`` minus ``low``."""

    column: str
    metric: str
    gap: float  # NaN: fewer than two segments to compare
    high: str | None
    high_value: float
    low: str | None
    low_value: float
    limit: float | None

    @property
    def broken(self) -> bool:
        return self.limit is not None and not math.isnan(self.gap) and self.gap > self.limit

    def describe(self) -> str:
        name = "approval rate" if self.metric == APPROVAL_RATE else "ROC AUC"
        if math.isnan(self.gap):
            return f"{name} gap over {self.column}: not measured (fewer than two segments to compare)"
        text = (
            f"{name} gap over {self.column} {self.gap:.4f} between '{self.high}' ({self.high_value:.4f}) and "
            f"'{self.low}' ({self.low_value:.4f})"
        )
        if self.limit is None:
            return text
        return f"{text} {'is above' if self.broken else 'within'} {LIMIT_FIELDS[self.metric]} {self.limit}"


@dataclass(frozen=True)
class FairnessResult:
    segments: pd.DataFrame  # one row per (segment_column, segment): SEGMENT_COLUMNS
    gaps: list[Gap]

    @property
    def breaches(self) -> list[Gap]:
        return [g for g in self.gaps if g.broken]

    def largest(self, metric: str) -> float:
        """The largest ``metric`` gap over every segment column (NaN when none was measured)."""
        measured = [g.gap for g in self.gaps if g.metric == metric and not math.isnan(g.gap)]
        return max(measured) if measured else math.nan

    def refusal(self) -> str | None:
        """Why the version breaks the fairness limits (each broken gap), or None when it keeps them."""
        if not self.breaches:
            return None
        return "fairness: " + "; ".join(g.describe() for g in self.breaches)

    def figures(self) -> dict[str, float]:
        """The measured gaps as numbers: the largest per metric, then per segment column (NaN left out)."""
        out = {f"fairness_{metric}_gap": self.largest(metric) for metric in (APPROVAL_RATE, ROC_AUC)}
        out |= {f"fairness_{g.column}_{g.metric}_gap": g.gap for g in self.gaps}
        return {k: float(v) for k, v in out.items() if not math.isnan(v)}

    def summary(self) -> str:
        """Every gap in words, one per line (the gate's and the quality asset's ``fairness`` metadata)."""
        return "\n".join(g.describe() for g in self.gaps)

    def markdown(self) -> str:
        return self.segments.to_markdown(index=False, floatfmt=".4f")

    def metadata(self) -> dict:
        """What the gate check and the quality asset show: the gaps as numbers (the UI plots them), whether the
        limits held, each gap in words and every segment's rates."""
        import dagster as dg

        return {
            **self.figures(),
            "fairness_within_limits": not self.breaches,
            "fairness": dg.MetadataValue.text(self.summary()),
            "fairness_segments": dg.MetadataValue.md(self.markdown()),
        }


def segment_values(frame: pd.DataFrame, segment: Segment) -> np.ndarray:
    """Each row's segment of ``segment.column``: its value (categorical) or band (numeric with bins), as text;
    missing values are the segment MISSING_SEGMENT."""
    import pandas as pd

    column = frame[segment.column]
    missing = column.isna().to_numpy()
    if segment.bins is None:
        values = column.astype(object).astype(str).to_numpy(dtype=object)
    else:
        numbers = pd.to_numeric(column, errors="raise").to_numpy(dtype="float64")
        band = np.digitize(np.where(missing, 0.0, numbers), np.asarray(segment.bins, dtype="float64"), right=False)
        values = np.asarray(segment.labels(), dtype=object)[band]
    values[missing] = MISSING_SEGMENT
    return values


def _ordered(values: np.ndarray, segment: Segment) -> list[str]:
    present = set(values.tolist())
    if segment.bins is not None:
        return [label for label in [*segment.labels(), MISSING_SEGMENT] if label in present]
    return sorted(present)


def measure(frame: pd.DataFrame, fairness: Fairness, decisions, y, p) -> FairnessResult:
    """Per segment of every ``fairness.segments`` column of ``frame``: rows, approved (decision ==
    ``approve_band``), approval rate, positives (y == 1) and ROC AUC of ``p``; and the largest gaps."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    decisions = np.asarray(decisions, dtype=object)
    y, p = np.asarray(y, dtype="int64"), np.asarray(p, dtype="float64")
    if not (len(frame) == len(decisions) == len(y) == len(p)):
        raise ValueError(
            f"fairness: frame ({len(frame)}), decisions ({len(decisions)}), labels ({len(y)}) and scores ({len(p)}) "
            "differ in length"
        )
    missing = [c for c in fairness.columns if c not in frame.columns]
    if missing:
        raise KeyError(f"fairness.segments: no column {missing} in the rows measured (columns: {list(frame.columns)})")
    approved = decisions == fairness.approve_band
    rows, gaps = [], []
    for segment in fairness.segments:
        values = segment_values(frame, segment)
        measured = []
        for value in _ordered(values, segment):
            mask = values == value
            n, ys = int(mask.sum()), y[mask]
            auc, note = math.nan, ""
            if n < fairness.min_segment_rows:
                note = f"left out of the gaps: {n} rows, fewer than min_segment_rows {fairness.min_segment_rows}"
            elif np.unique(ys).size < 2:
                note = "no ROC AUC: a single class"
            else:
                auc = float(roc_auc_score(ys, p[mask]))
            row = {
                "segment_column": segment.column,
                "segment": value,
                "rows": n,
                "approved": int(approved[mask].sum()),
                "approval_rate": float(approved[mask].mean()),
                "positives": int(ys.sum()),
                "roc_auc": auc,
                "in_gaps": n >= fairness.min_segment_rows,
                "note": note,
            }
            rows.append(row)
            measured.append(row)
        eligible = [r for r in measured if r["in_gaps"]]
        gaps.append(_gap(segment.column, APPROVAL_RATE, eligible, fairness.max_approval_rate_gap))
        gaps.append(
            _gap(segment.column, ROC_AUC, [r for r in eligible if not math.isnan(r[ROC_AUC])], fairness.max_auc_gap)
        )
    return FairnessResult(pd.DataFrame(rows, columns=SEGMENT_COLUMNS), gaps)


def _gap(column: str, metric: str, rows: list[dict], limit: float | None) -> Gap:
    if len(rows) < 2:
        return Gap(column, metric, math.nan, None, math.nan, None, math.nan, limit)
    high = max(rows, key=lambda r: r[metric])
    low = min(rows, key=lambda r: r[metric])
    gap = round(high[metric] - low[metric], GAP_DECIMALS)
    return Gap(column, metric, gap, high["segment"], high[metric], low["segment"], low[metric], limit)
