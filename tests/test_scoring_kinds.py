"""Scoring a regression and a multiclass model as the nightly job does (real Definitions, DuckDB warehouse, MLflow
store, scikit-learn pipelines registered in it), and their reason codes:

- regression: the predictions hold the pipeline's predicted value, its decision band, the review queue the
  spec's review band, reasons outside the lowest band; a challenger scores the day in shadow; without bands the
  decision is NULL and every row gets reasons;
- multiclass: the predicted class (the argmax), its probability, every class's probability as JSON (summing to
  1, in the model's class order), the class's decision; the review queue; a challenger deciding the canary slice;
- scoring a day again leaves one row per application;
- linear reason codes are coef x (value - reference) (regression) and the predicted class's row (multiclass).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.ml.canary import slice_quality
from assets.ml.evaluation import decide, features, inputs_of, model_input
from assets.ml.reasons import explainer_for
from assets.ml.spec import ReasonCodes, load_spec
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.settings import PROJECT_ROOT
from tests.dbt_marts import labeled_applications
from tests.stores import point_stores_at

EXAMPLES = PROJECT_ROOT / "model_specs" / "examples"
DAY = date(2026, 1, 5)  # a partition of the test deployment (conftest: NIGHTJAR_START_DATE 2026-01-01)
TRAIN_DAYS = 20
RIDGE = {"class": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}}
LOGISTIC = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}}


class KindLab:
    """A test's stores, one example spec (``file``, changed as asked), and versions registered in its MLflow store:
    pipelines fitted here on the labeled mart, logged as the training asset logs them."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path, file: str, **changes):
        from resources.build import open_warehouse

        self.specs = root / "specs"
        self.specs.mkdir()
        self.file = file
        self.write_spec(**changes)
        self.settings = point_stores_at(root, monkeypatch, NIGHTJAR_MODEL_SPECS_DIR=str(self.specs))
        shutil.copy(empty_mlflow_db, Path(self.settings.mlflow_tracking_uri.removeprefix("sqlite:///")))
        self.registry = ModelRegistry(
            tracking_uri=self.settings.mlflow_tracking_uri, artifact_root=self.settings.mlflow_artifact_root
        )
        self.warehouse = open_warehouse(self.settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.mart = labeled_applications(TRAIN_DAYS + 1)
        last = self.mart["application_date"].max()
        self.day_rows = self.mart[self.mart["application_date"] == last].assign(application_date=pd.Timestamp(DAY))
        self.day_rows = self.day_rows.sort_values("application_id").reset_index(drop=True)
        self.warehouse.replace_window(
            "marts.fct_application_features", "application_date", DAY, DAY + timedelta(days=1), [self.day_rows]
        )

    def write_spec(self, **changes) -> None:
        spec = yaml.safe_load((EXAMPLES / self.file).read_text())
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        (self.specs / self.file).write_text(yaml.safe_dump(spec))
        self.spec = load_spec(self.specs / self.file)

    def fit(self, **changes):
        """A pipeline of the spec (changed as asked) fitted on the mart's days before the scored one."""
        from assets.ml.evaluation import labels
        from assets.ml.training import build_pipeline

        if isinstance(changes.get("estimator"), dict):
            changes["estimator"] = type(self.spec.estimator).model_validate(changes["estimator"])
        spec = self.spec.model_copy(update=changes)
        rows = self.mart[self.mart["application_date"] < self.mart["application_date"].max()]
        return build_pipeline(spec).fit(features(rows, spec), labels(rows, spec))

    def register(self, pipeline, alias: str) -> int:
        """Log ``pipeline`` with its input signature, register it, passed by the gate, and point ``alias`` at it."""
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature
        from mlflow.types.schema import ColSpec, Schema

        from assets.ml.mlflow_model import skops_trusted_types
        from assets.ml.promotion import GATE_PASSED_TAG

        client = self.registry.client()
        mlflow.set_tracking_uri(self.settings.mlflow_tracking_uri)
        example = model_input(self.mart.head(5), *inputs_of(pipeline), self.spec.name)  # the columns it was fitted on
        signature = infer_signature(example)
        signature.inputs = Schema([ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs])
        with mlflow.start_run(experiment_id=self.registry.experiment_id(self.spec.name)) as run:
            logged = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=signature,
                skops_trusted_types=skops_trusted_types(pipeline),
            )
        if not self.registry.versions(self.spec.name):
            client.create_registered_model(self.spec.name)
        version = client.create_model_version(self.spec.name, logged.model_uri, run_id=run.info.run_id).version
        client.set_model_version_tag(self.spec.name, version, GATE_PASSED_TAG, "true")
        client.set_registered_model_alias(self.spec.name, alias, version)
        return int(version)

    def score_day(self, *, rescore: bool = False) -> tuple[dict, str]:
        """The real predictions asset for DAY, as the nightly job materializes it: (its metadata, the run id)."""
        step = f"{self.spec.name}__predictions"
        result = (
            self.defs()
            .resolve_job_def("nightly")
            .execute_in_process(
                partition_key=DAY.isoformat(),
                asset_selection=[dg.AssetKey([self.spec.name, "predictions"])],
                instance=self.instance,
                run_config={"ops": {step: {"config": {"rescore": rescore}}}},
                raise_on_error=False,
            )
        )
        assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure]
        [materialized] = result.asset_materializations_for_node(step)
        return {k: v.value for k, v in materialized.metadata.items()}, result.run_id

    def defs(self) -> dg.Definitions:
        from definitions import build_definitions

        return build_definitions(self.settings)

    def table(self, suffix: str = "") -> pd.DataFrame:
        return self.warehouse.query(f"SELECT * FROM predictions.{self.spec.name}{suffix} ORDER BY application_id")


