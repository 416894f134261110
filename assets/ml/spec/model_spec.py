"""The model spec itself: one YAML file under model_specs/, its sections validated together.

``task`` says what the model predicts, and every section that depends on it is checked against it here: the
metrics (and the primary metric's default), the decision bands (a probability's for binary, the predicted value's
for regression, none for multiclass, whose decision is its predicted class, renamed by ``class_decisions``), the
fairness gaps and the quality thresholds of the task.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from assets.ml.spec.decision_bands import DecisionBands
from assets.ml.spec.fairness import FairnessSection
from assets.ml.spec.fields import DEFAULT_PRIMARY, TASK_METRICS, StrictModel, identifier, snake_case_name
from assets.ml.spec.monitoring import Monitoring
from assets.ml.spec.review import Review
from assets.ml.spec.sections import Estimator, Evaluation, Features, Promotion
from assets.ml.spec.serving import Canary, Cost, ReasonCodes


class ModelSpec(StrictModel):
    name: str = Field(description="Registered model name; also the asset key prefix")
    description: str = ""
    owner: str = "team:ml-engineering"
    task: Literal["binary", "regression", "multiclass"] = Field(
        "binary",
        description="What the model predicts: binary (a 0/1 target, scored by its probability), regression (a "
        "number, scored by its predicted value) or multiclass (one of several classes, scored by the predicted "
        "class and its probability)",
    )
    training_mart: str
    scoring_mart: str
    entity_id: str
    timestamp: str = Field(description="Date column that orders rows and partitions scoring")
    label_date: str = Field(description="Date column on the training mart when the label became known")
    target: str
    features: Features
    estimator: Estimator
    evaluation: Evaluation
    promotion: Promotion
    decision_bands: DecisionBands | None = Field(
        None,
        description="Ordered bands turning a score into a decision: required for task binary (on the probability), "
        "optional for regression (on the predicted value; none: no decision), not for multiclass",
    )
    class_decisions: dict[str, str] = Field(
        default_factory=dict,
        description="Task multiclass: predicted class -> the decision written for it (lower_snake_case); a class "
        "not listed is its own decision",
    )
    review_band: str | None = Field(
        None,
        description="The decision whose rows also go to the review queue table (a band's name; for multiclass a "
        "decision or class); none: the queue stays empty",
    )
    monitoring: Monitoring = Monitoring()
    canary: Canary = Canary()
    reason_codes: ReasonCodes = ReasonCodes()
    cost: Cost = Cost()
    fairness: FairnessSection = Field(None, description="Segment gaps the gate refuses; none: not measured")
    review: Review = Field(Review(), description="Where reviewers' decisions land and the override rates allowed")

    @field_validator("training_mart", "scoring_mart", "entity_id", "timestamp", "label_date", "target")
    @classmethod
    def _identifiers(cls, value: str) -> str:
        return identifier(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return snake_case_name(value)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """The evaluation metrics and primary metric of the spec's task where the spec leaves them out."""
        if not isinstance(data, dict):
            return data
        task = data.get("task", "binary")
        evaluation = data.get("evaluation", {})
        if task not in TASK_METRICS or not isinstance(evaluation, dict):
            return data  # the field's own validation names what is wrong
        evaluation = dict(evaluation)
        evaluation.setdefault("metrics", list(TASK_METRICS[task]))
        evaluation.setdefault("primary_metric", DEFAULT_PRIMARY[task])
        return {**data, "evaluation": evaluation}

    @field_validator("decision_bands")
    @classmethod
    def _probability_bands(cls, value: DecisionBands | None, info: ValidationInfo) -> DecisionBands | None:
        if value is not None and info.data.get("task", "binary") == "binary":
            for index, band in enumerate(value):
                if band.below is not None and not 0 < band.below <= 1:
                    raise ValueError(
                        f"band {index} ('{band.name}'): below {band.below} is not in (0, 1]: task binary bands a "
                        "probability"
                    )
        return value

    @field_validator("class_decisions")
    @classmethod
    def _decision_names(cls, value: dict[str, str]) -> dict[str, str]:
        return {str(k): snake_case_name(v) for k, v in value.items()}

    @field_validator("review_band")
    @classmethod
    def _review_band_is_a_band(cls, value: str | None, info: ValidationInfo) -> str | None:
        bands = info.data.get("decision_bands")  # absent when decision_bands itself failed: that error is enough
        multiclass = info.data.get("task") == "multiclass"  # its decisions are classes: checked with the task
        if value is not None and bands is not None and not multiclass and value not in bands.names:
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
    def _fits_task(self) -> "ModelSpec":
        """Every field that depends on ``task`` agrees with it; each message names the field."""
        task, allowed = self.task, TASK_METRICS[self.task]
        wrong = [m for m in self.evaluation.metrics if m not in allowed]
        if wrong:
            raise ValueError(f"evaluation.metrics {wrong} do not apply to task {task} (its metrics: {list(allowed)})")
        bands = self.decision_bands
        if task == "binary" and bands is None:
            raise ValueError("decision_bands: required for task binary (bands on the probability)")
        if task == "multiclass" and bands is not None:
            raise ValueError(
                "decision_bands: not for task multiclass, whose decision is the predicted class; use class_decisions "
                "to map classes to decisions"
            )
        if task != "multiclass" and self.class_decisions:
            raise ValueError(f"class_decisions: only for task multiclass (this spec's task is {task})")
        if self.review_band is not None and self.decisions is None and task == "regression":
            raise ValueError("review_band: task regression without decision_bands makes no decision to review")
        if self.review_band is not None and task == "multiclass" and self.class_decisions:
            names = sorted(set(self.class_decisions.values()))
            if self.review_band not in names and self.review_band not in self.class_decisions:
                raise ValueError(f"review_band: '{self.review_band}' is none of the class_decisions' decisions {names}")
        if self.review.review_labels is not None:
            self.review.review_labels.check_for(task, self.decisions, self.review_band)
        for field, tasks in (
            ("auc_drop", ("binary",)),
            ("calibration_gap", ("binary",)),
            ("rmse", ("regression",)),
            ("macro_f1_drop", ("multiclass",)),
        ):
            changed = getattr(self.monitoring, field) != type(self.monitoring).model_fields[field].default
            if changed and task not in tasks:
                raise ValueError(f"monitoring.{field}: applies to task {tasks[0]} only (this spec's task is {task})")
        return self

    @property
    def decisions(self) -> list[str] | None:
        """The decisions a prediction can carry, lowest band first; None where they are not known from the spec
        (regression without bands: no decision; multiclass: the classes, learned in training)."""
        if self.decision_bands is not None:
            return self.decision_bands.names
        return None

    @model_validator(mode="after")
    def _segments_are_features(self) -> "ModelSpec":
        unknown = [s for s in self.evaluation.segments if s not in self.features.categorical]
        if unknown:
            raise ValueError(f"evaluation.segments {unknown} must be categorical features")
        unmeasured = [m for m in self.promotion.guardrails if m not in self.evaluation.metrics]
        if unmeasured:
            raise ValueError(f"promotion.guardrails {unmeasured} must be among evaluation.metrics")
        return self
