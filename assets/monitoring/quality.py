"""Quality of a probabilistic binary classifier on labeled rows, with Evidently's classification preset.

ROC AUC, log loss, the observed positive rate (share of target == 1) and the mean predicted probability come from the
Evidently snapshot. Evidently 0.7 has no Brier score and no calibration table, so those two are computed here
(sklearn / pandas). evidently and sklearn are imported inside the function: this module is imported when Dagster
loads definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assets.monitoring.report_page import ReportAbout, save_snapshot

# Keys of the snapshot's dict() (evidently 0.7): metrics[].config.type.
_ROC_AUC = "evidently:metric_v2:RocAuc"
_LOG_LOSS = "evidently:metric_v2:LogLoss"
_MEAN_VALUE = "evidently:metric_v2:MeanValue"

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class QualityResult:
    """Quality on ``rows`` labeled rows. ``calibration`` has one row per score decile (1 = lowest scores):
    decile, rows, score_min, score_max, predicted_rate, positive_rate, gap (= positive_rate - predicted_rate)."""

    rows: int
    roc_auc: float
    brier: float
    log_loss: float
    positive_rate: float
    predicted_rate: float
    calibration_gap: float
    calibration: pd.DataFrame
    # 95% intervals: how sure the figures are on this many rows (a day of a few hundred labels is not sure at all).
    roc_auc_interval: tuple[float, float] = (float("nan"), float("nan"))
    calibration_gap_interval: tuple[float, float] = (float("nan"), float("nan"))

    def judged_auc_drop(self, validation_auc: float) -> float:
        """The drop from ``validation_auc`` the checks grade: the measured drop when the rows rule out no drop at 95%
        (the validation figure is above the interval), else 0: a drop the rows cannot tell from noise is no alarm."""
        return validation_auc - self.roc_auc if validation_auc > self.roc_auc_interval[1] else 0.0

    def judged_calibration_gap(self) -> float:
        """The calibration gap the checks grade: the measured gap when the interval rules out no gap, else 0."""
        low, high = self.calibration_gap_interval
        return 0.0 if low <= 0.0 <= high else self.calibration_gap


def run_quality(
    frame: pd.DataFrame,
    target: str,
    score_column: str,
    report_path: Path | None = None,
    *,
    about: ReportAbout | None = None,
) -> QualityResult:
    """Evidently ClassificationPreset on ``target`` (0/1) against ``score_column`` (probability of 1).

    The report (Evidently's snapshot, compact: ``report_page.save_snapshot``) goes to ``report_path`` if given,
    with ``about`` (what it covers: model, version, day) kept on the snapshot to title its page.
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue
    from evidently.presets import ClassificationPreset
    from sklearn.metrics import brier_score_loss

    data = _labeled(frame, target, score_column)
    definition = DataDefinition(
        numerical_columns=[target, score_column],
        classification=[BinaryClassification(target=target, prediction_probas=score_column, pos_label=1)],
    )
    report = Report(
        [ClassificationPreset(), MeanValue(column=target), MeanValue(column=score_column)],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(data, data_definition=definition),
        None,
        **(about.run_kwargs() if about is not None else {}),
    )
    if report_path is not None:
        save_snapshot(snapshot, report_path)

    values = _values(snapshot.dict())
    positive_rate = values[(_MEAN_VALUE, target)]
    predicted_rate = values[(_MEAN_VALUE, score_column)]
    roc_auc = values[(_ROC_AUC, None)]
    positives = int(data[target].sum())
    return QualityResult(
        rows=len(data),
        roc_auc=roc_auc,
        # Not in Evidently 0.7: computed with sklearn.
        brier=float(brier_score_loss(data[target], data[score_column])),
        log_loss=values[(_LOG_LOSS, None)],
        positive_rate=positive_rate,
        predicted_rate=predicted_rate,
        calibration_gap=abs(positive_rate - predicted_rate),
        # Not in Evidently 0.7: computed with pandas.
        calibration=calibration_by_decile(data[target], data[score_column]),
        roc_auc_interval=auc_interval(roc_auc, positives, len(data) - positives),
        calibration_gap_interval=gap_interval(positive_rate, predicted_rate, len(data)),
    )


Z_95 = 1.959963984540054


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """95% interval of a ROC AUC on ``positives`` + ``negatives`` rows: Hanley & McNeil's (1982) standard error,
    the usual closed form (no resampling, so it costs nothing), clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    half = Z_95 * float(np.sqrt(max(variance, 0.0)))
    return max(0.0, auc - half), min(1.0, auc + half)


def gap_interval(positive_rate: float, predicted_rate: float, rows: int) -> tuple[float, float]:
    """95% interval of the signed gap (observed positive rate - mean predicted rate) on ``rows`` rows: the observed
    rate's binomial error around the rate the model predicted (the model's own mean is taken as known)."""
    half = Z_95 * float(np.sqrt(max(predicted_rate * (1 - predicted_rate), 1e-12) / rows))
    gap = positive_rate - predicted_rate
    return gap - half, gap + half


def calibration_by_decile(target: pd.Series, score: pd.Series) -> pd.DataFrame:
    """Observed vs predicted rate per score decile (fewer bins when there are fewer than 10 rows).

    Ties in the score are split by row order, so every bin has the same number of rows give or take one.
    """
    bins = min(CALIBRATION_BINS, len(score))
    decile = pd.qcut(score.rank(method="first"), bins, labels=False) + 1
    grouped = pd.DataFrame({"decile": decile, "y": target, "p": score}).groupby("decile")
    table = grouped.agg(
        rows=("y", "size"),
        score_min=("p", "min"),
        score_max=("p", "max"),
        predicted_rate=("p", "mean"),
        positive_rate=("y", "mean"),
    ).reset_index()
    table["gap"] = table["positive_rate"] - table["predicted_rate"]
    return table


def _labeled(frame: pd.DataFrame, target: str, score_column: str) -> pd.DataFrame:
    data = frame[[target, score_column]]
    if data.isna().to_numpy().any():
        raise ValueError(f"'{target}' and '{score_column}' must have no missing values for quality")
    labels = set(np.unique(data[target].to_numpy()).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"target '{target}' must be 0/1, found values {sorted(labels, key=str)[:10]}")
    if labels != {0, 1}:
        raise ValueError(f"target '{target}' has a single class {sorted(labels)}: ROC AUC is undefined")
    scores = data[score_column].to_numpy(dtype=float)
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError(f"score '{score_column}' must be a probability in [0, 1]")
    return pd.DataFrame({target: data[target].astype(int), score_column: scores}, index=data.index)


def _values(data: dict[str, Any]) -> dict[tuple[str, str | None], float]:
    """(metrics[].config.type, metrics[].config.column or None) -> metrics[].value, for the single-value metrics."""
    wanted = {_ROC_AUC, _LOG_LOSS, _MEAN_VALUE}
    values: dict[tuple[str, str | None], float] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if config["type"] in wanted:
            values[(config["type"], config.get("column"))] = float(metric["value"])
    return values