# --- regression ------------------------------------------------------------------------------------------------------


def test_a_regression_champion_writes_its_predicted_value_bands_review_queue_reasons_and_a_shadow(
    tmp_path, monkeypatch, empty_mlflow_db
):
    lab = KindLab(tmp_path, monkeypatch, empty_mlflow_db, "interest_rate.yaml", estimator=RIDGE)
    champion = lab.fit()
    assert lab.register(champion, CHAMPION) == 1
    meta, run_id = lab.score_day()

    scored = lab.table()
    assert list(scored.columns) == [
        "application_id",
        "application_date",
        "score",
        "decision",
        "model_name",
        "model_version",
        "dagster_run_id",
        "scored_at",
        "decided_by",
        "reasons",
    ]
    assert scored["application_id"].tolist() == lab.day_rows["application_id"].tolist()
    expected = champion.predict(features(lab.day_rows, lab.spec))
    np.testing.assert_allclose(scored["score"], expected, rtol=1e-9)
    assert scored["decision"].tolist() == decide(expected, lab.spec.decision_bands).tolist()
    assert set(scored["decision"]) == {"prime", "near_prime", "subprime"}  # the day's rates span every band
    assert (scored["model_version"] == 1).all() and (scored["decided_by"] == "champion").all()
    assert (scored["dagster_run_id"] == run_id).all()
    # Reasons: every decision outside the lowest band, and only those.
    outside = scored["decision"] != "prime"
    assert scored.loc[outside, "reasons"].notna().all() and scored.loc[~outside, "reasons"].isna().all()
    queue = lab.table("_review_queue")
    assert queue["application_id"].tolist() == scored.loc[scored["decision"] == "subprime", "application_id"].tolist()
    assert meta["review_queue_rows"] == len(queue) > 0
    counts = scored["decision"].value_counts()
    assert [meta[f"decisions_{band}"] for band in ("prime", "near_prime", "subprime")] == [
        int(counts[band]) for band in ("prime", "near_prime", "subprime")
    ]
    assert meta["predicted_mean"] == pytest.approx(expected.mean())
    assert (meta["predicted_min"], meta["predicted_max"]) == pytest.approx((expected.min(), expected.max()))
    assert "champion version 1: linear" in meta["reason_codes"]

    # A challenger (stronger regularization) scores the same rows in shadow; the decisions stay the champion's.
    challenger = lab.fit(estimator={"class": RIDGE["class"], "params": {"alpha": 5000.0}})
    assert lab.register(challenger, CHALLENGER) == 2
    meta, _ = lab.score_day()
    shadow = lab.table("_shadow")
    np.testing.assert_allclose(shadow["score"], challenger.predict(features(lab.day_rows, lab.spec)), rtol=1e-9)
    assert (shadow["model_version"] == 2).all() and (shadow["decided_by"] == "shadow").all()
    again = lab.table()
    np.testing.assert_allclose(again["score"], expected, rtol=1e-9)
    assert len(again) == again["application_id"].nunique() == len(lab.day_rows)  # scored again: no duplicates
    assert meta["shadow_version"] == 2
    assert meta["champion_challenger_mean_abs_difference"] == pytest.approx(
        float(np.abs(shadow["score"] - again["score"]).mean())
    )
    assert 0.0 <= meta["champion_challenger_agreement"] <= 1.0


