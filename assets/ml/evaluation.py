"""How a model is judged: scores, holdout metrics, calibration, segments, decision bands.

Comparing a challenger with the champion is :func:`assets.ml.gate.improvement`.

Pure functions over numpy/pandas; scikit-learn is imported inside the functions that need it, because this module
is imported when Dagster loads its definitions.

Every model input goes through :func:`features` first (training, scoring, the logged signature): it is the one place
that fixes the columns' order and dtypes. That matters for the logged MLflow model, whose schema enforcement refuses
``int64`` for a ``double`` column and, the other way round, a column that became ``float64`` because it holds nulls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from assets.ml.spec import DecisionBands, ModelSpec


def features(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The model's input for ``spec``: ``spec.features.all`` in order, numeric as float64, categorical as object.

    Missing values become NaN everywhere: the categorical imputer only recognises NaN, and DuckDB hands over a
    missing VARCHAR as ``None``, which the one-hot encoder would otherwise treat as a category of its own.
    """
    return model_input(frame, spec.features.numeric, spec.features.categorical, spec.name)


def model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str], name: str) -> pd.DataFrame:
    """``numeric + categorical`` columns of ``frame``, normalized as :func:`features` describes."""
    columns = [*numeric, *categorical]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"model spec '{name}': frame has no feature column(s) {missing}")
    out = {c: pd.to_numeric(frame[c], errors="raise").astype("float64") for c in numeric}
    for c in categorical:
        column = frame[c].astype(object)
        out[c] = column.where(column.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index)[columns]


def inputs_of(model: Any) -> tuple[list[str], list[str]] | None:
    """(numeric, categorical) columns a model was trained on, read from the model itself; None if it does not say.

    A registered version keeps the features it was trained with even after the spec changes, so an older champion
    must be scored on its own columns, not on the current spec's.
    """
    metadata = getattr(model, "metadata", None)  # an MLflow pyfunc model: its logged input schema
    if metadata is not None and hasattr(metadata, "get_input_schema"):
        schema = metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            return None
        numeric, categorical = [], []
        for column in schema.inputs:
            kind = getattr(column.type, "name", str(column.type))
            (categorical if kind == "string" else numeric).append(column.name)
        return numeric, categorical
    named_steps = getattr(model, "named_steps", None)  # a pipeline from assets.ml.training.build_pipeline
    preprocess = named_steps.get("preprocess") if named_steps is not None else None
    if preprocess is not None and hasattr(preprocess, "transformers_"):
        by_name = {name: list(cols) for name, _, cols in preprocess.transformers_}
        return by_name.get("numeric", []), by_name.get("categorical", [])
    return None


