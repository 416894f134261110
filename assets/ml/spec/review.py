"""The spec's ``review`` section: where reviewers' decisions land and how many overrides are tolerated.

Reviews are recorded per model (``assets/review/``): from a declared landing table (``landing_table``, a raw table
declared like any other, so a review tool or a spreadsheet export can feed it) and from the ``record_review`` job
(one decision from the Dagster UI). ``override_rate`` bounds the share of reviewed cases, among those the model
decided itself (outside the review band), where the reviewer's decision differs from the model's.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from assets.ml.spec.fields import StrictModel
from assets.ml.spec.monitoring import Thresholds

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


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
    labels_from_reviews: bool = Field(
        False,
        description="Use a reviewer's decision as the label where the real one never arrives: off by default, and "
        "not available yet (reviews are recorded and measured, not learned from)",
    )

    @field_validator("landing_table")
    @classmethod
    def _source_dot_table(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE.match(value):
            raise ValueError(f"'{value}' is not a declared raw table's source.table (e.g. raw.reviews)")
        return value

    @field_validator("labels_from_reviews")
    @classmethod
    def _not_yet(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "true is not available yet: reviews are recorded and their override rates measured, but no "
                "training set reads them as labels (leave it false)"
            )
        return value
