"""Reason codes on real runs of the predictions asset (the lab's Definitions, MLflow store and warehouse):

- a feature the test moves for some rows is named first for those rows, by the exact linear method and by
  occlusion (HistGradientBoosting, the shipped spec's estimator);
- the linear attributions are exact: they sum to the row's log-odds minus the reference's;
- only decisions outside the lowest (approve) band carry reasons, and the review queue shows them;
- the spec can turn them off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assets.ml.evaluation import features
from assets.ml.reasons import NONE_ABOVE_REFERENCE, explainer_for, top_reasons
from assets.ml.spec import ReasonCodes, load_spec
from tests.ml_lab import MODEL, Lab
from tests.scoring_lab import DAY, metadata, predictions, score_day, write_scoring_day

MOVED = "delinquencies_2y"  # the synthetic source's default risk rises with it
FAST_BOOSTING = {  # the shipped spec's estimator, fewer iterations
    "class": "sklearn.ensemble.HistGradientBoostingClassifier",
    "params": {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 15, "early_stopping": False, "random_state": 0},
}


def _moved_day(lab: Lab) -> tuple[pd.DataFrame, np.ndarray]:
    """A day of applications where 30 rows get a delinquency count far above any the model saw."""
    mart = lab.write_mart(2)
    day = mart[mart["application_date"] == mart["application_date"].max()].reset_index(drop=True)
    moved = np.zeros(len(day), dtype=bool)
    moved[::10] = True
    day.loc[moved, MOVED] = 40
    return write_scoring_day(lab, DAY, day), moved


def _scored_with_reasons(lab: Lab, **spec_changes) -> tuple[pd.DataFrame, np.ndarray, dict]:
    assert lab.train(**spec_changes) == 1
    frame, moved = _moved_day(lab)
    meta = metadata(score_day(lab, DAY))
    scored = predictions(lab, DAY).set_index("application_id").loc[frame["application_id"]].reset_index()
    return scored, moved, meta


def _assert_moved_feature_named_first(
    scored: pd.DataFrame, moved: np.ndarray, feature: str = MOVED, at_least: float = 1.0
) -> None:
    """The moved rows the model no longer approves name the moved feature first: every one for an additive
    (linear) model; ``at_least`` of them for a tree model, whose interactions occlusion measures one feature at a
    time (a moved row that stays approved has no reasons)."""
    outside = (scored["decision"] != "approve").to_numpy()
    assert scored.loc[outside, "reasons"].notna().all() and scored.loc[~outside, "reasons"].isna().all()
    explained = moved & outside
    assert explained.sum() >= 10, explained.sum()
    firsts = scored.loc[explained, "reasons"].str.split(", ").str[0]
    assert (firsts == feature).mean() >= at_least, scored.loc[explained, "reasons"][firsts != feature].tolist()
    assert scored.loc[outside, "reasons"].str.split(", ").str.len().le(3).all()


def test_the_linear_method_names_the_moved_feature_first_and_the_review_queue_shows_it(lab):
    scored, moved, meta = _scored_with_reasons(lab)
    assert (scored.loc[moved, "decision"] != "approve").all()  # 40 delinquencies: none approved by a linear model
    _assert_moved_feature_named_first(scored, moved)
    assert "champion version 1: linear" in meta["reason_codes"] and "training median" in meta["reason_codes"]
    assert meta["reason_code_rows"] == int((scored["decision"] != "approve").sum())
    queue = lab.warehouse.query(f"SELECT decision, reasons FROM predictions.{MODEL}_review_queue")
    assert len(queue) == meta["review_queue_rows"] > 0
    assert set(queue["decision"]) == {"review"} and queue["reasons"].notna().all()


def test_occlusion_names_the_moved_feature_first_for_gradient_boosting(lab):
    assert lab.train(estimator=FAST_BOOSTING) == 1
    mart = lab.write_mart(2)
    day = write_scoring_day(lab, DAY, mart[mart["application_date"] == mart["application_date"].max()])
    # Off by default where only occlusion applies (it costs a prediction per feature), and the metadata says so.
    meta = metadata(score_day(lab, DAY))
    assert meta["reason_codes"].startswith("off by default for HistGradientBoostingClassifier")
    assert predictions(lab, DAY)["reasons"].isna().all()
    lab.write_spec(estimator=FAST_BOOSTING, reason_codes={"enabled": True})
    approved = predictions(lab, DAY).set_index("application_id").loc[day["application_id"], "decision"] == "approve"
    # Applications the model approved get the highest interest rate it saw: that, and nothing else, moved.
    moved = approved.to_numpy() & (np.arange(len(day)) % 2 == 0)
    day.loc[moved, "interest_rate"] = 25.0
    write_scoring_day(lab, DAY, day)
    meta = metadata(score_day(lab, DAY))
    scored = predictions(lab, DAY).set_index("application_id").loc[day["application_id"]].reset_index()
    _assert_moved_feature_named_first(scored, moved, "interest_rate", at_least=0.9)
    assert "champion version 1: occlusion" in meta["reason_codes"]


def test_linear_attributions_sum_to_the_log_odds_above_the_reference(lab):
    lab.train()
    spec = load_spec(lab.specs / "loan_default.yaml")
    model = lab.registry.load(lab.registry.by_alias(MODEL, "champion"))
    explainer = explainer_for(model, spec.features.numeric, spec.features.categorical, ReasonCodes())
    assert explainer.method == "linear"
    X = features(lab.write_mart(2).head(200), spec)
    pipeline = model.get_raw_model()
    p = pipeline.predict_proba(X)[:, 1]
    reference = pd.DataFrame({f: [explainer.reference[f]] for f in explainer.features})
    p_ref = pipeline.predict_proba(features(reference, spec))[0, 1]
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    np.testing.assert_allclose(explainer.attributions(X, p).sum(axis=1), logit(p) - logit(p_ref), atol=1e-8)


def test_top_reasons_name_only_features_that_pushed_the_score_up():
    attributions = np.array([[0.5, -1.0, 2.0, 0.1], [-0.1, -0.2, -0.3, -0.4], [0.0, 0.3, 0.0, 0.0]])
    assert top_reasons(attributions, ["a", "b", "c", "d"], 3).tolist() == ["c, a, d", NONE_ABOVE_REFERENCE, "b"]


def test_the_spec_turns_reason_codes_off(lab):
    scored, _, meta = _scored_with_reasons(lab, reason_codes={"enabled": False})
    assert scored["reasons"].isna().all()
    assert meta["reason_codes"] == "off: reason_codes.enabled is false in the spec"