def labels(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target as the spec's task reads it: int 0/1 (binary), float (regression) or class names as strings
    (multiclass, see :func:`class_names`); fails on nulls or values that do not fit rather than guessing."""
    y = frame[spec.target]
    if y.isna().any():
        raise ValueError(f"model spec '{spec.name}': target '{spec.target}' has {int(y.isna().sum())} null(s)")
    task = getattr(spec, "task", "binary")
    if task == "regression":
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].unique().tolist()[:5]
            raise ValueError(f"model spec '{spec.name}': target '{spec.target}' must be a number, found {bad}")
        return values.astype("float64").to_numpy()
    if task == "multiclass":
        return class_names(y)
    # Checked before the cast, which would turn 0.5 into 0 without a word.
    unexpected = [v for v in pd.unique(y).tolist() if not (v == 0 or v == 1)]
    if unexpected:
        raise ValueError(f"model spec '{spec.name}': target '{spec.target}' must be 0/1, found {unexpected[:5]}")
    return y.astype("int64").to_numpy()


def class_names(values: Any) -> np.ndarray:
    """Class labels as the strings every engine stores them as: a whole number as ``"3"`` (not ``"3.0"``, which a
    nullable integer column read as float would give), anything else as ``str``."""
    out = []
    for v in np.asarray(values, dtype=object):
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)
        out.append(str(v))
    return np.asarray(out, dtype=object)


@dataclass(frozen=True)
class Predictions:
    """What a version predicts for rows, by the spec's task.

    ``score`` is the one number every task stores (the predictions' ``score`` column): P(target = 1) for binary,
    the predicted value for regression, the predicted class's probability for multiclass. Multiclass also has the
    predicted class of each row, and the probability of every class (columns in ``classes`` order)."""

    score: np.ndarray
    predicted_class: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    classes: list[str] | None = None

    def take(self, mask: np.ndarray) -> Predictions:
        """The rows where ``mask`` is true."""
        return Predictions(
            self.score[mask],
            None if self.predicted_class is None else self.predicted_class[mask],
            None if self.probabilities is None else self.probabilities[mask],
            self.classes,
        )


def predict(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> Predictions:
    """:class:`Predictions` of ``frame`` by a fitted scikit-learn pipeline or an MLflow pyfunc model, for the
    spec's task. The model's own input columns are used when it records them (see :func:`inputs_of`)."""
    task = getattr(spec, "task", "binary")
    if task == "binary":
        return Predictions(score(model, frame, spec))
    inputs = inputs_of(model)
    X = features(frame, spec) if inputs is None else model_input(frame, *inputs, spec.name)
    raw = _fitted(model, "predict_proba" if task == "multiclass" else "predict") if inputs is not None else model
    return _task_predictions(raw, X, len(frame), spec)


def predict_transformed(estimator: Any, transformed: Any, spec: ModelSpec) -> Predictions:
    """:class:`Predictions` by a pipeline's final ``estimator`` of rows already through the pipeline's preprocess
    step: the same numbers as :func:`predict` by the pipeline (which computes exactly this), for a caller that
    needs the transformed rows too (the reason codes, :meth:`assets.ml.reasons.ReasonExplainer.transform`)."""
    n = transformed.shape[0]
    if getattr(spec, "task", "binary") == "binary":
        proba = estimator.predict_proba(transformed) if hasattr(estimator, "predict_proba") else None
        if proba is None:
            return Predictions(_positive_class(estimator.predict(transformed), n, spec))
        return Predictions(_positive_class(proba, n, spec))
    return _task_predictions(estimator, transformed, n, spec)


def _task_predictions(raw: Any, X: Any, n: int, spec: ModelSpec) -> Predictions:
    """Regression or multiclass :class:`Predictions` of ``n`` rows ``X`` by ``raw``."""
    if spec.task == "regression":
        values = raw.predict(X)
        values = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame | pd.Series) else values, "float64")
        values = values.reshape(n, -1)[:, 0] if values.ndim == 2 else values
        if values.shape != (n,):
            raise ValueError(f"model spec '{spec.name}': expected {n} predictions, got shape {values.shape}")
        return Predictions(values)
    if not hasattr(raw, "predict_proba") or not hasattr(raw, "classes_"):
        raise ValueError(f"model spec '{spec.name}': a multiclass model needs predict_proba and classes_")
    proba = np.asarray(raw.predict_proba(X), dtype="float64")
    classes = [str(c) for c in class_names(raw.classes_)]
    if proba.shape != (n, len(classes)):
        raise ValueError(
            f"model spec '{spec.name}': expected {n} x {len(classes)} class probabilities, got {proba.shape}"
        )
    best = proba.argmax(axis=1) if n else np.zeros(0, dtype="int64")
    return Predictions(proba[np.arange(n), best], np.asarray(classes, dtype=object)[best], proba, classes)


def score(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """Probabilities of class 1 from a fitted scikit-learn pipeline or an MLflow pyfunc model.

    The model's own input columns are used when it records them (see :func:`inputs_of`), else the spec's. A pyfunc
    model logged by :mod:`assets.ml.mlflow_model` predicts ``predict_proba``: an (n, 2) array.
    """
    inputs = inputs_of(model)
    X = features(frame, spec) if inputs is None else model_input(frame, *inputs, spec.name)
    model = _fitted(model) if inputs is not None else model
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)
    return _positive_class(proba, len(frame), spec)


def _positive_class(proba: Any, n: int, spec: ModelSpec) -> np.ndarray:
    """P(class 1) of ``n`` rows from a model's (n, 2) ``predict_proba`` (or its (n,) scores)."""
    proba = np.asarray(proba.to_numpy() if isinstance(proba, pd.DataFrame | pd.Series) else proba, dtype="float64")
    if proba.ndim == 2:
        if proba.shape[1] != 2:
            raise ValueError(f"model spec '{spec.name}': expected 2 class probabilities, got shape {proba.shape}")
        proba = proba[:, 1]
    if proba.shape != (n,):
        raise ValueError(f"model spec '{spec.name}': expected {n} scores, got shape {proba.shape}")
    return proba


def _fitted(model: Any, method: str = "predict_proba") -> Any:
    """The fitted estimator inside an MLflow pyfunc model, when it has ``method``; else the model.

    ``model_input`` has already shaped the frame to the model's logged schema (its columns, in order, with their
    types), so going through pyfunc's ``predict`` would only check that schema again, column by column: a third of
    the scoring time at 1,000,000 rows (``python -m bench.model``)."""
    try:
        raw = model.get_raw_model()
    except (AttributeError, NotImplementedError):
        return model
    return raw if hasattr(raw, method) else model


def _two_classes(y: np.ndarray) -> bool:
    return np.unique(y).size == 2


def metrics(y_true, p) -> dict[str, float]:
    """Holdout metrics. Ranking metrics are NaN when ``y_true`` holds a single class (they are undefined)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype="int64")
    p = np.asarray(p, dtype="float64")
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"metrics need two equal, non-empty 1-d arrays, got {y.shape} and {p.shape}")
    ranked = _two_classes(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if ranked else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if ranked else math.nan,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "base_rate": float(y.mean()),
        "mean_score": float(p.mean()),
    }


def task_metrics(task: str, y_true: Any, predictions: Predictions) -> dict[str, float]:
    """The holdout metrics of ``task`` (``assets.ml.spec.TASK_METRICS``) and a few figures beside them."""
    if task == "binary":
        return metrics(y_true, predictions.score)
    if task == "regression":
        return regression_metrics(y_true, predictions.score)
    return multiclass_metrics(y_true, predictions)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """RMSE, MAE, R² (NaN with a constant target), the median and 90th percentile of the absolute error, and the
    signed error's (predicted - actual) 10th, 50th and 90th percentiles: where the model is off, and which way."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"metrics need two equal, non-empty 1-d arrays, got {y.shape} and {p.shape}")
    error = p - y
    absolute = np.abs(error)
    spread = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((error**2).mean())),
        "mae": float(absolute.mean()),
        "r2": 1.0 - float((error**2).sum()) / spread if spread > 0 else math.nan,
        "median_abs_error": float(np.median(absolute)),
        "abs_error_p90": float(np.quantile(absolute, 0.9)),
        "error_p10": float(np.quantile(error, 0.1)),
        "error_p50": float(np.quantile(error, 0.5)),
        "error_p90": float(np.quantile(error, 0.9)),
        "mean_target": float(y.mean()),
        "mean_prediction": float(p.mean()),
    }


