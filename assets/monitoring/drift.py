"""Feature and score drift of a scored partition against a model version's reference, with Evidently.

``run_drift`` is the check the platform runs: one Evidently report (DataDriftPreset over the features plus a
ValueDrift of the model's score) on frames the caller has already sampled, so the cost stays flat as partitions grow.
``drift_numpy`` computes the same statistics with numpy/scipy; the benchmark uses it and it cross-checks Evidently.

Methods are forced rather than left to Evidently's choice, which depends on the row count (KS / chi-square at 1000
reference rows or fewer, distances above): numeric columns use the Wasserstein distance normed by the reference's
standard deviation, categorical columns the Jensen-Shannon distance (natural log). Both are distances, so a column
drifted when its score is at or above the threshold, as Evidently decides.

evidently and scipy are imported inside the functions: this module is imported when Dagster loads definitions, and
``import evidently`` alone takes about 3.5 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from assets.ml.spec import Thresholds

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"

# metrics[].config.type values in the snapshot's dict() (evidently 0.7).
_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COLUMNS_COUNT = "evidently:metric_v2:DriftedColumnsCount"

Severity = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class DriftResult:
    """Drift of one partition against the reference.

    ``rows_current`` is the partition's size before sampling (as the caller reports it), ``sample_rows`` the number
    of current rows actually compared, ``rows_reference`` the number of reference rows compared.
    """

    column_scores: dict[str, float]
    column_methods: dict[str, str]
    column_threshold: float
    drifted_columns: list[str]
    drift_share: float
    score_drift: float
    score_method: str
    rows_current: int
    rows_reference: int
    sample_rows: int


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    score_column: str,
    column_threshold: float,
    report_path: Path | None = None,
    *,
    partition_rows: int | None = None,
) -> DriftResult:
    """Evidently drift of the features and of the score in one report; the HTML goes to ``report_path`` if given.

    ``partition_rows``: rows in the partition before the caller sampled it (default: ``len(current)``).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features = _features(numeric, categorical, score_column)
    columns = [*features, score_column]
    definition = DataDefinition(numerical_columns=[*numeric, score_column], categorical_columns=list(categorical))
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                num_method=NUMERIC_METHOD,
                cat_method=CATEGORICAL_METHOD,
                threshold=column_threshold,
            ),
            ValueDrift(column=score_column, method=NUMERIC_METHOD, threshold=column_threshold),
        ],
        include_tests=True,  # the per-column verdicts are the ValueDrift tests
    )
    snapshot = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(report_path))
    return _from_snapshot(
        snapshot.dict(),
        features=features,
        score_column=score_column,
        column_threshold=column_threshold,
        rows_current=len(current) if partition_rows is None else partition_rows,
        rows_reference=len(reference),
        sample_rows=len(current),
    )


def _from_snapshot(
    data: dict[str, Any],
    *,
    features: list[str],
    score_column: str,
    column_threshold: float,
    rows_current: int,
    rows_reference: int,
    sample_rows: int,
) -> DriftResult:
    """Read the results out of ``snapshot.dict()``.

    metrics[] with config.type ValueDrift: config.column, config.method, value (the score);
    tests[] whose metric_config.metric_id is that metric's id: status FAIL (drifted) or SUCCESS;
    metrics[] with config.type DriftedColumnsCount: value.count, value.share (Evidently's drift share).
    """
    value_drift = {m["config"]["column"]: m for m in data["metrics"] if m["config"]["type"] == _VALUE_DRIFT}
    counts = [m for m in data["metrics"] if m["config"]["type"] == _DRIFTED_COLUMNS_COUNT]
    # TestStatus is a str enum: it compares equal to "FAIL" / "SUCCESS".
    statuses = {t["metric_config"]["metric_id"]: t["status"] for t in data["tests"]}
    missing = [c for c in [*features, score_column] if c not in value_drift]
    if missing or len(counts) != 1:
        raise RuntimeError(
            f"Evidently snapshot lacks ValueDrift for {missing} or has {len(counts)} DriftedColumnsCount metrics"
        )

    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    drifted: list[str] = []
    for column in features:
        metric = value_drift[column]
        scores[column] = float(metric["value"])
        methods[column] = metric["config"]["method"]
        status = statuses.get(metric["id"])
        if status not in ("FAIL", "SUCCESS"):
            raise RuntimeError(f"Evidently drift test for column '{column}' has status {status!r}")
        if status == "FAIL":
            drifted.append(column)

    count = counts[0]["value"]
    if int(count["count"]) != len(drifted):
        raise RuntimeError(
            f"Evidently disagrees with itself: DriftedColumnsCount {count['count']}, failed drift tests {len(drifted)}"
        )
    return DriftResult(
        column_scores=scores,
        column_methods=methods,
        column_threshold=column_threshold,
        drifted_columns=drifted,
        drift_share=float(count["share"]),
        score_drift=float(value_drift[score_column]["value"]),
        score_method=value_drift[score_column]["config"]["method"],
        rows_current=rows_current,
        rows_reference=rows_reference,
        sample_rows=sample_rows,
    )


