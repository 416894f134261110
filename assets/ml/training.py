"""Training a model spec on its labeled mart: time split, the scikit-learn pipeline, the fit and its fingerprint.

The caller chooses the rows (the spec's ``evaluation.window_days`` of labeled days); this module orders them,
holds out the newest ``holdout_days`` days, fits on the rest and scores the holdout. scikit-learn is imported
inside the functions: this module is imported when Dagster loads its definitions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assets.ml.evaluation import Predictions, class_names, features, labels, predict, task_metrics
from assets.ml.spec import check_mart_columns

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from assets.ml.spec import ModelSpec

# Injected into estimators that take a random_state the spec left unset, so every fit is repeatable.
DEFAULT_RANDOM_STATE = 0
# OpenMP threads while fitting and evaluating. On the shared 2-core machines, with other Dagster steps running,
# HistGradientBoosting's OpenMP threads spin-wait for busy cores: a 21k-row fit took 24-37 s with 2 threads and
# 2 s with 1 (same predictions either way), and small-batch predictions (permutation importance) were 5-20x slower.
TRAINING_THREADS = 1


def limited_threads(threads: int | None = TRAINING_THREADS):
    """Context manager capping OpenMP and BLAS threads; ``None`` leaves the libraries' defaults."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


class TrainingDataError(ValueError):
    """The training rows cannot make a model; the message names the spec and the counts."""


@dataclass(frozen=True)
class TrainedModel:
    spec: ModelSpec
    pipeline: Pipeline
    train: pd.DataFrame  # the rows fitted on, oldest first
    holdout: pd.DataFrame  # the newest holdout_days days, never fitted on
    holdout_scores: np.ndarray  # the ``score`` of each holdout row, in its order (binary: P(target = 1))
    # What the model predicts for ``holdout``: its ``score`` is ``holdout_scores``; multiclass: the classes too.
    holdout_predictions: Predictions
    metrics: dict[str, float]  # the task's metrics on the holdout (assets.ml.evaluation.task_metrics)
    data_hash: str  # sha256 of train + holdout (see content_hash)
    train_hash: str
    holdout_hash: str
    fit_seconds: float

    @property
    def train_window(self) -> dict[str, Any]:
        return window(self.train, self.spec)

    @property
    def holdout_window(self) -> dict[str, Any]:
        return window(self.holdout, self.spec)


def _days(frame: pd.DataFrame, spec: ModelSpec) -> pd.Series:
    return pd.to_datetime(frame[spec.timestamp]).dt.normalize()


def window(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, Any]:
    """First and last day (ISO), distinct days and rows of a frame, by ``spec.timestamp``."""
    days = _days(frame, spec)
    return {
        "first_day": days.min().date().isoformat(),
        "last_day": days.max().date().isoformat(),
        "days": int(days.nunique()),
        "rows": len(frame),
    }


