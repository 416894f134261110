"""The spec's ``review`` section: where reviewers' decisions land, how many overrides are tolerated, and whether a
reviewed case may be learned from where its real label never arrives.

Reviews are recorded per model (``assets/review/``): from a declared landing table (``landing_table``, a raw table
declared like any other, so a review tool or a spreadsheet export can feed it) and from the ``record_review`` job
(one decision from the Dagster UI). ``override_rate`` bounds the share of reviewed cases, among those the model
decided itself (outside the review band), where the reviewer's decision differs from the model's.

``labels_from_reviews`` (off by default): ``{after_days: 60, labels: {decline: 1, approve: 0}}`` lets the training
set take a reviewed case whose real label has not arrived ``after_days`` after its case day, labeled with the
target value its reviewer's latest decision maps to (:mod:`assets.ml.training_set`). The mapping is checked against
the task and the spec's decisions when the spec loads (:meth:`ReviewLabels.check_for`, called by the spec's task
check): a decision the model does not make, a value the target cannot hold, or a regression task is an error
naming ``review.labels_from_reviews``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, StrictInt, StrictStr, field_validator

from assets.ml.spec.fields import StrictModel
from assets.ml.spec.monitoring import Thresholds

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_FIELD = "review.labels_from_reviews"


class ReviewLabels(StrictModel):
    """``{after_days: 60, labels: {decline: 1, approve: 0}}``: which reviewed cases become training rows, and the
    target value each reviewer decision stands for."""

    after_days: int = Field(
        ...,
        ge=1,
        description="A reviewed case is learned from only when its real label has not arrived this many days after "
        "its case day (the spec's timestamp), counted back from the training's as-of day (or its last label day)",
    )
    labels: dict[str, StrictInt | StrictStr] = Field(
        ...,
        min_length=1,
        description="Reviewer decision -> the target's value it stands for (binary: 0 or 1; multiclass: a class). "
        "A case whose latest decision is not listed is not learned from",
    )

    def check_for(self, task: str, decisions: list[str] | None, review_band: str | None) -> None:
        """ValueError naming the field unless the mapping fits ``task`` and the spec's ``decisions``."""
        if task == "regression":
            raise ValueError(
                f"{_FIELD}: task regression has no decision that stands for a number; a reviewer's decision cannot "
                "be its label (use false)"
            )
        for decision, value in self.labels.items():
            if decision == review_band:
                raise ValueError(
                    f"{_FIELD}.labels: '{decision}' is the review band, which a review never decides (a review settles "
                    "a case with another decision)"
                )
            if decisions is not None and decision not in decisions:
                raise ValueError(f"{_FIELD}.labels: '{decision}' is not a decision this spec makes {decisions}")
            if task == "binary" and (not isinstance(value, int) or value not in (0, 1)):
                raise ValueError(f"{_FIELD}.labels.{decision}: {value!r} is not a value of a binary target (0 or 1)")


class Review(StrictModel):
    """``review: {landing_table: raw.reviews, override_rate: {warn: 0.2, error: 0.4}, labels_from_reviews: false}``."""

    landing_table: str | None = Field(
        None,
        description="The declared raw table (source.table, e.g. raw.reviews) review files land in; none: reviews "
        "come from the record_review job only",
    )
    override_rate: Thresholds = Field(
        Thresholds(warn=0.2, error=0.4),
        description="Share of reviewed model decisions (outside the review band) that reviewers changed: above warn "
        "the override_rate check warns, above error it fails",
    )
    labels_from_reviews: Literal[False] | ReviewLabels = Field(
        False,
        description="false (default): only real labels are learned from. {after_days: N, labels: {decision: "
        "value}}: a reviewed case whose real label has not arrived N days after its case day joins the training "
        "part (never the holdout) with the value its reviewer's latest decision maps to",
    )

    @field_validator("landing_table")
    @classmethod
    def _source_dot_table(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE.match(value):
            raise ValueError(f"'{value}' is not a declared raw table's source.table (e.g. raw.reviews)")
        return value

    @field_validator("labels_from_reviews", mode="before")
    @classmethod
    def _false_or_mapping(cls, value: Any) -> Any:
        if value is True:
            raise ValueError(
                "true says too little: write {after_days: 60, labels: {decline: 1, approve: 0}} (how long a real "
                "label may take, and the target value each reviewer decision stands for), or false"
            )
        return value

    @property
    def review_labels(self) -> ReviewLabels | None:
        """The mapping when on; None when off."""
        return self.labels_from_reviews or None
