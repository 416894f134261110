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
    model_serializer,
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
            raise ValueError(
                f"holdout_days ({self.holdout_days}) must be smaller than window_days ({self.window_days})"
            )
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' must be one of metrics {self.metrics}")
        return self


class Promotion(_Strict):
    policy: Literal["auto", "manual"] = "manual"
    min_primary: float = Field(description="Absolute floor on the primary metric for any version to serve")
    tolerance: float = Field(
        0.0, ge=0, description="How much worse than the champion the challenger may be and still pass the gate"
    )
    min_improvement: float = Field(
        0.0,
        ge=0,
        description="By how much more than this a challenger must beat the champion on the primary metric to "
        "replace it automatically (policy auto); 0: strictly better, a tie keeps the champion",
    )
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
            raise ValueError(
                f"'{value}' must be lower_snake_case (letters, digits, underscores), starting with a letter"
            )
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


# Evidently 0.7's drift methods (evidently.legacy.calculations.stattests): method -> (column types it accepts,
# what its score is, Evidently's default threshold). A "p_value" column drifted when the p-value is below the
# threshold, a "distance" column when the distance is at or above it. Listed here so that a spec is checked when it
# loads without importing evidently (3.5 s); tests/test_drift.py checks the table against Evidently's registry.
DRIFT_METHODS: dict[str, tuple[frozenset[str], Literal["distance", "p_value"], float]] = {
    "wasserstein": (frozenset({"numeric"}), "distance", 0.1),
    "ed": (frozenset({"numeric"}), "distance", 0.1),
    "psi": (frozenset({"numeric", "categorical"}), "distance", 0.1),
    "kl_div": (frozenset({"numeric", "categorical"}), "distance", 0.1),
    "jensenshannon": (frozenset({"numeric", "categorical"}), "distance", 0.1),
    "hellinger": (frozenset({"numeric", "categorical"}), "distance", 0.1),
    "ks": (frozenset({"numeric"}), "p_value", 0.05),
    "t_test": (frozenset({"numeric"}), "p_value", 0.05),
    "mannw": (frozenset({"numeric"}), "p_value", 0.05),
    "es": (frozenset({"numeric"}), "p_value", 0.05),
    "anderson": (frozenset({"numeric"}), "p_value", 0.1),
    "cramer_von_mises": (frozenset({"numeric"}), "p_value", 0.1),
    "empirical_mmd": (frozenset({"numeric"}), "p_value", 0.1),
    "chisquare": (frozenset({"categorical"}), "p_value", 0.05),
    "z": (frozenset({"categorical"}), "p_value", 0.05),
    "g_test": (frozenset({"categorical"}), "p_value", 0.1),
    "fisher_exact": (frozenset({"categorical"}), "p_value", 0.1),
    "TVD": (frozenset({"categorical"}), "p_value", 0.1),
}


def drift_methods_for(kind: str) -> list[str]:
    """The method names that accept ``kind`` ("numeric" or "categorical") columns."""
    return [name for name, (kinds, _, _) in DRIFT_METHODS.items() if kind in kinds]


def _drift_method(value: str, kind: str) -> str:
    if value not in DRIFT_METHODS:
        raise ValueError(f"'{value}' is not one of Evidently's drift methods {sorted(DRIFT_METHODS)}")
    if kind not in DRIFT_METHODS[value][0]:
        raise ValueError(f"'{value}' does not apply to {kind} columns (methods for them: {drift_methods_for(kind)})")
    return value


