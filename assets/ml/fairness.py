"""Fairness across segments (the spec's ``fairness`` section): per segment its rows, approval rate and how well the
model does there, and per segment column the largest gap between two segments, against the spec's limits.

How well, by the spec's task: ROC AUC (binary, ``max_auc_gap``), mean absolute error (regression, in the target's
units, ``max_error_gap``: the gap is the worst segment's MAE minus the best's) or macro recall, the mean of each
class's recall = balanced accuracy (multiclass, ``max_recall_gap``). The approval rate (decision ==
``approve_band``) is measured where there is an approve band: always for binary, for the other tasks when the spec
names one.

The gate measures a version on its holdout (decisions from the version's scores and the spec's bands) and refuses
it when a gap is above its limit (:mod:`assets.ml.gate`); the daily quality asset measures a served day's labeled
rows with the decisions that were made (:mod:`assets.monitoring.quality_assets`).

A segment with fewer than ``min_segment_rows`` rows is listed but left out of the gaps (a handful of rows would
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
MAE = "mae"
MACRO_RECALL = "macro_recall"
# The metric compared between segments for each task, beside the approval rate.
TASK_METRIC = {"binary": ROC_AUC, "regression": MAE, "multiclass": MACRO_RECALL}
LIMIT_FIELDS = {
    APPROVAL_RATE: "max_approval_rate_gap",
    ROC_AUC: "max_auc_gap",
    MAE: "max_error_gap",
    MACRO_RECALL: "max_recall_gap",
}
NAMES = {APPROVAL_RATE: "approval rate", ROC_AUC: "ROC AUC", MAE: "mean absolute error", MACRO_RECALL: "macro recall"}
# The gaps recorded on a judged version, next to the gate.* tags (a version's fairness in the MLflow UI): binary's
# two. :func:`gap_tags` gives every task's (``FairnessResult.tags`` the measured ones, with their values).
GAP_TAGS = {APPROVAL_RATE: "gate.fairness.approval_rate_gap", ROC_AUC: "gate.fairness.auc_gap"}
TASK_GAP_TAGS = {**GAP_TAGS, MAE: "gate.fairness.error_gap", MACRO_RECALL: "gate.fairness.recall_gap"}
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
# Each task's segment table: binary's above; regression and multiclass with their own figures.
TASK_SEGMENT_COLUMNS = {
    "binary": SEGMENT_COLUMNS,
    "regression": [
        "segment_column",
        "segment",
        "rows",
        "approved",
        "approval_rate",
        "mean_actual",
        "mean_predicted",
        "mae",
        "in_gaps",
        "note",
    ],
    "multiclass": [
        "segment_column",
        "segment",
        "rows",
        "approved",
        "approval_rate",
        "classes",
        "accuracy",
        "macro_recall",
        "in_gaps",
        "note",
    ],
}


def gap_metrics(task: str, approval: bool = True) -> tuple[str, ...]:
    """The metrics whose gaps a ``task`` measures: the approval rate (when there is an approve band), and the
    task's own."""
    if task not in TASK_METRIC:
        raise ValueError(f"fairness: unknown task '{task}' (tasks: {sorted(TASK_METRIC)})")
    return (APPROVAL_RATE, TASK_METRIC[task]) if approval else (TASK_METRIC[task],)


def gap_tags(task: str, approval: bool = True) -> dict[str, str]:
    """metric -> the version tag its largest gap is recorded as, for ``task`` (binary: :data:`GAP_TAGS`)."""
    return {m: TASK_GAP_TAGS[m] for m in gap_metrics(task, approval)}


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
        name = NAMES[self.metric]
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
    segments: pd.DataFrame  # one row per (segment_column, segment): TASK_SEGMENT_COLUMNS[task]
    gaps: list[Gap]
    metrics: tuple[str, ...] = (APPROVAL_RATE, ROC_AUC)  # the metrics whose gaps were measured (gap_metrics)

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
        out = {f"fairness_{metric}_gap": self.largest(metric) for metric in self.metrics}
        out |= {f"fairness_{g.column}_{g.metric}_gap": g.gap for g in self.gaps}
        return {k: float(v) for k, v in out.items() if not math.isnan(v)}

    def tags(self) -> dict[str, str]:
        """The largest gap of each measured metric as the version tags the gate records (binary: GAP_TAGS)."""
        return {TASK_GAP_TAGS[m]: repr(self.largest(m)) for m in self.metrics}

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