def multiclass_metrics(y_true: Any, predictions: Predictions) -> dict[str, float]:
    """Macro and weighted F1, accuracy, log loss and each class's recall (``recall_<class>``, NaN for a class
    without rows). A label the model never saw counts as wrong, and as probability 1e-15 in the log loss."""
    from sklearn.metrics import f1_score

    y = class_names(y_true)
    if predictions.predicted_class is None or predictions.probabilities is None or predictions.classes is None:
        raise ValueError("multiclass metrics need the predicted classes and their probabilities")
    predicted = np.asarray(predictions.predicted_class, dtype=object)
    if y.shape != predicted.shape or y.size == 0:
        raise ValueError(f"metrics need two equal, non-empty 1-d arrays, got {y.shape} and {predicted.shape}")
    index = {c: i for i, c in enumerate(predictions.classes)}
    known = np.asarray([label in index for label in y])
    columns = np.asarray([index.get(label, 0) for label in y])
    p_true = np.where(known, predictions.probabilities[np.arange(len(y)), columns], 0.0)
    labels = sorted(set(predictions.classes) | set(y.tolist()))
    out = {
        "macro_f1": float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, predicted, labels=labels, average="weighted", zero_division=0)),
        "accuracy": float((y == predicted).mean()),
        "log_loss": float(-np.log(np.clip(p_true, 1e-15, 1.0)).mean()),
    }
    for label in predictions.classes:
        rows = y == label
        out[f"recall_{label}"] = float((predicted[rows] == label).mean()) if rows.any() else math.nan
    return out


