"""Quality of a model on labeled rows, with Evidently: a probabilistic binary classifier with its classification
preset (``run_quality``), a regressor with its regression preset (``run_regression_quality``: RMSE, MAE, R2) and a
multi-class classifier with its classification preset on the predicted classes (``run_multiclass_quality``: macro
F1, accuracy, each class's recall and F1).

ROC AUC, log loss, the observed positive rate (share of target == 1) and the mean predicted probability are Evidently's,
read from its typed results of the run (``report_page.preset_results``: each metric's result under its id). Evidently
0.7 has no Brier score and no calibration table, so those two are computed here
(sklearn / pandas). evidently and sklearn are imported inside the function: this module is imported when Dagster
loads definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assets.monitoring.report_page import ReportAbout, preset_results, save_snapshot

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
    from evidently.metrics import LogLoss, MeanValue, RocAuc
    from evidently.presets import ClassificationPreset
    from sklearn.metrics import brier_score_loss

    data = _labeled(frame, target, score_column)
    definition = DataDefinition(
        numerical_columns=[target, score_column],
        classification=[BinaryClassification(target=target, prediction_probas=score_column, pos_label=1)],
    )
    preset, target_mean, score_mean = ClassificationPreset(), MeanValue(column=target), MeanValue(column=score_column)
    report = Report([preset, target_mean, score_mean], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(data, data_definition=definition),
        None,
        **(about.run_kwargs() if about is not None else {}),
    )
    if report_path is not None:
        save_snapshot(snapshot, report_path)

    metrics = _by_class(snapshot, preset, [RocAuc, LogLoss])
    positive_rate = _value(snapshot, target_mean)
    predicted_rate = _value(snapshot, score_mean)
    roc_auc = float(metrics[RocAuc].value)
    positives = int(data[target].sum())
    return QualityResult(
        rows=len(data),
        roc_auc=roc_auc,
        # Not in Evidently 0.7: computed with sklearn.
        brier=float(brier_score_loss(data[target], data[score_column])),
        log_loss=float(metrics[LogLoss].value),
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


def _value(snapshot, metric) -> float:
    """Evidently's result of ``metric`` (a single-value metric the report was given), as a float."""
    return float(snapshot.metric_results[metric.metric_id].value)


def _by_class(snapshot, preset, wanted: list[type]) -> dict[type, Any]:
    """Evidently's result of each ``wanted`` metric class among those ``preset`` generated (one of each)."""
    found: dict[type, list[Any]] = {kind: [] for kind in wanted}
    for metric, result in preset_results(snapshot, preset):
        if type(metric) in found:
            found[type(metric)].append(result)
    wrong = {kind.__name__: len(results) for kind, results in found.items() if len(results) != 1}
    if wrong:
        raise RuntimeError(f"Evidently's {type(preset).__name__} did not compute one of each of {wrong} (count found)")
    return {kind: results[0] for kind, results in found.items()}


@dataclass(frozen=True)
class RegressionQuality:
    """A regressor's quality on ``rows`` labeled rows (Evidently's RMSE, MAE, R2; the means beside them)."""

    rows: int
    rmse: float
    mae: float
    r2: float
    mean_actual: float
    mean_predicted: float


def run_regression_quality(
    frame: pd.DataFrame,
    target: str,
    prediction_column: str,
    report_path: Path | None = None,
    *,
    about: ReportAbout | None = None,
) -> RegressionQuality:
    """Evidently RegressionPreset on ``target`` (the actual value) against ``prediction_column`` (the predicted
    one), its report stored at ``report_path`` as :func:`run_quality` stores its own."""
    from evidently import DataDefinition, Regression, Report
    from evidently.metrics import MAE, RMSE, MeanValue, R2Score
    from evidently.presets import RegressionPreset

    data = _numbers(frame, [target, prediction_column])
    definition = DataDefinition(
        numerical_columns=[target, prediction_column],
        regression=[Regression(target=target, prediction=prediction_column)],
    )
    preset, actual_mean, predicted_mean = (
        RegressionPreset(),
        MeanValue(column=target),
        MeanValue(column=prediction_column),
    )
    report = Report([preset, actual_mean, predicted_mean], include_tests=True)
    snapshot = _run(report, data, definition, report_path, about)
    metrics = _by_class(snapshot, preset, [RMSE, MAE, R2Score])
    return RegressionQuality(
        rows=len(data),
        rmse=float(metrics[RMSE].value),
        mae=float(metrics[MAE].mean.value),  # MAE's result: the mean and std of the absolute error
        r2=float(metrics[R2Score].value),
        mean_actual=_value(snapshot, actual_mean),
        mean_predicted=_value(snapshot, predicted_mean),
    )