def _ordered(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Rows by timestamp, then entity id: the same rows give the same order (and fit) whatever order they came in."""
    keys = [spec.timestamp] + ([spec.entity_id] if spec.entity_id in frame.columns else [])
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def time_split(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the newest ``holdout_days`` distinct days of ``spec.timestamp`` are the holdout.

    Ordered by time, never shuffled: the holdout measures the model on days after everything it learned from.
    """
    for column in (spec.timestamp, spec.target):
        if column not in frame.columns:
            raise TrainingDataError(f"model spec '{spec.name}': training frame has no column '{column}'")
    if frame[spec.timestamp].isna().any():
        raise TrainingDataError(
            f"model spec '{spec.name}': {int(frame[spec.timestamp].isna().sum())} row(s) without {spec.timestamp}"
        )
    ordered = _ordered(frame, spec)
    days = _days(ordered, spec)
    distinct = np.sort(days.unique())
    holdout_days = spec.evaluation.holdout_days
    if len(distinct) <= holdout_days:
        raise TrainingDataError(
            f"model spec '{spec.name}': {len(distinct)} distinct {spec.timestamp} day(s) in {len(frame)} rows; "
            f"need more than holdout_days={holdout_days} to leave any day to train on"
        )
    in_holdout = (days >= distinct[-holdout_days]).to_numpy()
    train, holdout = ordered[~in_holdout], ordered[in_holdout]
    minimum = spec.evaluation.min_training_rows
    if len(train) < minimum:
        raise TrainingDataError(
            f"model spec '{spec.name}': {len(train)} training row(s) before the {holdout_days}-day holdout "
            f"({len(holdout)} rows), fewer than evaluation.min_training_rows={minimum}"
        )
    if spec.task != "regression":  # a number needs no classes
        for part, rows in (("training", train), ("holdout", holdout)):
            counts = rows[spec.target].value_counts().to_dict()
            if len(counts) < 2:
                needs = "both" if spec.task == "binary" else "at least two"
                raise TrainingDataError(
                    f"model spec '{spec.name}': the {part} rows hold a single class of '{spec.target}' "
                    f"(counts {counts} in {len(rows)} rows); a classifier needs {needs}"
                )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """Impute (+ scale) numeric, impute + one-hot categorical, then ``spec.estimator``; unfitted.

    Numeric columns are also standardized: it changes nothing for tree models and lets linear models (whose
    solvers otherwise fail to converge on incomes in the 100k range) work from the same spec format.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if spec.features.numeric:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, list(spec.features.numeric)))
    if spec.features.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.features.categorical)))
    estimator = spec.estimator.build(spec.task)
    params = estimator.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        estimator.set_params(random_state=DEFAULT_RANDOM_STATE)
    return Pipeline([("preprocess", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)])


def content_hash(frame: pd.DataFrame, spec: ModelSpec) -> str:
    """sha256 of what a model learns from: entity id, timestamp, features and target, in the given row order.

    Hashed after the same dtype normalization as the model input, so an INTEGER column that arrives as int64 one
    day and Int64 (because of a null elsewhere) another does not change the hash of equal values; the target as
    its task reads it (int64 0/1, float64, class names).
    """
    columns = {
        spec.entity_id: frame[spec.entity_id].astype(str),
        spec.timestamp: pd.to_datetime(frame[spec.timestamp]).astype("datetime64[ns]"),
    }
    normalized = pd.concat(
        [pd.DataFrame(columns, index=frame.index), features(frame, spec), _hashed_target(frame, spec)],
        axis=1,
    )
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in normalized.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(normalized, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _hashed_target(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The target column normalized for the hash. No checks here (a null or a wrong value is refused by
    :func:`assets.ml.evaluation.labels` when the model is trained): the fingerprint is taken before training."""
    y = frame[spec.target]
    if spec.task == "regression":
        target = pd.to_numeric(y, errors="coerce").astype("float64")
    elif spec.task == "multiclass":
        target = pd.Series(class_names(y), index=frame.index, dtype=object)
    else:
        target = y.astype("int64")
    return pd.DataFrame({spec.target: target}, index=frame.index)


def train(spec: ModelSpec, frame: pd.DataFrame, *, threads: int | None = TRAINING_THREADS) -> TrainedModel:
    """Split, fit ``build_pipeline(spec)`` on the older days and evaluate it on the holdout days."""
    check_mart_columns(spec, set(frame.columns), spec.training_mart, source=f"model spec '{spec.name}'")
    train_rows, holdout_rows = time_split(frame, spec)
    pipeline = build_pipeline(spec)
    with limited_threads(threads):
        started = time.perf_counter()
        pipeline.fit(features(train_rows, spec), labels(train_rows, spec))
        fit_seconds = time.perf_counter() - started
        predictions = predict(pipeline, holdout_rows, spec)
    train_hash, holdout_hash = content_hash(train_rows, spec), content_hash(holdout_rows, spec)
    return TrainedModel(
        spec=spec,
        pipeline=pipeline,
        train=train_rows,
        holdout=holdout_rows,
        holdout_scores=predictions.score,
        holdout_predictions=predictions,
        metrics=task_metrics(spec.task, labels(holdout_rows, spec), predictions),
        data_hash=content_hash(pd.concat([train_rows, holdout_rows], ignore_index=True), spec),
        train_hash=train_hash,
        holdout_hash=holdout_hash,
        fit_seconds=fit_seconds,
    )
