"""Feature and score drift of a scored partition against a model version's reference, with Evidently.

``run_drift`` is the check the platform runs: one Evidently report (DataDriftPreset over the features plus a
ValueDrift of the model's score) on frames the caller has already sampled, so the cost stays flat as partitions grow.
The figures and verdicts are read from Evidently's typed results of that run (``report_page.preset_results``): each
column's ValueDrift value and its drift test's status, DriftedColumnsCount's count and share.

Methods are forced rather than left to Evidently's choice, which depends on the row count (KS / chi-square at 1000
reference rows or fewer, distances above). By default numeric columns use the Wasserstein distance normed by the
reference's standard deviation, categorical columns the Jensen-Shannon distance (natural log), both drifted at 0.1;
the spec may choose other Evidently methods per column type or per column, and thresholds per column
(``assets.ml.spec.Monitoring``). Evidently decides each column's verdict (a distance drifted at or above its
threshold, a p-value below it); the result records the method and threshold each column was judged by. The score
is always compared with the Wasserstein distance, graded by the spec's ``score_drift`` thresholds; a categorical
score (a multiclass model's predicted class: its class mix) with the Jensen-Shannon distance.

evidently is imported inside ``run_drift``: ``import evidently`` alone takes about 3.5 s, which ``severity`` and the
other readers of this module do not need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from assets.ml.spec import DRIFT_METHODS
from assets.monitoring.report_page import ReportAbout, preset_results, save_snapshot

if TYPE_CHECKING:
    from assets.ml.spec import Thresholds

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"

Severity = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class DriftResult:
    """Drift of one partition against the reference.

    ``rows_current`` is the partition's size before sampling (as the caller reports it), ``sample_rows`` the number
    of current rows actually compared, ``rows_reference`` the number of reference rows compared.
    """

    column_scores: dict[str, float]
    column_methods: dict[str, str]
    column_threshold: float | None  # the threshold asked for every column (None: each method's default)
    drifted_columns: list[str]
    drift_share: float
    score_drift: float
    score_method: str
    rows_current: int
    rows_reference: int
    sample_rows: int
    column_thresholds: dict[str, float] = field(default_factory=dict)  # the threshold each column was judged by
    score_reference_rows: int | None = None  # reference rows with a score; 0: score drift not compared (NaN)
    # Features left out because they hold no value at all, in the day's rows or in the reference: column -> why.
    # Evidently cannot compare an empty column ("An empty column ... was provided for drift calculation").
    empty_columns: dict[str, str] = field(default_factory=dict)


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    score_column: str,
    column_threshold: float | None = None,
    report_path: Path | None = None,
    *,
    partition_rows: int | None = None,
    num_method: str = NUMERIC_METHOD,
    cat_method: str = CATEGORICAL_METHOD,
    column_methods: Mapping[str, str] | None = None,
    column_thresholds: Mapping[str, float] | None = None,
    score_threshold: float | None = None,
    about: ReportAbout | None = None,
    drift_share: float | None = None,
    score_categorical: bool = False,
) -> DriftResult:
    """Evidently drift of the features and of the score in one report, stored at ``report_path`` if given
    (``report_page.save_snapshot``) with ``about`` (what it covers: model, version, day, reference) kept on the
    snapshot to title its page.

    ``partition_rows``: rows in the partition before the caller sampled it (default: ``len(current)``).
    ``num_method`` / ``cat_method``: Evidently's method per column type; ``column_methods``: per column, over those.
    ``column_threshold``: every column's threshold (None: each method's default); ``column_thresholds``: per column,
    over it. ``score_threshold``: where the report marks the score drifted (default ``column_threshold``, else 0.1);
    the caller grades ``score_drift`` itself. ``drift_share``: the share of drifted features at which the report's
    header calls the dataset drifted, so it says what the check says (Evidently's own default is 0.5). A reference
    whose score is all missing (e.g. served days scored by
    another version) leaves the score uncompared: ``score_drift`` is NaN. ``score_categorical``: the score column
    holds categories (a multiclass model's predicted class), compared by the Jensen-Shannon distance of their mix.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift
    from evidently.presets import DataDriftPreset

    checked_features(numeric, categorical, score_column)
    empty = empty_columns(reference, current, [*numeric, *categorical])
    numeric = [c for c in numeric if c not in empty]
    categorical = [c for c in categorical if c not in empty]
    features = [*numeric, *categorical]
    score_reference_rows = scored_rows(reference[score_column], score_categorical)
    compare_score = score_reference_rows > 0
    columns = [*features, score_column] if compare_score else features
    scored = [score_column] if compare_score else []
    definition = DataDefinition(
        numerical_columns=list(numeric) + ([] if score_categorical else scored),
        categorical_columns=list(categorical) + (scored if score_categorical else []),
    )
    if score_threshold is None:
        score_threshold = column_threshold if column_threshold is not None else 0.1
    only = set(features)
    preset = score_metric = None
    if features:
        preset = DataDriftPreset(
            columns=features,
            num_method=num_method,
            cat_method=cat_method,
            per_column_method={c: m for c, m in (column_methods or {}).items() if c in only} or None,
            threshold=column_threshold,
            per_column_threshold={c: t for c, t in (column_thresholds or {}).items() if c in only} or None,
            **({} if drift_share is None else {"drift_share": drift_share}),
        )
    if compare_score:
        method = CATEGORICAL_METHOD if score_categorical else NUMERIC_METHOD
        score_metric = ValueDrift(column=score_column, method=method, threshold=score_threshold)
    metrics: list[Any] = [m for m in (preset, score_metric) if m is not None]
    counts = {
        "column_threshold": column_threshold,
        "rows_current": len(current) if partition_rows is None else partition_rows,
        "rows_reference": len(reference),
        "sample_rows": len(current),
        "score_reference_rows": score_reference_rows,
        "empty_columns": empty,
    }
    if not metrics:  # every feature empty and no scored reference: nothing Evidently could compare
        return _result({}, [], None, features=[], **counts)
    report = Report(metrics, include_tests=True)  # the per-column verdicts are the ValueDrift tests
    snapshot = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
        **(about.run_kwargs() if about is not None else {}),
    )
    if report_path is not None:
        save_snapshot(snapshot, report_path)
    generated = preset_results(snapshot, preset) if preset is not None else []
    judged = {m.column: _judged(m, r) for m, r in generated if isinstance(m, ValueDrift)}
    drift_counts = [r for m, r in generated if isinstance(m, DriftedColumnsCount)]
    score = _judged(score_metric, snapshot.metric_results[score_metric.metric_id]) if score_metric else None
    return _result(judged, drift_counts, score, features=features, **counts)


def merged(shown: DriftResult, hidden: DriftResult) -> DriftResult:
    """One result from two runs over the same day: ``shown`` (the report a person opens, with the score) and
    ``hidden`` (sensitive features, compared in a report that is never stored: only its figures are kept). The
    drift share is over the features of both, as one report would count them."""
    scores = {**shown.column_scores, **hidden.column_scores}
    drifted = [*shown.drifted_columns, *hidden.drifted_columns]
    return replace(
        shown,
        column_scores=scores,
        column_methods={**shown.column_methods, **hidden.column_methods},
        column_thresholds={**shown.column_thresholds, **hidden.column_thresholds},
        drifted_columns=drifted,
        drift_share=len(drifted) / len(scores) if scores else math.nan,
        empty_columns={**shown.empty_columns, **hidden.empty_columns},
    )


def scored_rows(score: pd.Series, categorical: bool = False) -> int:
    """Rows with a score to compare: a finite number, or any category."""
    if categorical:
        return int(score.notna().sum())
    return int(np.isfinite(score.to_numpy(dtype=float, na_value=np.nan)).sum())


def empty_columns(reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str]) -> dict[str, str]:
    """The features with no value at all in the day's rows or in the reference, and why: they cannot be compared
    (a day whose file for one table was declared ``missing_day: empty`` leaves its columns NULL after the join)."""
    empty = {}
    for column in features:
        if len(current) and current[column].isna().all():
            empty[column] = f"no value in any of the day's {len(current)} rows"
        elif len(reference) and reference[column].isna().all():
            empty[column] = f"no value in any of the reference's {len(reference)} rows"
    return empty


