"""What a training run keeps besides the model: the evaluation plots and tables a person reads, the spec, and the
reference sample monitoring compares scored days against (read back by
:func:`assets.ml.mlflow_logging.load_reference`).

matplotlib and scikit-learn are imported inside the functions that use them (:mod:`assets.ml.plots`,
:mod:`assets.ml.evaluation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from assets.ml import plots
from assets.ml.evaluation import (
    calibration_by_decile,
    class_table,
    confusion_table,
    features,
    importance_metric,
    labels,
    permutation_importance,
    prediction_deciles,
    segment_metrics,
)
from assets.ml.spec import LOWER_IS_BETTER
from assets.monitoring.ordinary_drift import DAY_COLUMN

if TYPE_CHECKING:
    from assets.ml.spec import ModelSpec
    from assets.ml.training import TrainedModel

REFERENCE_PATH = "reference/reference.parquet"
SCORE_COLUMN = "score"
PREDICTED_CLASS_COLUMN = "predicted_class"  # multiclass: the class each reference row was predicted as
IMPORTANCE_ROWS = 2000  # holdout rows for permutation importance: cost is rows x features x repeats predictions


def reference_sample(
    spec: ModelSpec, trained: TrainedModel, seed: int = 0, sensitive: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Up to ``monitoring.reference_rows`` holdout rows: features, the model's score (for multiclass then the
    predicted class, ``predicted_class``), the target as its task reads it (:func:`assets.ml.evaluation.labels`), and
    the day of each row (``nightjar_day``, the spec's timestamp as a date: monitoring measures how far ordinary days
    drift from the rest, :mod:`assets.monitoring.ordinary_drift`).

    The holdout, not the fitted rows: scores on rows the model was fitted on are over-confident (on small data the
    in-sample ROC AUC was 0.93 against 0.76 on the holdout), so score drift against them would fire on every
    healthy day. The holdout is the newest labeled window, scored out of sample, as production days will be.
    Sampled with a fixed seed and kept in time order, so the same training data gives the same reference.

    ``sensitive`` features (``resources.source.sensitive``) are left out: the sample is an MLflow artifact anyone
    with access to the run can download. Monitoring does not check their drift against it (drift_assets).
    """
    rows = trained.holdout
    if len(rows) > spec.monitoring.reference_rows:
        rows = rows.sample(n=spec.monitoring.reference_rows, random_state=seed).sort_index()
    kept = trained.holdout.index.isin(rows.index)
    predictions = trained.holdout_predictions.take(kept)
    reference = features(rows, spec).drop(columns=sorted(sensitive), errors="ignore").reset_index(drop=True)
    reference[SCORE_COLUMN] = predictions.score
    if spec.task == "multiclass":
        reference[PREDICTED_CLASS_COLUMN] = predictions.predicted_class
    reference[spec.target] = labels(rows, spec)
    reference[DAY_COLUMN] = pd.to_datetime(rows[spec.timestamp]).dt.strftime("%Y-%m-%d").to_numpy()
    return reference


def write_artifacts(
    directory: Path,
    spec: ModelSpec,
    trained: TrainedModel,
    reference: pd.DataFrame,
    sensitive: frozenset[str] = frozenset(),
) -> None:
    """Plots, tables and the reference sample, laid out as they appear in the run's artifacts: every task's
    ``evaluation/metrics.json``, ``segment_metrics.csv`` and feature importance, then the task's own
    (:func:`_task_artifacts`). No table or plot shows a row's value of a feature: the segments of
    ``segment_metrics.csv`` are values, so a ``sensitive`` segment column is left out of it (fairness bands by
    the spec's own bins instead)."""
    y = labels(trained.holdout, spec)
    predictions = trained.holdout_predictions
    window = trained.holdout_window
    caption = f"{spec.name}, holdout {window['first_day']}..{window['last_day']} ({window['rows']} rows)"

    importance = permutation_importance(trained.pipeline, trained.holdout, spec, max_rows=IMPORTANCE_ROWS)
    (directory / "evaluation").mkdir(parents=True)
    segments = [c for c in spec.evaluation.segments if c not in sensitive]
    segment_metrics(trained.holdout, y, predictions, segments, spec.task).to_csv(
        directory / "evaluation" / "segment_metrics.csv", index=False
    )
    importance.to_csv(directory / "evaluation" / "feature_importance.csv", index=False)
    (directory / "evaluation" / "metrics.json").write_text(json.dumps(trained.metrics, indent=2, sort_keys=True))
    _task_artifacts(directory, spec, y, predictions, caption)
    plots.save(
        plots.importance_figure(
            importance, f"Permutation importance (up to {IMPORTANCE_ROWS} rows)\n{caption}", _importance_label(spec)
        ),
        directory / "plots" / "feature_importance.png",
    )

    (directory / "reference").mkdir()
    reference.to_parquet(directory / REFERENCE_PATH, index=False)
    (directory / "spec").mkdir()
    spec_json = spec.model_dump(mode="json", by_alias=True)
    (directory / "spec" / "model_spec.json").write_text(json.dumps(spec_json, indent=2))


def _task_artifacts(directory: Path, spec: ModelSpec, y, predictions, caption: str) -> None:
    """Binary: the ROC curve and calibration by score decile. Regression: residuals, predicted against actual, and
    the mean actual value per predicted decile. Multiclass: the confusion matrix and each class's recall,
    precision and F1."""
    evaluation, figures = directory / "evaluation", directory / "plots"
    p = predictions.score
    if spec.task == "regression":
        prediction_deciles(y, p).to_csv(evaluation / "prediction_deciles.csv", index=False)
        plots.save(plots.residuals_figure(y, p, f"Residuals\n{caption}"), figures / "residuals.png")
        plots.save(
            plots.predicted_vs_actual_figure(y, p, f"Predicted vs actual {spec.target}\n{caption}"),
            figures / "predicted_vs_actual.png",
        )
        return
    if spec.task == "multiclass":
        confusion = confusion_table(y, predictions)
        confusion.to_csv(evaluation / "confusion_matrix.csv")
        class_table(y, predictions).to_csv(evaluation / "class_metrics.csv", index=False)
        plots.save(plots.confusion_figure(confusion, f"Confusion matrix\n{caption}"), figures / "confusion_matrix.png")
        return
    deciles = calibration_by_decile(y, p)
    deciles.to_csv(evaluation / "calibration_by_decile.csv", index=False)
    plots.save(plots.roc_figure(y, p, f"ROC curve\n{caption}"), figures / "roc_curve.png")
    plots.save(
        plots.calibration_figure(deciles, f"Calibration by score decile\n{caption}"), figures / "calibration.png"
    )


def _importance_label(spec: ModelSpec) -> str:
    metric = importance_metric(spec)
    name = "ROC AUC" if metric == "roc_auc" else metric
    return f"{'rise' if metric in LOWER_IS_BETTER else 'drop'} in {name} when shuffled"