def drift_numpy(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    score_column: str,
    column_threshold: float,
    *,
    partition_rows: int | None = None,
) -> DriftResult:
    """The statistics of ``run_drift``, computed the way Evidently computes them, with numpy/scipy only."""
    features = _features(numeric, categorical, score_column)
    scores = {c: wasserstein_normed(reference[c], current[c]) for c in numeric}
    scores |= {c: jensen_shannon(reference[c], current[c]) for c in categorical}
    scores = {c: scores[c] for c in features}
    drifted = [c for c in features if scores[c] >= column_threshold]
    return DriftResult(
        column_scores=scores,
        column_methods={c: NUMERIC_METHOD if c in numeric else CATEGORICAL_METHOD for c in features},
        column_threshold=column_threshold,
        drifted_columns=drifted,
        drift_share=len(drifted) / len(features),
        score_drift=wasserstein_normed(reference[score_column], current[score_column]),
        score_method=NUMERIC_METHOD,
        rows_current=len(current) if partition_rows is None else partition_rows,
        rows_reference=len(reference),
        sample_rows=len(current),
    )


def wasserstein_normed(reference: pd.Series, current: pd.Series) -> float:
    """Wasserstein distance divided by the reference's population std (floored at 0.001), non-finite values dropped.

    As evidently.legacy.calculations.stattests.wasserstein_distance_norm.
    """
    from scipy.stats import wasserstein_distance

    ref = _finite(reference)
    cur = _finite(current)
    norm = max(float(np.std(ref)), 0.001)
    return float(wasserstein_distance(ref, cur) / norm)


def jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (natural log) between the category frequencies, missing values dropped.

    As evidently.legacy.calculations.stattests.jensenshannon for a categorical column: frequencies over the union of
    the categories seen in either frame, no smoothing of empty categories.
    """
    from scipy.spatial.distance import jensenshannon

    ref = _present(reference)
    cur = _present(current)
    ref_counts = ref.value_counts(sort=False)
    cur_counts = cur.value_counts(sort=False)
    ref_counts = ref_counts[ref_counts > 0]  # a Categorical dtype also counts unused categories
    cur_counts = cur_counts[cur_counts > 0]
    keys = ref_counts.index.union(cur_counts.index, sort=False)
    ref_share = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(ref)
    cur_share = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(cur)
    return float(jensenshannon(ref_share, cur_share))


def severity(value: float, thresholds: Thresholds) -> Severity:
    """"error" at or above ``thresholds.error``, "warn" at or above ``thresholds.warn``, else "ok"."""
    if math.isnan(value):
        raise ValueError("cannot grade a NaN drift value")
    if value >= thresholds.error:
        return "error"
    if value >= thresholds.warn:
        return "warn"
    return "ok"


def _features(numeric: Sequence[str], categorical: Sequence[str], score_column: str) -> list[str]:
    features = [*numeric, *categorical]
    if not features:
        raise ValueError("drift needs at least one numeric or categorical column")
    if score_column in features:
        raise ValueError(f"score column '{score_column}' must not also be a feature")
    return features


def _finite(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"column '{series.name}' has no finite values to compare")
    return values


def _present(series: pd.Series) -> pd.Series:
    values = series.dropna()
    if values.empty:
        raise ValueError(f"column '{series.name}' has no values to compare")
    return values
