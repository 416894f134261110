"""The spec's ``fairness`` section: the segments a version's decisions and ranking are compared across, and the
largest gaps between segments the gate accepts (:mod:`assets.ml.fairness` computes them).

A segment column is a feature of the spec, so the marts are checked for it like every other feature (at load and
on every run). A categorical feature is segmented by its values; a numeric one needs ``bins`` (e.g. age bands).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from assets.ml.spec.fields import StrictModel, identifier

MISSING_SEGMENT = "(missing)"


class Segment(StrictModel):
    """A column to compare segments of: written as the column's name, or ``{column: age, bins: [30, 45, 60]}``
    for a numeric column cut into bands (``<30``, ``[30,45)``, ``[45,60)``, ``>=60``)."""

    column: str
    bins: list[float] | None = Field(None, description="Increasing cut points of a numeric column's bands")

    @model_validator(mode="before")
    @classmethod
    def _a_name_alone(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @field_validator("column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        return identifier(value)

    @field_validator("bins")
    @classmethod
    def _increasing(cls, bins: list[float] | None) -> list[float] | None:
        if bins is not None and (not bins or any(b <= a for a, b in zip(bins, bins[1:], strict=False))):
            raise ValueError(f"bins must be a non-empty list of strictly increasing cut points, found {bins}")
        return bins

    def labels(self) -> list[str]:
        """The band names of a binned column, from the lowest values up."""
        if self.bins is None:
            return []
        cuts = [_number(b) for b in self.bins]
        inner = [f"[{a},{b})" for a, b in zip(cuts, cuts[1:], strict=False)]
        return [f"<{cuts[0]}", *inner, f">={cuts[-1]}"]


class Fairness(StrictModel):
    segments: list[Segment] = Field(min_length=1, description="Columns whose segments are compared")
    approve_band: str | None = Field(
        None, description="The decision band that approves; none: the first band (the lowest scores)"
    )
    max_approval_rate_gap: float | None = Field(
        None, gt=0, le=1, description="Largest allowed gap in approval rate between two segments; none: reported only"
    )
    max_auc_gap: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Task binary: largest allowed gap in ROC AUC between two segments; none: reported only",
    )
    max_error_gap: float | None = Field(
        None,
        gt=0,
        description="Task regression: largest allowed gap in mean absolute error (the target's units) between two "
        "segments; none: reported only",
    )
    max_recall_gap: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Task multiclass: largest allowed gap in macro recall (balanced accuracy) between two segments; "
        "none: reported only",
    )
    min_segment_rows: int = Field(
        50, ge=1, description="Segments with fewer rows are listed but left out of the gaps (too few to judge)"
    )

    @model_validator(mode="after")
    def _distinct(self) -> "Fairness":
        columns = [s.column for s in self.segments]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise ValueError(f"segments listed more than once: {duplicated}")
        return self

    @property
    def columns(self) -> list[str]:
        return [s.column for s in self.segments]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _fits_spec(value: Fairness | None, info: ValidationInfo) -> Fairness | None:
    """The segments must be features (numeric ones binned), the approve band one of the decision bands. Run as
    the spec's ``fairness`` field is validated: the features and bands are validated before it."""
    features, bands = info.data.get("features"), info.data.get("decision_bands")
    task = info.data.get("task", "binary")
    if value is None or features is None or (task == "binary" and bands is None):
        return value  # a failed section already has its error
    for field, fits in (("max_auc_gap", "binary"), ("max_error_gap", "regression"), ("max_recall_gap", "multiclass")):
        if getattr(value, field) is not None and task != fits:
            raise ValueError(f"{field}: applies to task {fits} only (this spec's task is {task})")
    for segment in value.segments:
        if segment.column in features.categorical and segment.bins is not None:
            raise ValueError(f"segments: '{segment.column}' is categorical: its values are the segments, drop bins")
        if segment.column in features.numeric and segment.bins is None:
            raise ValueError(
                f"segments: '{segment.column}' is numeric: give its bands, e.g. {{column: {segment.column}, "
                "bins: [30, 45, 60]}"
            )
        if segment.column not in features.all:
            raise ValueError(f"segments: '{segment.column}' is not a feature of the spec (features: {features.all})")
    if bands is None:  # regression without bands, multiclass: no band approves unless the spec names a decision
        if value.max_approval_rate_gap is not None and value.approve_band is None:
            raise ValueError(
                "max_approval_rate_gap: needs approve_band, the decision that approves (this spec has no decision "
                "bands whose first band would approve)"
            )
        return value
    if value.approve_band is not None and value.approve_band not in bands.names:
        raise ValueError(f"approve_band: '{value.approve_band}' is not one of the decision_bands' names {bands.names}")
    if value.approve_band is None:
        return value.model_copy(update={"approve_band": bands.names[0]})
    return value


# The field's type in ModelSpec: validated against the features and decision bands declared before it.
FairnessSection = Annotated[Fairness | None, AfterValidator(_fits_spec)]