@dataclass(frozen=True)
class MulticlassQuality:
    """A multi-class classifier's quality on ``rows`` labeled rows: Evidently's macro F1 and accuracy, and per
    class (``classes``: one row per class, actual and predicted rows, recall and F1)."""

    rows: int
    macro_f1: float
    accuracy: float
    classes: pd.DataFrame  # class, actual_rows, predicted_rows, recall, f1

    def recall(self) -> dict[str, float]:
        return dict(zip(self.classes["class"], self.classes["recall"], strict=True))


def run_multiclass_quality(
    frame: pd.DataFrame,
    target: str,
    predicted_column: str,
    report_path: Path | None = None,
    *,
    about: ReportAbout | None = None,
) -> MulticlassQuality:
    """Evidently ClassificationPreset on ``target`` (class names) against ``predicted_column`` (the predicted
    classes, the same names), its report stored at ``report_path`` as :func:`run_quality` stores its own."""
    from evidently import DataDefinition, MulticlassClassification, Report
    from evidently.metrics import Accuracy, F1ByLabel, F1Score, RecallByLabel
    from evidently.presets import ClassificationPreset

    data = frame[[target, predicted_column]]
    if data.isna().to_numpy().any():
        raise ValueError(f"'{target}' and '{predicted_column}' must have no missing values for quality")
    data = data.astype(str)
    definition = DataDefinition(
        categorical_columns=[target, predicted_column],
        classification=[MulticlassClassification(target=target, prediction_labels=predicted_column)],
    )
    preset = ClassificationPreset()
    snapshot = _run(Report([preset], include_tests=True), data, definition, report_path, about)
    metrics = _by_class(snapshot, preset, [F1Score, Accuracy, RecallByLabel, F1ByLabel])
    recall, f1 = metrics[RecallByLabel], metrics[F1ByLabel]  # ByLabelValue: class -> SingleValue
    names = sorted(set(data[target]) | set(data[predicted_column]))
    actual, predicted = data[target].value_counts(), data[predicted_column].value_counts()
    classes = pd.DataFrame(
        {
            "class": names,
            "actual_rows": [int(actual.get(c, 0)) for c in names],
            "predicted_rows": [int(predicted.get(c, 0)) for c in names],
            "recall": [_label_value(recall, c) for c in names],
            "f1": [_label_value(f1, c) for c in names],
        }
    )
    return MulticlassQuality(
        rows=len(data),
        macro_f1=float(metrics[F1Score].value),
        accuracy=float(metrics[Accuracy].value),
        classes=classes,
    )


def _run(report, data: pd.DataFrame, definition, report_path: Path | None, about: ReportAbout | None):
    """The report run on ``data`` alone (no reference), stored compactly at ``report_path`` if given."""
    from evidently import Dataset

    snapshot = report.run(
        Dataset.from_pandas(data, data_definition=definition), None, **(about.run_kwargs() if about else {})
    )
    if report_path is not None:
        save_snapshot(snapshot, report_path)
    return snapshot


def _numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    data = frame[columns]
    if data.isna().to_numpy().any():
        raise ValueError(f"{columns} must have no missing values for quality")
    try:
        return data.astype("float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{columns} must be numbers for regression quality: {error}") from error


def _label_value(result, label: str) -> float:
    """A class's value in Evidently's by-label result; NaN for a class it has none for."""
    value = result.get_label_result(label)
    return float(value.value) if value is not None else float("nan")
