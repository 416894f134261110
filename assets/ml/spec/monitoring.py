"""The spec's ``monitoring`` section: which features are checked for drift, against what reference, with which
Evidently method and threshold, and the warn/error thresholds of drift and quality checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from assets.ml.spec.fields import StrictModel, identifier
from assets.ml.spec.sections import Features


class Thresholds(StrictModel):
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


class DriftReference(StrictModel):
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


class Monitoring(StrictModel):
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
    calibrate_to_ordinary_days: bool = Field(
        True,
        description="With reference: training, raise a distance-method column's threshold (and the score's) to "
        "1.25x the largest drift of one reference day against the rest, where that is higher: a column that moves "
        "with the day (weather) then fails only a day beyond what ordinary days do. A column's own "
        "column_thresholds entry is kept as written. false: the thresholds as written",
    )
    # Quality of labeled days, by task. binary: the drop in ROC AUC from the version's holdout, and the gap between
    # the mean score and the positive rate. regression: the day's RMSE as a multiple of the version's holdout RMSE.
    # multiclass: the drop in macro F1 from the version's holdout.
    auc_drop: Thresholds = Thresholds(warn=0.03, error=0.07)
    calibration_gap: Thresholds = Thresholds(warn=0.03, error=0.06)
    rmse: Thresholds = Field(
        Thresholds(warn=1.2, error=1.5), description="Task regression: the RMSE of labeled days / the holdout's"
    )
    macro_f1_drop: Thresholds = Field(
        Thresholds(warn=0.05, error=0.1), description="Task multiclass: holdout macro F1 - that of labeled days"
    )
    quality_min_rows: int = Field(
        2000,
        ge=100,
        description="Labeled rows the quality checks judge: the checked day pooled with the days before it (at most "
        "quality_window_days in all) until there are this many. One day of a few hundred labels cannot tell a "
        "worse model from chance",
    )
    quality_window_days: int = Field(7, ge=1, description="Most days pooled for the quality checks, the day included")
    sample_rows: int = Field(20_000, ge=1000, description="Rows sampled per partition for drift (flat cost)")
    reference_rows: int = Field(20_000, ge=1000, description="Rows kept as the reference (training or served days)")
    label_delay_days: int | None = Field(
        None,
        ge=0,
        description="Days from a scored row to its known outcome, for this model: the monitoring schedule checks the "
        "quality of the day this many days before yesterday. None: NIGHTJAR_LABEL_DELAY_DAYS",
    )

    @field_validator("columns", "exclude")
    @classmethod
    def _identifiers(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"listed more than once: {duplicated}")
        return [identifier(n) for n in names]

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