def _some(names: list[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _check_threshold(value: float, method: str, where: str) -> None:
    if DRIFT_METHODS[method][1] == "p_value" and not 0 < value < 1:
        raise ValueError(f"{where}: {value} is no p-value threshold for '{method}' (drifted below it): use (0, 1)")
    if value <= 0:
        raise ValueError(f"{where}: {value} must be above 0 (a '{method}' distance at or above it is drift)")


class DriftReference(_Strict):
    """What a scored day's drift is compared with. Written in a spec as one of:

    - ``training``: the serving version's reference sample, logged at training (holdout rows and their scores);
    - ``{trailing_days: N}``: the last N served (scored) days before the checked day, from the scoring mart and the
      predictions in the warehouse;
    - ``{same_weekday: N}``: the same weekday of the last N weeks (those of them that were served).
    """

    kind: Literal["training", "trailing_days", "same_weekday"] = "training"
    days: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, data: Any) -> Any:
        if data == "training":
            return {"kind": "training"}
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in ("trailing_days", "same_weekday"):
            [(kind, days)] = data.items()
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(
                    f"{kind} must be a whole number of days (weeks for same_weekday) of at least 1, found {days!r}"
                )
            limit = 366 if kind == "trailing_days" else 53
            if days > limit:
                raise ValueError(f"{kind}: {days} is more than {limit}; the reference is sampled from those days")
            return {"kind": kind, "days": days}
        if isinstance(data, dict) and set(data) <= {"kind", "days"}:  # the dumped form, e.g. a logged spec
            return data
        raise ValueError(f"must be 'training', {{trailing_days: N}} or {{same_weekday: N}}, found {data!r}")

    @model_validator(mode="after")
    def _days_with_kind(self) -> "DriftReference":
        if (self.kind == "training") != (self.days is None):
            raise ValueError(
                f"reference '{self.kind}' {'takes no' if self.kind == 'training' else 'needs a number of'} days"
            )
        return self

    @model_serializer
    def _as_in_spec(self) -> Any:
        return "training" if self.kind == "training" else {self.kind: self.days}

    def describe(self) -> str:
        if self.kind == "training":
            return "training: the serving version's reference sample"
        if self.kind == "trailing_days":
            return f"trailing_days {self.days}: the last {self.days} served days before the checked day"
        return f"same_weekday {self.days}: the same weekday of the last {self.days} weeks"


class Monitoring(_Strict):
    """Drift and quality of each scored day. Defaults: every feature, against the version's training reference,
    Wasserstein (numeric) and Jensen-Shannon (categorical), a column drifted at 0.1.

    Which columns, reference, methods and thresholds fit depends on the data: a column constant within a day
    (weather, day of week) always looks drifted in one day against a 90-day reference. Exclude it, or compare with
    served days (``reference``) and give it a threshold of its own (``column_thresholds``).
    """

    columns: list[str] | None = Field(None, description="Features whose drift is checked; none: every feature")
    exclude: list[str] = Field(default_factory=list, description="Features not checked for drift")
    reference: DriftReference = Field(
        default_factory=DriftReference, description="training, {trailing_days: N} or {same_weekday: N}"
    )
    num_method: str = Field("wasserstein", description="Evidently drift method of numeric features")
    cat_method: str = Field("jensenshannon", description="Evidently drift method of categorical features")
    column_methods: dict[str, str] = Field(default_factory=dict, description="Feature -> its own drift method")
    column_drift_threshold: float | None = Field(
        None,
        gt=0,
        description="Threshold of every checked feature without one of its own; none: each method's default "
        "(0.1 for wasserstein and jensenshannon)",
    )
    column_thresholds: dict[str, float] = Field(default_factory=dict, description="Feature -> its own threshold")
    drift_share: Thresholds = Thresholds(warn=0.15, error=0.3)
    score_drift: Thresholds = Thresholds(warn=0.1, error=0.2)
    auc_drop: Thresholds = Thresholds(warn=0.03, error=0.07)
    calibration_gap: Thresholds = Thresholds(warn=0.03, error=0.06)
    sample_rows: int = Field(20_000, ge=1000, description="Rows sampled per partition for drift (flat cost)")
    reference_rows: int = Field(20_000, ge=1000, description="Rows kept as the reference (training or served days)")

    @field_validator("columns", "exclude")
    @classmethod
    def _identifiers(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"listed more than once: {duplicated}")
        return [_identifier(n) for n in names]

    @field_validator("num_method")
    @classmethod
    def _numeric_method(cls, value: str) -> str:
        return _drift_method(value, "numeric")

    @field_validator("cat_method")
    @classmethod
    def _categorical_method(cls, value: str) -> str:
        return _drift_method(value, "categorical")

    @field_validator("column_methods")
    @classmethod
    def _known_methods(cls, methods: dict[str, str]) -> dict[str, str]:
        unknown = {c: m for c, m in methods.items() if m not in DRIFT_METHODS}
        if unknown:
            raise ValueError(f"not Evidently drift methods: {unknown} (methods: {sorted(DRIFT_METHODS)})")
        return methods

    @field_validator("column_thresholds")
    @classmethod
    def _positive(cls, thresholds: dict[str, float]) -> dict[str, float]:
        wrong = {c: t for c, t in thresholds.items() if not t > 0}
        if wrong:
            raise ValueError(f"thresholds must be above 0, found {wrong}")
        return thresholds

    # --- what the drift check does with the spec's features --------------------------------------------------

    def checked(self, features: Features) -> tuple[list[str], list[str]]:
        """The (numeric, categorical) features whose drift is checked, in the spec's order."""
        wanted = set(features.all if self.columns is None else self.columns) - set(self.exclude)
        return [c for c in features.numeric if c in wanted], [c for c in features.categorical if c in wanted]

    def method(self, column: str, features: Features) -> str:
        if column in self.column_methods:
            return self.column_methods[column]
        return self.num_method if column in features.numeric else self.cat_method

    def threshold(self, column: str, features: Features) -> float:
        """The column's own threshold, else ``column_drift_threshold``, else its method's default."""
        if column in self.column_thresholds:
            return self.column_thresholds[column]
        if self.column_drift_threshold is not None:
            return self.column_drift_threshold
        return DRIFT_METHODS[self.method(column, features)][2]

    def validate_for(self, features: Features) -> None:
        """The checks that need the spec's features; each message names the field (under ``monitoring.``)."""
        names = set(features.all)
        for field, listed in (("columns", self.columns or []), ("exclude", self.exclude)):
            unknown = [c for c in listed if c not in names]
            if unknown:
                raise ValueError(
                    f"monitoring.{field}: {unknown} are not features of the spec (features: {features.all})"
                )
        both = sorted(set(self.columns or []) & set(self.exclude))
        if both:
            raise ValueError(f"monitoring.exclude: {both} are also listed in monitoring.columns: keep one")
        numeric, categorical = self.checked(features)
        checked = numeric + categorical
        if not checked:
            raise ValueError("monitoring.columns / monitoring.exclude: no feature is left to check for drift")
        for field, mapping in (("column_methods", self.column_methods), ("column_thresholds", self.column_thresholds)):
            unchecked = [c for c in mapping if c not in checked]
            if unchecked:
                raise ValueError(f"monitoring.{field}: {unchecked} are not checked features (checked: {checked})")
        for column, method in self.column_methods.items():
            kind = "numeric" if column in features.numeric else "categorical"
            if kind not in DRIFT_METHODS[method][0]:
                raise ValueError(
                    f"monitoring.column_methods: '{method}' does not apply to {kind} feature '{column}' "
                    f"(methods for {kind} columns: {drift_methods_for(kind)})"
                )
        for column, value in self.column_thresholds.items():
            _check_threshold(value, self.method(column, features), f"monitoring.column_thresholds.{column}")
        if self.column_drift_threshold is not None:
            shared = [c for c in checked if c not in self.column_thresholds]
            kinds: dict[str, list[str]] = {}
            for column in shared:
                kinds.setdefault(DRIFT_METHODS[self.method(column, features)][1], []).append(column)
            if len(kinds) > 1:
                raise ValueError(
                    f"monitoring.column_drift_threshold: one threshold cannot serve p-value tests (drifted below it: "
                    f"{_some(kinds['p_value'])}) and distances (drifted at or above it: {_some(kinds['distance'])}); "
                    "set it to null to use each method's default, or give those columns column_thresholds"
                )
            for column in shared:
                _check_threshold(
                    self.column_drift_threshold,
                    self.method(column, features),
                    f"monitoring.column_drift_threshold (for '{column}')",
                )


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
            raise ValueError(
                f"'{value}' must be lower_snake_case (letters, digits, underscores), starting with a letter"
            )
        return value

    @field_validator("review_band")
    @classmethod
    def _review_band_is_a_band(cls, value: str | None, info: ValidationInfo) -> str | None:
        bands = info.data.get("decision_bands")  # absent when decision_bands itself failed: that error is enough
        if value is not None and bands is not None and value not in bands.names:
            raise ValueError(f"'{value}' is not one of the decision_bands' names {bands.names}")
        return value

    @field_validator("monitoring")
    @classmethod
    def _monitoring_fits_features(cls, value: Monitoring, info: ValidationInfo) -> Monitoring:
        features = info.data.get("features")  # absent when features itself failed: that error is enough
        if features is not None:
            value.validate_for(features)
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