def test_a_regression_without_bands_writes_no_decision_and_explains_every_row(tmp_path, monkeypatch, empty_mlflow_db):
    lab = KindLab(
        tmp_path,
        monkeypatch,
        empty_mlflow_db,
        "interest_rate.yaml",
        estimator=RIDGE,
        decision_bands=None,
        review_band=None,
    )
    lab.register(lab.fit(), CHAMPION)
    meta, _ = lab.score_day()
    scored = lab.table()
    assert len(scored) == len(lab.day_rows)
    assert scored["decision"].isna().all()
    assert scored["reasons"].notna().all()
    assert lab.table("_review_queue").empty and meta["review_queue_rows"] == 0
    assert meta["decisions"] == "none: the spec has no decision_bands"
    assert not [k for k in meta if k.startswith("decisions_")]


# --- multiclass ------------------------------------------------------------------------------------------------------

CLASS_DECISIONS = {"small_business": "business_desk", "medical": "medical_desk"}


def test_a_multiclass_champion_writes_the_class_its_probabilities_decisions_and_a_canary(
    tmp_path, monkeypatch, empty_mlflow_db
):
    lab = KindLab(
        tmp_path,
        monkeypatch,
        empty_mlflow_db,
        "loan_purpose.yaml",
        estimator=LOGISTIC,
        class_decisions=CLASS_DECISIONS,
        review_band="business_desk",
    )
    champion = lab.fit()
    assert lab.register(champion, CHAMPION) == 1
    meta, run_id = lab.score_day()

    scored = lab.table()
    assert list(scored.columns)[-2:] == ["predicted_class", "class_probabilities"]
    X = features(lab.day_rows, lab.spec)
    proba = champion.predict_proba(X)
    classes = [str(c) for c in champion.classes_]
    assert scored["predicted_class"].tolist() == [classes[i] for i in proba.argmax(axis=1)]
    np.testing.assert_allclose(scored["score"], proba.max(axis=1), rtol=1e-9)
    parsed = [json.loads(text) for text in scored["class_probabilities"]]
    assert all(list(row) == classes for row in parsed)  # the model's class order
    np.testing.assert_allclose([sum(row.values()) for row in parsed], 1.0, atol=1e-9)
    np.testing.assert_allclose([[row[c] for c in classes] for row in parsed], proba, rtol=1e-9)
    expected_decisions = [CLASS_DECISIONS.get(c, c) for c in scored["predicted_class"]]
    assert scored["decision"].tolist() == expected_decisions
    assert {"business_desk", "medical_desk", "debt_consolidation"} <= set(expected_decisions)
    assert (scored["model_version"] == 1).all() and (scored["dagster_run_id"] == run_id).all()
    # The review band's rows go to the queue, and they (only they) carry reasons.
    in_review = scored["decision"] == "business_desk"
    queue = lab.table("_review_queue")
    assert queue["application_id"].tolist() == scored.loc[in_review, "application_id"].tolist()
    assert meta["review_queue_rows"] == len(queue)
    assert scored.loc[in_review, "reasons"].notna().all() and scored.loc[~in_review, "reasons"].isna().all()
    assert queue["class_probabilities"].notna().all()
    # Decision counts and the class mix over what was written.
    for decision, n in scored["decision"].value_counts().items():
        assert meta[f"decisions_{decision}"] == n
    for cls, n in scored["predicted_class"].value_counts().items():
        assert meta[f"predicted_class_{cls}"] == n
    assert meta["mean_predicted_class_probability"] == pytest.approx(proba.max(axis=1).mean())

    # A challenger the gate passed decides the canary slice; it also scores every row in shadow.
    lab.write_spec(
        estimator=LOGISTIC, class_decisions=CLASS_DECISIONS, review_band="business_desk", canary={"share": 0.25}
    )
    challenger = lab.fit(features=lab.spec.features.model_copy(update={"categorical": ["home_ownership"]}))
    assert lab.register(challenger, CHALLENGER) == 2
    meta, _ = lab.score_day()
    assert meta["canary"].startswith("on: challenger version 2")
    scored = lab.table()
    assert len(scored) == scored["application_id"].nunique() == len(lab.day_rows)  # scored again: no duplicates
    sliced = scored["decided_by"] == "challenger"
    assert 0 < sliced.sum() < len(scored)
    assert (scored.loc[sliced, "model_version"] == 2).all() and (scored.loc[~sliced, "model_version"] == 1).all()
    challenger_proba = challenger.predict_proba(X)
    np.testing.assert_allclose(scored.loc[sliced, "score"], challenger_proba[sliced.to_numpy()].max(axis=1), rtol=1e-9)
    np.testing.assert_allclose(scored.loc[~sliced, "score"], proba[~sliced.to_numpy()].max(axis=1), rtol=1e-9)
    shadow = lab.table("_shadow")
    assert (shadow["model_version"] == 2).all() and shadow["predicted_class"].notna().all()
    assert 0.0 <= meta["champion_challenger_class_agreement"] <= 1.0
    assert meta["challenger_rows"] == int(sliced.sum())

    # Once labels arrive, each role's slice is judged by the multiclass metrics.
    labeled = scored.merge(lab.day_rows[["application_id", "purpose"]], on="application_id")
    quality = slice_quality(labeled, "purpose", task="multiclass")
    assert quality["challenger"]["rows"] == sliced.sum() and quality["champion"]["rows"] == (~sliced).sum()
    champion_rows = labeled[labeled["decided_by"] == "champion"]
    accuracy = (champion_rows["predicted_class"] == champion_rows["purpose"]).mean()
    assert quality["champion"]["accuracy"] == pytest.approx(accuracy)
    assert 0 <= quality["challenger"]["macro_f1"] <= 1 and quality["champion"]["log_loss"] > 0


