"""Model specs: one YAML file per model under model_specs/, validated on load.

A spec says what to learn from (a dbt mart), what to score (another mart), the features, the estimator, how the
model is evaluated and promoted, how scores become decisions, and the monitoring thresholds. The ML factory turns
each spec into the same assets, checks and jobs, so adding a model is adding a spec, not writing code.
Every error names the spec file and the field that is wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Column and mart names are written into SQL: plain identifiers only.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"'{value}' is not a plain column or model name (letters, digits, underscores)")
    return value
LOWER_IS_BETTER = {"log_loss", "brier"}
METRICS = {"roc_auc", "pr_auc", "log_loss", "brier"}


class SpecError(ValueError):
    """A model spec that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Features(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @field_validator("numeric", "categorical")
    @classmethod
    def _identifiers(cls, names: list[str]) -> list[str]:
        return [_identifier(n) for n in names]

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


class Estimator(_Strict):
    class_path: str = Field(alias="class", description="Import path of a scikit-learn classifier")
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

    def build(self):
        """A fresh, unfitted estimator (imports it now, at training time)."""
        module_name, _, class_name = self.class_path.rpartition(".")
        estimator_cls = getattr(importlib.import_module(module_name), class_name, None)
        if estimator_cls is None or not hasattr(estimator_cls, "predict_proba"):
            raise SpecError(f"estimator.class '{self.class_path}' is not a classifier with predict_proba")
        try:
            return estimator_cls(**self.params)
        except TypeError as exc:
            raise SpecError(f"estimator.params do not fit {self.class_path}: {exc}") from None


class Evaluation(_Strict):
    window_days: int = Field(120, ge=7, description="Labeled days used for training and holdout")
    holdout_days: int = Field(14, ge=1, description="Newest labeled days held out for evaluation, never trained on")
    primary_metric: Literal["roc_auc", "pr_auc", "log_loss", "brier"] = "roc_auc"
    metrics: list[Literal["roc_auc", "pr_auc", "log_loss", "brier"]] = Field(
        default_factory=lambda: ["roc_auc", "pr_auc", "log_loss", "brier"]
    )
    segments: list[str] = Field(default_factory=list, description="Categorical columns to report metrics by")
    min_training_rows: int = Field(200, ge=10)

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> "Evaluation":
        if self.holdout_days >= self.window_days:
            raise ValueError(f"holdout_days ({self.holdout_days}) must be smaller than window_days ({self.window_days})")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' must be one of metrics {self.metrics}")
        return self


class Promotion(_Strict):
    policy: Literal["auto", "manual"] = "manual"
    min_primary: float = Field(description="Absolute floor on the primary metric for any version to serve")
    tolerance: float = Field(0.0, ge=0, description="How much worse than the champion the challenger may be")
    guardrails: dict[Literal["roc_auc", "pr_auc", "log_loss", "brier"], float] = Field(
        default_factory=dict, description="Metric -> largest allowed degradation against the champion"
    )


class DecisionBand(_Strict):
    """One decision: scores below ``below`` (and not in an earlier band) get ``name``; the last band has no
    ``below`` and takes every score above the previous band's."""

    name: str = Field(description="The decision written for scores in this band (lower_snake_case)")
    below: float | None = Field(None, gt=0, le=1, description="Upper bound (exclusive) of the band's scores")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"'{value}' must be lower_snake_case (letters, digits, underscores), starting with a letter")
        return value


class DecisionBands(RootModel[list[DecisionBand]]):
    """Ordered bands from the lowest scores to the highest, e.g. ``[{name: low, below: 0.1}, {name: high}]``.

    Every band but the last has a ``below``, strictly increasing in (0, 1]; the last has none and takes the rest.
    Names are distinct: they are the decisions stored with each prediction.
    """

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _a_list(cls, data: Any) -> Any:
        if isinstance(data, dict):  # e.g. a spec still in the earlier form, a mapping of two thresholds
            raise ValueError(
                "must be a list of bands from the lowest scores up, each {name, below}, the last without below, "
                "e.g. [{name: low, below: 0.1}, {name: medium, below: 0.3}, {name: high}]"
            )
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "DecisionBands":
        bands = self.root
        if len(bands) < 2:
            raise ValueError(f"needs at least two bands (found {len(bands)}): one band would decide every score alike")
        names = [b.name for b in bands]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"band names must be distinct, {duplicated} listed more than once")
        for index, band in enumerate(bands[:-1]):
            if band.below is None:
                raise ValueError(
                    f"band {index} ('{band.name}') has no 'below': only the last band may leave it out "
                    "(it takes the rest)"
                )
        if bands[-1].below is not None:
            raise ValueError(
                f"the last band ('{bands[-1].name}') must have no 'below' (it takes every score from "
                f"{bands[-2].below} up); found below: {bands[-1].below}"
            )
        for index in range(1, len(bands) - 1):
            previous, band = bands[index - 1], bands[index]
            if band.below <= previous.below:
                raise ValueError(
                    f"'below' must increase from band to band: band {index} ('{band.name}') has below {band.below}, "
                    f"not above band {index - 1} ('{previous.name}') at {previous.below}"
                )
        return self

    def __iter__(self):
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, index: int) -> DecisionBand:
        return self.root[index]

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.root]

    @property
    def bounds(self) -> list[float]:
        """The ``below`` of every band but the last, increasing."""
        return [b.below for b in self.root[:-1]]


