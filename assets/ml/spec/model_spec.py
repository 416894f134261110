"""The model spec itself: one YAML file under model_specs/, its sections validated together."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from assets.ml.spec.decision_bands import DecisionBands
from assets.ml.spec.fairness import FairnessSection
from assets.ml.spec.fields import StrictModel, identifier, snake_case_name
from assets.ml.spec.monitoring import Monitoring
from assets.ml.spec.sections import Estimator, Evaluation, Features, Promotion
from assets.ml.spec.serving import Canary, Cost, ReasonCodes


class ModelSpec(StrictModel):
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
    canary: Canary = Canary()
    reason_codes: ReasonCodes = ReasonCodes()
    cost: Cost = Cost()
    fairness: FairnessSection = Field(None, description="Segment gaps the gate refuses; none: not measured")

    @field_validator("training_mart", "scoring_mart", "entity_id", "timestamp", "label_date", "target")
    @classmethod
    def _identifiers(cls, value: str) -> str:
        return identifier(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return snake_case_name(value)

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
