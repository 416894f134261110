"""Reason codes on real runs of the predictions asset (the lab's Definitions, MLflow store and warehouse), and the
tree method's attributions on fitted scikit-learn models:

- a feature the test moves for some rows is named first for those rows, by the exact linear method, by the tree
  method (on by default for HistGradientBoosting, the shipped spec's estimator) and by occlusion;
- the linear attributions are exact: they sum to the row's log-odds minus the reference's;
- the tree attributions are exact: plus the model's expected value they are its raw score (decision_function, the
  averaged probability, the predicted value) for every row, and one tree's are those of a walk by hand;
- only decisions outside the lowest (approve) band carry reasons, and the review queue shows them;
- the spec can turn them off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.ml.evaluation import features
from assets.ml.reasons import NONE_ABOVE_REFERENCE, explainer_for, top_reasons
from assets.ml.scorer import make_scorer, reasons_off
from assets.ml.spec import ReasonCodes, SpecError, load_spec
from assets.ml.training import build_pipeline
from assets.ml.tree_paths import score_columns
from resources.registry import VersionInfo
from resources.settings import MODEL_SPECS_DIR
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


def test_gradient_boosting_names_the_moved_feature_first_by_tree_paths_by_default_and_by_occlusion(lab):
    assert lab.train(estimator=FAST_BOOSTING) == 1
    mart = lab.write_mart(2)
    day = write_scoring_day(lab, DAY, mart[mart["application_date"] == mart["application_date"].max()])
    score_day(lab, DAY)
    approved = predictions(lab, DAY).set_index("application_id").loc[day["application_id"], "decision"] == "approve"
    # Applications the model approved get the highest interest rate it saw: that, and nothing else, moved.
    moved = approved.to_numpy() & (np.arange(len(day)) % 2 == 0)
    day.loc[moved, "interest_rate"] = 25.0
    write_scoring_day(lab, DAY, day)
    # On by default: the tree method costs about one more pass over the explained rows.
    meta = metadata(score_day(lab, DAY))
    scored = predictions(lab, DAY).set_index("application_id").loc[day["application_id"]].reset_index()
    _assert_moved_feature_named_first(scored, moved, "interest_rate", at_least=0.9)
    assert "champion version 1: tree, against the model's expected output" in meta["reason_codes"]
    assert "training median" not in meta["reason_codes"]  # the tree method measures from the mean, not an applicant
    # Occlusion where the spec asks for it by name: a prediction per feature, the same feature first.
    lab.write_spec(estimator=FAST_BOOSTING, reason_codes={"method": "occlusion"})
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


# --- the tree method on fitted scikit-learn models ---------------------------------------------------------------

NUMERIC, CATEGORICAL = ["a", "b", "flat"], ["c"]


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Made-up rows: two numbers that matter, one constant in training ("flat"), one category."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),
            "b": rng.uniform(0, 10, n),
            "flat": np.full(n, 5.0),
            "c": rng.choice(np.asarray(["x", "y", "z"], dtype=object), n),
        }
    )


def _target(rows: pd.DataFrame, task: str) -> np.ndarray:
    value = 2.0 * rows["a"] - 0.3 * rows["b"] + rows["c"].map({"x": 0.0, "y": 1.5, "z": -1.0})
    if task == "regression":
        return value.to_numpy()
    if task == "binary":
        return (value > 0).astype(int).to_numpy()
    return np.where(value > 1, "hi", np.where(value > -1.5, "mid", "lo")).astype(object)


def _tree_pipeline(estimator, task: str):
    """Impute + scale the numbers, impute + one-hot the category (the project's pipeline), then ``estimator``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer([("numeric", numeric, NUMERIC), ("categorical", categorical, CATEGORICAL)])
    train = _rows(400, seed=1)
    return Pipeline([("preprocess", preprocess), ("model", estimator)]).fit(train, _target(train, task))


def _raw_score(pipeline, X: pd.DataFrame, task: str, column: np.ndarray | None = None) -> np.ndarray:
    """What the tree method decomposes: the boosting's raw score, the forest's averaged prediction."""
    model = pipeline.named_steps["model"]
    if type(model).__name__.startswith(("HistGradientBoosting", "GradientBoosting")) and task != "regression":
        raw = pipeline.decision_function(X)
    elif task == "regression":
        raw = pipeline.predict(X)
    else:
        raw = pipeline.predict_proba(X)
    if raw.ndim == 1:
        return raw
    return raw[:, 1] if column is None else raw[np.arange(len(X)), column]


def _check_exact(estimator, task: str):
    """Attributions + expected value == the model's raw score, to 1e-9, for every row; the constant feature gets
    exactly 0. Returns the explainer and the rows."""
    pipeline = _tree_pipeline(estimator, task)
    explainer = explainer_for(pipeline, NUMERIC, CATEGORICAL, ReasonCodes(), task)
    assert explainer.method == "tree"
    X = _rows(300, seed=2)
    X.loc[::7, "a"] = np.nan  # imputed, as a missing value is at scoring
    column = None
    if task == "multiclass":
        column = np.arange(300) % len(explainer.classes)  # any class, not only the predicted one
        predicted = np.asarray(explainer.classes, dtype=object)[column]
        attributions = explainer.attributions(X, np.zeros(300), predicted)
        expected = np.array([explainer.columns[k].expected for k in column])
    else:
        attributions = explainer.attributions(X, np.zeros(300))
        expected = explainer.columns[0].expected
    np.testing.assert_allclose(attributions.sum(axis=1) + expected, _raw_score(pipeline, X, task, column), atol=1e-9)
    assert (attributions[:, NUMERIC.index("flat")] == 0).all()
    assert np.abs(attributions[:, 0]).max() > 0
    return explainer, X, attributions


def test_one_tree_attributions_are_a_walk_by_hand_and_add_up_to_its_prediction():
    from sklearn.tree import DecisionTreeRegressor

    explainer, X, attributions = _check_exact(DecisionTreeRegressor(max_depth=3, random_state=0), "regression")
    # By hand: from the root, each split credits its feature with the change of the node mean (tree_.value) to
    # the child the row goes to; the one-hot columns of c (3, 4, 5 after a, b, flat) belong to c.
    tree = explainer.pipeline.named_steps["model"].tree_
    owner = [0, 1, 2, 3, 3, 3]
    Z = explainer.pipeline.named_steps["preprocess"].transform(X)
    for i, z in enumerate(Z):
        by_hand, node = np.zeros(4), 0
        while tree.children_left[node] >= 0:
            child = (
                tree.children_left[node]
                if np.float32(z[tree.feature[node]]) <= tree.threshold[node]
                else tree.children_right[node]
            )
            by_hand[owner[tree.feature[node]]] += tree.value[child, 0, 0] - tree.value[node, 0, 0]
            node = child
        np.testing.assert_allclose(attributions[i], by_hand, atol=1e-9)
    assert explainer.columns[0].expected == pytest.approx(tree.value[0, 0, 0], abs=1e-9)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_gradient_boosting_attributions_add_up_to_its_raw_score(task):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    model = GradientBoostingRegressor if task == "regression" else GradientBoostingClassifier
    _check_exact(model(n_estimators=3, max_depth=3, random_state=0), task)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_hist_gradient_boosting_attributions_add_up_to_its_raw_score(task):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    _check_exact(model(max_iter=30, max_leaf_nodes=15, early_stopping=False, random_state=0), task)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_forest_attributions_add_up_to_its_averaged_prediction(task):
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier

    model = ExtraTreesRegressor if task == "regression" else RandomForestClassifier
    _check_exact(model(n_estimators=5, max_depth=6, random_state=0), task)


def test_hist_gradient_boosting_routes_missing_values_as_it_predicts():
    """On rows with NaN where the model learned a side for missing values (no imputer in front): the leaves found
    are the model's, so the sums are its decision_function."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(3)
    Z = rng.normal(0, 1, (2000, 3))
    y = ((Z[:, 0] > 0) ^ (Z[:, 1] > 0.5)).astype(int)
    Z[rng.random(2000) < 0.2, 0] = np.nan
    y[np.isnan(Z[:, 0])] = 1  # missing says something: the trees send it one way or the other
    model = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=31, random_state=0).fit(Z, y)
    (column,) = score_columns(model, [0, 1, 2], 3, "binary")
    rows = rng.normal(0, 1, (5000, 3))
    rows[::3, 0] = np.nan
    rows[::5, 1] = np.nan  # never missing in training
    attributions = column.attributions(rows)
    np.testing.assert_allclose(attributions.sum(axis=1) + column.expected, model.decision_function(rows), atol=1e-9)


def test_tree_reasons_name_the_strongest_pushes_first():
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0)
    explainer, X, attributions = _check_exact(model, "binary")
    reasons = explainer.explain(X, np.zeros(len(X)))
    names = np.asarray(["a", "b", "flat", "c"], dtype=object)
    for row, said in zip(attributions, reasons, strict=True):
        order = [j for j in np.argsort(-row, kind="stable") if row[j] > 0][:3]
        assert said == (", ".join(names[order]) if order else NONE_ABOVE_REFERENCE)
    assert "flat" not in ", ".join(reasons)  # a feature the model cannot use is never a reason


def test_the_shipped_spec_writes_reason_codes_for_its_gradient_boosting_by_default():
    spec = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")
    assert spec.reason_codes.enabled is None and spec.reason_codes.method == "auto"
    rng = np.random.default_rng(4)
    n = 600
    rows = pd.DataFrame({f: rng.normal(50, 10, n) for f in spec.features.numeric})
    for f in spec.features.categorical:
        rows[f] = rng.choice(np.asarray([f"{f}_1", f"{f}_2", f"{f}_3"], dtype=object), n)
    label = (rows[spec.features.numeric[0]] + rng.normal(0, 10, n) > 50).astype(int)
    pipeline = build_pipeline(spec).fit(features(rows, spec), label)
    scorer = make_scorer(spec, "champion", VersionInfo(spec.name, 1, "run", {}), pipeline, reasons=True)
    assert scorer.explainer is not None and scorer.explainer.method == "tree"
    assert reasons_off(spec, "tree") is None
    X = features(rows.head(50), spec)
    sums = scorer.explainer.attributions(X, np.zeros(50)).sum(axis=1) + scorer.explainer.columns[0].expected
    np.testing.assert_allclose(sums, pipeline.decision_function(X), atol=1e-9)


def test_a_tree_model_with_native_categorical_splits_falls_back_to_occlusion(caplog):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[3], random_state=0)
    pipeline = _tree_pipeline(model, "binary")
    with caplog.at_level("WARNING", logger="nightjar.reasons"):
        explainer = explainer_for(pipeline, NUMERIC, CATEGORICAL, ReasonCodes(), "binary")
    assert explainer.method == "occlusion"
    assert "native categorical splits" in caplog.text and "occlusion is used instead" in caplog.text
    with pytest.raises(SpecError, match="reason_codes.method tree: HistGradientBoostingClassifier uses native"):
        explainer_for(pipeline, NUMERIC, CATEGORICAL, ReasonCodes(method="tree"), "binary")