def calibration_by_decile(y, p) -> pd.DataFrame:
    """Score deciles (1 = lowest scores) with their mean score, observed positive rate (target == 1) and row count.

    Deciles are cut on the rank, not the value, so ties (a constant model) still give ten equal groups.
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    n = len(p)
    if n == 0:
        return pd.DataFrame({"decile": [], "mean_score": [], "positive_rate": [], "count": []})
    order = np.argsort(p, kind="stable")
    decile = np.empty(n, dtype="int64")
    decile[order] = np.arange(n) * min(10, n) // n + 1
    grouped = pd.DataFrame({"decile": decile, "score": p, "y": y}).groupby("decile", sort=True)
    out = grouped.agg(mean_score=("score", "mean"), positive_rate=("y", "mean"), count=("y", "size")).reset_index()
    return out


def segment_metrics(
    frame: pd.DataFrame, y, p: np.ndarray | Predictions, segments: list[str], task: str = "binary"
) -> pd.DataFrame:
    """Per value of each segment column: rows, then the task's figures (:data:`SEGMENT_FIGURES`): binary ROC AUC (NaN
    with a single class), positive rate and mean score; regression RMSE, MAE, mean actual and mean predicted value;
    multiclass accuracy, macro recall (balanced accuracy over the classes present) and the mean probability of the
    predicted class. ``p``: the scores, or (multiclass) the :class:`Predictions`."""
    predictions = p if isinstance(p, Predictions) else Predictions(np.asarray(p, dtype="float64"))
    y = labels_as(task, y)
    if not (len(frame) == len(y) == len(predictions.score)):
        raise ValueError(
            f"segment_metrics: frame ({len(frame)}), y ({len(y)}) and p ({len(predictions.score)}) differ in length"
        )
    rows = []
    for column in segments:
        values = frame[column].astype(object).where(frame[column].notna(), "(missing)").to_numpy()
        for value in sorted(set(values), key=str):
            mask = values == value
            figures = _segment_figures(task, y[mask], predictions.take(mask))
            rows.append({"segment": column, "value": str(value), "rows": int(mask.sum()), **figures})
    return pd.DataFrame(rows, columns=["segment", "value", "rows", *SEGMENT_FIGURES[task]])


# The columns of segment_metrics after segment, value and rows, per task.
SEGMENT_FIGURES = {
    "binary": ["roc_auc", "positive_rate", "mean_score"],
    "regression": ["rmse", "mae", "mean_target", "mean_prediction"],
    "multiclass": ["accuracy", "macro_recall", "mean_score"],
}


def labels_as(task: str, y) -> np.ndarray:
    """Labels already read (:func:`labels`) as the task's arrays: int64, float64 or class names."""
    if task == "multiclass":
        return class_names(y)
    return np.asarray(y, dtype="float64" if task == "regression" else "int64")


def _segment_figures(task: str, y: np.ndarray, predictions: Predictions) -> dict[str, float]:
    p = predictions.score
    if task == "regression":
        error = p - y
        return {
            "rmse": float(np.sqrt((error**2).mean())),
            "mae": float(np.abs(error).mean()),
            "mean_target": float(y.mean()),
            "mean_prediction": float(p.mean()),
        }
    if task == "multiclass":
        predicted = np.asarray(predictions.predicted_class, dtype=object)
        recalls = [float((predicted[y == label] == label).mean()) for label in np.unique(y)]
        return {
            "accuracy": float((predicted == y).mean()),
            "macro_recall": float(np.mean(recalls)),
            "mean_score": float(p.mean()),
        }
    from sklearn.metrics import roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, p)) if _two_classes(y) else math.nan,
        "positive_rate": float(y.mean()),
        "mean_score": float(p.mean()),
    }


def prediction_deciles(y, p) -> pd.DataFrame:
    """Regression's calibration: predicted-value deciles (1 = lowest predictions) with their mean prediction, mean
    actual value and row count; cut on the rank as :func:`calibration_by_decile`."""
    table = calibration_by_decile(y, p)
    return table.rename(columns={"mean_score": "mean_prediction", "positive_rate": "mean_actual"})


def class_table(y, predictions: Predictions) -> pd.DataFrame:
    """Multiclass, per class (the model's classes, then labels it never saw): rows, predicted rows, recall,
    precision and F1 (NaN where undefined)."""
    y = class_names(y)
    predicted = np.asarray(predictions.predicted_class, dtype=object)
    rows = []
    for label in _table_classes(y, predictions):
        actual, chosen = y == label, predicted == label
        hits = int((actual & chosen).sum())
        recall = hits / actual.sum() if actual.any() else math.nan
        precision = hits / chosen.sum() if chosen.any() else math.nan
        f1 = 2 * hits / (actual.sum() + chosen.sum()) if actual.any() or chosen.any() else math.nan
        rows.append(
            {
                "class": label,
                "rows": int(actual.sum()),
                "predicted_rows": int(chosen.sum()),
                "recall": float(recall),
                "precision": float(precision),
                "f1": float(f1),
            }
        )
    return pd.DataFrame(rows, columns=["class", "rows", "predicted_rows", "recall", "precision", "f1"])