@dataclass(frozen=True)
class _Judged:
    """One column's drift as Evidently judged it: its drift score, the method and threshold it was judged by, and
    the status of its drift test ("FAIL": drifted, "SUCCESS": not; None: the report ran no test)."""

    score: float
    method: str
    threshold: float | None
    status: str | None


def _judged(metric: Any, result: Any) -> _Judged:
    """A ValueDrift ``metric`` and Evidently's ``result`` of it (a SingleValue with the column's drift test).

    The method and threshold are those the test ran with (its ``metric_config``: Evidently fills in a method's
    default threshold when none was asked for)."""
    test = result.tests[0] if result.tests else None
    config = test.metric_config.params if test is not None else {}
    threshold = metric.threshold if metric.threshold is not None else config.get("threshold")
    return _Judged(
        score=float(result.value),
        method=metric.method or config.get("method"),
        threshold=None if threshold is None else float(threshold),
        # TestStatus is a str enum: its value is "FAIL" / "SUCCESS" / ...
        status=None if test is None else str(test.status.value),
    )


def _result(
    columns: Mapping[str, _Judged],
    drift_counts: Sequence[Any],
    score: _Judged | None,
    *,
    features: list[str],
    column_threshold: float | None,
    rows_current: int,
    rows_reference: int,
    sample_rows: int,
    score_reference_rows: int | None = None,
    empty_columns: dict[str, str] | None = None,
) -> DriftResult:
    """The check's result from Evidently's: ``columns`` (each feature's ValueDrift, judged), ``drift_counts`` (the
    DriftedColumnsCount results: one when there are ``features``), ``score`` (the score's ValueDrift; None: the
    score was not compared, ``score_drift`` is NaN). No ``features``: no feature could be compared, the drift
    share is NaN."""
    missing = [c for c in features if c not in columns]
    if missing or len(drift_counts) != (1 if features else 0):
        raise RuntimeError(
            f"Evidently's drift report lacks ValueDrift for {missing} or has {len(drift_counts)} "
            "DriftedColumnsCount results"
        )
    drifted: list[str] = []
    for column in features:
        status = columns[column].status
        if status not in ("FAIL", "SUCCESS"):
            raise RuntimeError(f"Evidently drift test for column '{column}' has status {status!r}")
        if status == "FAIL":
            drifted.append(column)
    count, share = (drift_counts[0].count.value, drift_counts[0].share.value) if drift_counts else (0, math.nan)
    if int(count) != len(drifted):
        raise RuntimeError(
            f"Evidently disagrees with itself: DriftedColumnsCount {count}, failed drift tests {len(drifted)}"
        )
    return DriftResult(
        column_scores={c: columns[c].score for c in features},
        column_methods={c: columns[c].method for c in features},
        column_threshold=column_threshold,
        drifted_columns=drifted,
        drift_share=float(share),
        score_drift=score.score if score is not None else math.nan,
        score_method=score.method if score is not None else NUMERIC_METHOD,
        rows_current=rows_current,
        rows_reference=rows_reference,
        sample_rows=sample_rows,
        column_thresholds={c: _threshold(columns[c]) for c in features},
        score_reference_rows=score_reference_rows,
        empty_columns=dict(empty_columns or {}),
    )


def _threshold(judged: _Judged) -> float:
    """The threshold a column was judged by: as Evidently's test ran it, else the method's default."""
    return judged.threshold if judged.threshold is not None else float(DRIFT_METHODS[judged.method][2])


def severity(value: float, thresholds: Thresholds) -> Severity:
    """ "error" at or above ``thresholds.error``, "warn" at or above ``thresholds.warn``, else "ok"."""
    if math.isnan(value):
        raise ValueError("cannot grade a NaN drift value")
    if value >= thresholds.error:
        return "error"
    if value >= thresholds.warn:
        return "warn"
    return "ok"


def checked_features(numeric: Sequence[str], categorical: Sequence[str], score_column: str) -> list[str]:
    """The features to compare, numeric then categorical: at least one, and never the score column."""
    features = [*numeric, *categorical]
    if not features:
        raise ValueError("drift needs at least one numeric or categorical column")
    if score_column in features:
        raise ValueError(f"score column '{score_column}' must not also be a feature")
    return features
