"""The spec's serving sections: a canary that lets the challenger decide a stable slice of entities
(:mod:`assets.ml.canary`), and the reason codes written with every decision outside the lowest band
(:mod:`assets.ml.reasons`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assets.ml.spec.fields import StrictModel


class Canary(StrictModel):
    """``canary: {share: 0.05}``: the challenger decides the entities whose id hashes into the first ``share`` of
    10,000 buckets (md5 of the id: the same entity lands in the same slice every day and for every version); the
    champion decides the rest. Off (0) by default; only a challenger the gate passed, newer than the champion, gets
    the slice, and a rollback ends it (the rollback clears the ``challenger`` alias)."""

    share: float = Field(
        0.0, ge=0, le=0.5, description="Share of entities the challenger decides (0: no canary; at most half)"
    )

    @property
    def on(self) -> bool:
        return self.share > 0


class ReasonCodes(StrictModel):
    """``reason_codes: {enabled: true, top: 3, method: auto}``: the features that pushed a row's score up the most,
    written with every prediction outside the lowest (approve) band and shown in the review queue.

    ``auto`` picks ``linear`` (exact: coefficient x (transformed value - reference), summed per feature) for a
    linear estimator, ``tree`` (exact path attributions against the model's expected output, summed per feature)
    for a scikit-learn tree model (HistGradientBoosting*, GradientBoosting*, RandomForest*, ExtraTrees*,
    DecisionTree*), else ``occlusion`` (each feature in turn set to its reference value; the score's drop); a tree
    model the tree method cannot walk (native categorical splits, trees of more than 64 leaves in
    HistGradientBoosting) gets occlusion too, with a log line. ``enabled`` unset: on where they are cheap (linear,
    tree), off where ``auto`` picks occlusion, which scores every row outside the lowest band once per feature
    (about 8x scoring alone at bench/model.py's size)."""

    enabled: bool | None = Field(
        None,
        description="true / false: write reason codes or not; unset: on for the linear and tree methods, off where "
        "auto picks occlusion (costly)",
    )
    top: int = Field(3, ge=1, le=10, description="How many features each row names, strongest first")
    method: Literal["auto", "linear", "tree", "occlusion"] = Field(
        "auto",
        description="auto: linear for a linear estimator (coef_), tree for a scikit-learn tree model, occlusion for "
        "any other",
    )


class Cost(StrictModel):
    """``cost: {budget_per_day: 2.0}``: the scoring of one day may cost at most this much (CPU seconds x the
    configured price per CPU-hour, ``NIGHTJAR_CPU_HOUR_PRICE``); a day above it alerts. Unset: no budget."""

    budget_per_day: float | None = Field(
        None, gt=0, description="Most a day's scoring may cost, in the currency of NIGHTJAR_CPU_HOUR_PRICE"
    )