def confusion_table(y, predictions: Predictions) -> pd.DataFrame:
    """Multiclass: rows = actual class, columns = predicted class, cells = row counts (classes as in
    :func:`class_table`)."""
    y = class_names(y)
    classes = _table_classes(y, predictions)
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype="int64")
    predicted = [index[c] for c in np.asarray(predictions.predicted_class, dtype=object)]
    np.add.at(counts, ([index[c] for c in y], predicted), 1)
    return pd.DataFrame(counts, index=pd.Index(classes, name="actual"), columns=pd.Index(classes, name="predicted"))


def _table_classes(y: np.ndarray, predictions: Predictions) -> list[str]:
    """The model's classes in its order, then the labels it never saw (sorted)."""
    known = list(predictions.classes or [])
    return known + sorted(set(y.tolist()) - set(known))


def decisions_of(predictions: Predictions, spec: ModelSpec) -> np.ndarray:
    """The decision of each prediction: the band of its score (binary, regression with bands), the class's decision
    (multiclass: ``class_decisions``, else the class itself), None (regression without bands)."""
    if spec.task == "multiclass":
        classes = np.asarray(predictions.predicted_class, dtype=object)
        return np.asarray([spec.class_decisions.get(c, c) for c in classes], dtype=object)
    if spec.decision_bands is None:
        return np.full(len(predictions.score), None, dtype=object)
    return decide(predictions.score, spec.decision_bands)


def decide(p, bands: DecisionBands) -> np.ndarray:
    """The name of each score's band: the first band whose ``below`` the score is under, else the last band.

    A score equal to a band's ``below`` belongs to the next band (``below`` is exclusive).
    """
    p = np.asarray(p, dtype="float64")
    if np.isnan(p).any():
        # A NaN score would silently land in the last band; it is a scoring bug, not a borderline case.
        raise ValueError(f"decide: {int(np.isnan(p).sum())} NaN score(s)")
    # side="right": a score equal to a bound counts as not below it.
    index = np.searchsorted(np.asarray(bands.bounds, dtype="float64"), p, side="right")
    return np.asarray(bands.names, dtype=object)[index]


def importance_metric(spec: ModelSpec) -> str:
    """The metric permutation importance measures a feature by: ROC AUC for binary, the primary metric otherwise."""
    return "roc_auc" if spec.task == "binary" else spec.evaluation.primary_metric


def permutation_importance(
    pipeline: Any, frame: pd.DataFrame, spec: ModelSpec, *, max_rows: int = 2000, n_repeats: int = 3, seed: int = 0
) -> pd.DataFrame:
    """How much worse the holdout's :func:`importance_metric` gets when each input feature is shuffled (feature,
    importance_mean, importance_std; positive: the model needs it, whichever way the metric points).

    Works for any estimator (no ``feature_importances_`` needed) and on the raw features, not one-hot columns.
    The rows are a sample of at most ``max_rows`` (stratified by class for a classifier): the cost is rows x
    features x repeats predictions.
    """
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance
    from sklearn.utils import resample

    X, y = features(frame, spec), labels(frame, spec)
    if len(X) > max_rows:
        stratify = None if spec.task == "regression" else y
        X, y = resample(X, y, n_samples=max_rows, replace=False, stratify=stratify, random_state=seed)
    if spec.task == "binary" and not _two_classes(y):
        raise ValueError(f"model spec '{spec.name}': permutation importance needs both classes in its rows")
    scoring = "roc_auc" if spec.task == "binary" else _task_scorer(spec)
    result = sklearn_permutation_importance(pipeline, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed)
    out = pd.DataFrame(
        {"feature": X.columns, "importance_mean": result.importances_mean, "importance_std": result.importances_std}
    )
    return out.sort_values("importance_mean", ascending=False, kind="mergesort").reset_index(drop=True)


def _task_scorer(spec: ModelSpec):
    """A scikit-learn scorer (higher is better) of the spec's :func:`importance_metric`, measured as the holdout
    metrics are (:func:`predict`, :func:`task_metrics`): a lower-is-better metric is negated."""
    from assets.ml.spec import LOWER_IS_BETTER

    metric = importance_metric(spec)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def scorer(estimator: Any, X: pd.DataFrame, y: np.ndarray) -> float:
        return sign * task_metrics(spec.task, y, predict(estimator, X, spec))[metric]

    return scorer