# --- reason codes ----------------------------------------------------------------------------------------------------


def _small_pipeline(estimator):
    """Median imputation (no scaling) and one-hot categories: the linear terms are then coef x (value - median)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = Pipeline([("impute", SimpleImputer(strategy="median"))])
    categorical = Pipeline(
        [("impute", SimpleImputer(strategy="most_frequent")), ("onehot", OneHotEncoder(handle_unknown="ignore"))]
    )
    return Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [("numeric", numeric, ["a", "b"]), ("categorical", categorical, ["c"])], sparse_threshold=0
                ),
            ),
            ("model", estimator),
        ]
    )


SMALL = pd.DataFrame(
    {
        "a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "b": [10.0, 0.0, 5.0, 2.0, 8.0, 1.0, 3.0],
        "c": np.array(["x", "y", "x", "z", "x", "y", "x"], dtype=object),
    }
)


def test_linear_regression_reason_codes_are_coef_times_the_difference_from_the_reference():
    from sklearn.linear_model import LinearRegression

    y = 2.0 * SMALL["a"] - 0.5 * SMALL["b"] + SMALL["c"].map({"x": 0.0, "y": 3.0, "z": -1.0})
    pipeline = _small_pipeline(LinearRegression()).fit(SMALL, y)
    explainer = explainer_for(pipeline, ["a", "b"], ["c"], ReasonCodes(top=2), task="regression")
    assert explainer.method == "linear"
    assert explainer.reference == {"a": 4.0, "b": 3.0, "c": "x"}  # medians, the most frequent category
    coef = pipeline.named_steps["model"].coef_  # a, b, c=x, c=y, c=z
    rows = pd.DataFrame({"a": [6.0, 1.0], "b": [3.0, 9.0], "c": np.array(["y", "z"], dtype=object)})
    expected = np.array(
        [
            [coef[0] * (6 - 4), coef[1] * (3 - 3), coef[3] - coef[2]],
            [coef[0] * (1 - 4), coef[1] * (9 - 3), coef[4] - coef[2]],
        ]
    )
    predicted = pipeline.predict(rows)
    np.testing.assert_allclose(explainer.attributions(rows, predicted), expected, atol=1e-9)
    # They add up to the predicted value minus the reference's.
    reference = pd.DataFrame({"a": [4.0], "b": [3.0], "c": np.array(["x"], dtype=object)})
    np.testing.assert_allclose(expected.sum(axis=1), predicted - pipeline.predict(reference)[0], atol=1e-9)
    assert explainer.explain(rows, predicted).tolist() == ["a, c", "(none above the reference)"]


def test_regression_occlusion_is_the_drop_in_the_predicted_value():
    from sklearn.ensemble import HistGradientBoostingRegressor

    y = 2.0 * SMALL["a"] - 0.5 * SMALL["b"]
    pipeline = _small_pipeline(HistGradientBoostingRegressor(max_iter=20, min_samples_leaf=1)).fit(SMALL, y)
    explainer = explainer_for(pipeline, ["a", "b"], ["c"], ReasonCodes(method="occlusion"), task="regression")
    assert explainer.method == "occlusion"
    predicted = pipeline.predict(SMALL)
    attributions = explainer.attributions(SMALL, predicted)
    np.testing.assert_allclose(attributions[:, 1], predicted - pipeline.predict(SMALL.assign(b=3.0)), atol=1e-12)


def test_multiclass_reason_codes_explain_the_predicted_class():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    y = np.array(["p", "q", "r", "p", "q", "r", "p"], dtype=object)
    linear = _small_pipeline(LogisticRegression(max_iter=1000)).fit(SMALL, y)
    explainer = explainer_for(linear, ["a", "b"], ["c"], ReasonCodes(), task="multiclass")
    assert explainer.method == "linear" and explainer.classes == ["p", "q", "r"]
    predicted = np.array(["q", "r", "p", "p", "q", "r", "q"], dtype=object)  # any class, not only the argmax
    column = np.array([["p", "q", "r"].index(c) for c in predicted])
    reference = pd.DataFrame({"a": [4.0], "b": [3.0], "c": np.array(["x"], dtype=object)})
    logits, logits_ref = linear.decision_function(SMALL), linear.decision_function(reference)[0]
    sums = explainer.attributions(SMALL, np.zeros(len(SMALL)), predicted).sum(axis=1)
    np.testing.assert_allclose(sums, logits[np.arange(len(SMALL)), column] - logits_ref[column], atol=1e-9)

    # Occlusion: the drop in the predicted class's probability when a feature takes its reference value.
    boosted = _small_pipeline(HistGradientBoostingClassifier(max_iter=5, min_samples_leaf=1)).fit(SMALL, y)
    occlusion = explainer_for(boosted, ["a", "b"], ["c"], ReasonCodes(method="occlusion"), task="multiclass")
    assert occlusion.method == "occlusion"
    proba = boosted.predict_proba(SMALL)
    score = proba[np.arange(len(SMALL)), column]
    occluded = SMALL.assign(a=4.0)
    expected_a = score - boosted.predict_proba(occluded)[np.arange(len(SMALL)), column]
    np.testing.assert_allclose(occlusion.attributions(SMALL, score, predicted)[:, 0], expected_a, atol=1e-12)


def test_regression_slices_are_judged_by_their_error():
    labeled = pd.DataFrame(
        {
            "decided_by": ["champion", "champion", None, "challenger", "challenger"],
            "rate": [10.0, 12.0, 14.0, 8.0, 20.0],
            "score": [11.0, 12.0, 12.0, 8.0, 17.0],
        }
    )
    quality = slice_quality(labeled, "rate", task="regression")
    assert quality["champion"]["rows"] == 3 and quality["challenger"]["rows"] == 2
    assert quality["champion"]["mae"] == pytest.approx(1.0) and quality["challenger"]["mae"] == pytest.approx(1.5)
    assert quality["challenger"]["rmse"] == pytest.approx(np.sqrt(4.5))