def measure(
    frame: pd.DataFrame,
    fairness: Fairness,
    decisions,
    y,
    p,
    *,
    task: str = "binary",
    predicted: np.ndarray | None = None,
) -> FairnessResult:
    """Per segment of every ``fairness.segments`` column of ``frame``: rows, approved (decision ==
    ``approve_band``) and approval rate, and the task's figures: positives (y == 1) and ROC AUC of ``p`` (binary),
    mean actual ``y``, mean predicted ``p`` and their MAE (regression: ``p`` is the predicted value), accuracy and
    macro recall of the ``predicted`` classes against ``y`` (multiclass); and the largest gaps."""
    import pandas as pd

    approval = task == "binary" or fairness.approve_band is not None
    metrics = gap_metrics(task, approval)
    y, p, predicted = _inputs(task, y, p, predicted)
    decisions = np.asarray(decisions, dtype=object)
    if not (len(frame) == len(decisions) == len(y) == len(p) == len(predicted)):
        raise ValueError(
            f"fairness: frame ({len(frame)}), decisions ({len(decisions)}), labels ({len(y)}), scores ({len(p)}) "
            f"and predicted classes ({len(predicted)}) differ in length"
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
            n = int(mask.sum())
            row = {
                "segment_column": segment.column,
                "segment": value,
                "rows": n,
                "approved": int(approved[mask].sum()),
                "approval_rate": float(approved[mask].mean()),
                "in_gaps": n >= fairness.min_segment_rows,
                **_segment_figures(task, y[mask], p[mask], predicted[mask], n >= fairness.min_segment_rows),
            }
            if n < fairness.min_segment_rows:
                row["note"] = f"left out of the gaps: {n} rows, fewer than min_segment_rows {fairness.min_segment_rows}"
            rows.append(row)
            measured.append(row)
        eligible = [r for r in measured if r["in_gaps"]]
        for metric in metrics:
            limit = getattr(fairness, LIMIT_FIELDS[metric])
            gaps.append(_gap(segment.column, metric, [r for r in eligible if not math.isnan(r[metric])], limit))
    columns = TASK_SEGMENT_COLUMNS[task]
    if not approval:  # no decision approves: no approval figures to show (an approval rate of 0 would mislead)
        columns = [c for c in columns if c not in ("approved", APPROVAL_RATE)]
    return FairnessResult(pd.DataFrame(rows, columns=columns), gaps, metrics)


def _inputs(task: str, y, p, predicted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, predicted classes) as ``task`` reads them; the predicted classes are only multiclass's
    (empty strings for the other tasks, so that every array can be masked alike)."""
    from assets.ml.evaluation import class_names

    gap_metrics(task)  # an unknown task fails here, naming it
    p = np.asarray(p, dtype="float64")
    if task == "multiclass":
        if predicted is None:
            raise ValueError("fairness: task multiclass needs the predicted classes (predicted=...)")
        return class_names(y), p, class_names(predicted)
    dtype = "int64" if task == "binary" else "float64"
    return np.asarray(y, dtype=dtype), p, np.full(len(p), "", dtype=object)


def _segment_figures(task: str, y: np.ndarray, p: np.ndarray, predicted: np.ndarray, judged: bool) -> dict:
    """A segment's own figures for ``task`` and a note (binary: no ROC AUC on a segment left out of the gaps or of
    a single class)."""
    if task == "regression":
        return {
            "mean_actual": float(y.mean()),
            "mean_predicted": float(p.mean()),
            MAE: float(np.abs(p - y).mean()),
            "note": "",
        }
    if task == "multiclass":
        classes = sorted(set(y.tolist()))
        recalls = [float((predicted[y == c] == c).mean()) for c in classes]
        return {
            "classes": len(classes),
            "accuracy": float((predicted == y).mean()),
            MACRO_RECALL: float(np.mean(recalls)),
            "note": "",
        }
    from sklearn.metrics import roc_auc_score

    auc, note = math.nan, ""
    if judged and np.unique(y).size < 2:
        note = "no ROC AUC: a single class"
    elif judged:
        auc = float(roc_auc_score(y, p))
    return {"positives": int(y.sum()), ROC_AUC: auc, "note": note}


def _gap(column: str, metric: str, rows: list[dict], limit: float | None) -> Gap:
    if len(rows) < 2:
        return Gap(column, metric, math.nan, None, math.nan, None, math.nan, limit)
    high = max(rows, key=lambda r: r[metric])
    low = min(rows, key=lambda r: r[metric])
    gap = round(high[metric] - low[metric], GAP_DECIMALS)
    return Gap(column, metric, gap, high["segment"], high[metric], low["segment"], low[metric], limit)
