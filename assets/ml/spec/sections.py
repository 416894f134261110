"""The spec's learning sections: the features, the estimator, how a version is evaluated and when it may serve."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from assets.ml.spec.fields import METRICS, SpecError, StrictModel, identifier


class Features(StrictModel):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @field_validator("numeric", "categorical")
    @classmethod
    def _identifiers(cls, names: list[str]) -> list[str]:
        return [identifier(n) for n in names]

    @model_validator(mode="after")
    def _non_empty_and_distinct(self) -> "Features":
        names = self.numeric + self.categorical
        if not names:
            raise ValueError("at least one numeric or categorical feature is required")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"features listed more than once: {duplicated}")
        return self

    @property
    def all(self) -> list[str]:
        return self.numeric + self.categorical


class Estimator(StrictModel):
    class_path: str = Field(
        alias="class",
        description="Import path of a scikit-learn estimator: a classifier with predict_proba (task binary or "
        "multiclass) or a regressor (task regression)",
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_path")
    @classmethod
    def _importable(cls, value: str) -> str:
        # Only locate the top-level package here: importing scikit-learn at every definitions load costs about
        # a second. The class itself is imported, and checked, when a version is trained.
        module_name, _, class_name = value.rpartition(".")
        if not module_name or not class_name:
            raise ValueError(f"'{value}' is not an import path like sklearn.linear_model.LogisticRegression")
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            raise ValueError(f"cannot find package '{module_name.split('.')[0]}' for '{value}'")
        return value

    def build(self, task: str = "binary"):
        """A fresh, unfitted estimator (imports it now, at training time), of the kind ``task`` needs."""
        module_name, _, class_name = self.class_path.rpartition(".")
        estimator_cls = getattr(importlib.import_module(module_name), class_name, None)
        if estimator_cls is None:
            raise SpecError(f"estimator.class: module '{module_name}' has no '{class_name}'")
        try:
            estimator = estimator_cls(**self.params)
        except TypeError as exc:
            raise SpecError(f"estimator.params do not fit {self.class_path}: {exc}") from None
        from sklearn.base import is_classifier, is_regressor

        if task == "regression" and not is_regressor(estimator):
            raise SpecError(f"estimator.class '{self.class_path}' is not a regressor (task: regression)")
        if task != "regression" and not (is_classifier(estimator) and hasattr(estimator, "predict_proba")):
            raise SpecError(
                f"estimator.class '{self.class_path}' is not a classifier with predict_proba (task: {task})"
            )
        return estimator


class Evaluation(StrictModel):
    window_days: int = Field(120, ge=7, description="Labeled days used for training and holdout")
    holdout_days: int = Field(14, ge=1, description="Newest labeled days held out for evaluation, never trained on")
    # Defaults by the spec's task (ModelSpec fills them in): binary roc_auc, regression rmse, multiclass macro_f1.
    primary_metric: str = Field(description="The metric the gate and promotion judge a version by")
    metrics: list[str] = Field(description="Holdout metrics recorded with every version (the task's own)")
    segments: list[str] = Field(default_factory=list, description="Categorical columns to report metrics by")
    min_training_rows: int = Field(200, ge=10)
    max_training_rows: int | None = Field(
        None,
        ge=1000,
        description="At most this many rows of the window are read to train on: a deterministic sample by the "
        "entity's hash, taken by the warehouse (only the sample reaches the training process). Default: all rows",
    )

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"'{value}' is not a known metric {sorted(METRICS)}")
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in METRICS]
        if unknown:
            raise ValueError(f"{unknown} are not known metrics {sorted(METRICS)}")
        return values

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> "Evaluation":
        if self.holdout_days >= self.window_days:
            raise ValueError(
                f"holdout_days ({self.holdout_days}) must be smaller than window_days ({self.window_days})"
            )
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' must be one of metrics {self.metrics}")
        return self


class Promotion(StrictModel):
    policy: Literal["auto", "manual"] = "manual"
    min_primary: float = Field(
        description="The worst primary metric any version may serve with: a floor where higher is better (roc_auc, "
        "r2, macro_f1), a ceiling where lower is better (rmse, mae, log_loss)"
    )
    tolerance: float = Field(
        0.0, ge=0, description="How much worse than the champion the challenger may be and still pass the gate"
    )
    min_improvement: float = Field(
        0.0,
        ge=0,
        description="By how much more than this a challenger must beat the champion on the primary metric to "
        "replace it automatically (policy auto); 0: strictly better, a tie keeps the champion",
    )
    guardrails: dict[str, float] = Field(
        default_factory=dict, description="Metric -> largest allowed degradation against the champion"
    )