class Thresholds(_Strict):
    warn: float
    error: float

    @model_validator(mode="after")
    def _ordered(self) -> "Thresholds":
        if self.warn > self.error:
            raise ValueError(f"warn ({self.warn}) must not be above error ({self.error})")
        return self


class Monitoring(_Strict):
    column_drift_threshold: float = Field(0.1, gt=0, description="Per-column drift score above which a column drifted")
    drift_share: Thresholds = Thresholds(warn=0.15, error=0.3)
    score_drift: Thresholds = Thresholds(warn=0.1, error=0.2)
    auc_drop: Thresholds = Thresholds(warn=0.03, error=0.07)
    calibration_gap: Thresholds = Thresholds(warn=0.03, error=0.06)
    sample_rows: int = Field(20_000, ge=1000, description="Rows sampled per partition for drift (flat cost)")
    reference_rows: int = Field(20_000, ge=1000, description="Training rows kept as the version's reference")


class ModelSpec(_Strict):
    name: str = Field(description="Registered model name; also the asset key prefix")
    description: str = ""
    owner: str = "team:ml-engineering"
    training_mart: str
    scoring_mart: str
    entity_id: str
    timestamp: str = Field(description="Date column that orders rows and partitions scoring")
    label_date: str = Field(description="Date column on the training mart when the label became known")
    target: str
    features: Features
    estimator: Estimator
    evaluation: Evaluation = Evaluation()
    promotion: Promotion
    decision_bands: DecisionBands = Field(description="Ordered bands turning a score into a decision")
    review_band: str | None = Field(
        None, description="The band whose rows also go to the review queue table; none: the queue stays empty"
    )
    monitoring: Monitoring = Monitoring()

    @field_validator("training_mart", "scoring_mart", "entity_id", "timestamp", "label_date", "target")
    @classmethod
    def _identifiers(cls, value: str) -> str:
        return _identifier(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"'{value}' must be lower_snake_case (letters, digits, underscores), starting with a letter")
        return value

    @field_validator("review_band")
    @classmethod
    def _review_band_is_a_band(cls, value: str | None, info: ValidationInfo) -> str | None:
        bands = info.data.get("decision_bands")  # absent when decision_bands itself failed: that error is enough
        if value is not None and bands is not None and value not in bands.names:
            raise ValueError(f"'{value}' is not one of the decision_bands' names {bands.names}")
        return value

    @model_validator(mode="after")
    def _segments_are_features(self) -> "ModelSpec":
        unknown = [s for s in self.evaluation.segments if s not in self.features.categorical]
        if unknown:
            raise ValueError(f"evaluation.segments {unknown} must be categorical features")
        unmeasured = [m for m in self.promotion.guardrails if m not in self.evaluation.metrics]
        if unmeasured:
            raise ValueError(f"promotion.guardrails {unmeasured} must be among evaluation.metrics")
        return self

    def check_columns(self, available: set[str], mart: str, source: str) -> None:
        """Fail, naming the spec, the fields and the columns, when a mart lacks a column the spec needs."""
        needed = [("entity_id", self.entity_id), ("timestamp", self.timestamp)]
        needed += [("features.numeric", c) for c in self.features.numeric]
        needed += [("features.categorical", c) for c in self.features.categorical]
        if mart == self.training_mart:
            needed += [("target", self.target), ("label_date", self.label_date)]
        missing = [f"field '{field}': '{column}'" for field, column in needed if column not in available]
        if missing:
            raise SpecError(
                f"{source}: mart '{mart}' has no column for {', '.join(missing)} (its columns: {', '.join(sorted(available))})"
            )


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"invalid model spec {path}:"]
    for err in error.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  field '{field}': {message}")
    return "\n".join(lines)


def load_spec(path: Path) -> ModelSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid model spec {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"invalid model spec {path}: expected a mapping of fields at the top level")
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe(exc, path)) from None


def load_specs(directory: Path) -> dict[str, ModelSpec]:
    """Every ``*.yaml`` spec in ``directory``, keyed by its file; model names must be unique."""
    specs: dict[str, ModelSpec] = {}
    owners: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = load_spec(path)
        if spec.name in owners:
            raise SpecError(f"{path}: field 'name': '{spec.name}' is already used by {owners[spec.name]}")
        owners[spec.name] = str(path)
        specs[str(path)] = spec
    return specs
