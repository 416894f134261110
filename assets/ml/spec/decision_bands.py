"""The spec's ``decision_bands``: how a score (a probability for task binary, the predicted value for task
regression) becomes a decision, written with each prediction."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, RootModel, field_validator, model_validator

from assets.ml.spec.fields import StrictModel, snake_case_name


class DecisionBand(StrictModel):
    """One decision: scores below ``below`` (and not in an earlier band) get ``name``; the last band has no
    ``below`` and takes every score above the previous band's."""

    name: str = Field(description="The decision written for scores in this band (lower_snake_case)")
    below: float | None = Field(
        None, description="Upper bound (exclusive) of the band's scores; in (0, 1] for a probability (task binary)"
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return snake_case_name(value)


class DecisionBands(RootModel[list[DecisionBand]]):
    """Ordered bands from the lowest scores to the highest, e.g. ``[{name: low, below: 0.1}, {name: high}]``.

    Every band but the last has a ``below``, strictly increasing (in (0, 1] for task binary, whose score is a
    probability; any numbers for task regression); the last has none and takes the rest.
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
