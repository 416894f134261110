"""Training the shipped loan spec on the labeled mart as dbt builds it, and logging / registering it in a real MLflow
(SQLite in tmp).

dbt owns the derived features the model trains on (loan-to-income, the monthly installment, installment-to-income):
the mart comes from a real ``dbt build`` of generated days (tests/dbt_marts.py), and dbt's ``unit_tests:`` on
``int_applications_featurized`` pin the formula's zero-rate and null branches (run here as CI runs them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assets.ml.evaluation import features, score
from assets.ml.mlflow_logging import DIGEST_CHARS, load_reference, log_and_register
from assets.ml.run_artifacts import REFERENCE_PATH, SCORE_COLUMN
from assets.ml.spec import ModelSpec, load_spec
from assets.ml.training import train
from resources.registry import ModelRegistry
from tests.chain import dbt_cli, run_days
from tests.dbt_marts import FIRST_DAY, MART_DAYS, ROWS_PER_DAY, labeled_applications

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "model_specs" / "loan_default.yaml"
DAYS = MART_DAYS
TAGS = {"dagster_run_id": "run-1234", "dagster_asset_key": "loan_default_risk/model_version", "code_version": "t1"}
FEATURIZED = "int_applications_featurized"  # the dbt model that computes the derived features
# Its unit tests: the textbook annuity, a 0% rate (principal / term), and missing or zero inputs (nulls, no errors).
FEATURE_UNIT_TESTS = {
    "test_int_applications_featurized_derived_features",
    "test_int_applications_featurized_zero_rate",
    "test_int_applications_featurized_null_inputs",
}


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="module")
def mart() -> pd.DataFrame:
    return labeled_applications(DAYS)


@pytest.fixture(scope="module")
def trained(spec, mart):
    return train(spec, mart)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> ModelRegistry:
    tmp = tmp_path_factory.mktemp("mlflow")
    return ModelRegistry(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=(tmp / "artifacts").as_uri())


@pytest.fixture(scope="module")
def logged(registry, spec, trained):
    """Two registrations of the same trained model: versions 1 and 2."""
    window = {"start": FIRST_DAY.isoformat(), "end": (FIRST_DAY + timedelta(days=DAYS)).isoformat()}
    first = log_and_register(registry, spec, trained, tags=TAGS, data_window=window)
    second = log_and_register(registry, spec, trained, tags={**TAGS, "dagster_run_id": "run-5678"}, data_window=window)
    return first, second


# --- training ---------------------------------------------------------------------------------------------------


def test_trained_model_ranks_the_holdout_reasonably(trained, spec):
    assert 0.6 < trained.metrics["roc_auc"] < 0.95
    assert set(trained.metrics) >= {"roc_auc", "pr_auc", "log_loss", "brier", "base_rate", "mean_score"}
    assert trained.holdout_scores.shape == (len(trained.holdout),)
    assert trained.holdout_window["days"] == spec.evaluation.holdout_days
    assert trained.train_window["last_day"] < trained.holdout_window["first_day"]
    assert trained.train_window["rows"] + trained.holdout_window["rows"] == DAYS * ROWS_PER_DAY
    assert len(trained.data_hash) == 64


def test_training_is_deterministic_whatever_the_row_order(trained, spec, mart):
    again = train(spec, mart.sample(frac=1.0, random_state=11))
    assert again.metrics == trained.metrics
    assert again.data_hash == trained.data_hash
    np.testing.assert_array_equal(again.holdout_scores, trained.holdout_scores)


def test_training_refuses_a_mart_missing_a_feature(spec, mart):
    with pytest.raises(ValueError, match=r"fct_labeled_applications.*'credit_score'"):
        train(spec, mart.drop(columns=["credit_score"]))


def test_the_mart_carries_dbts_derived_features(mart, spec):
    """What training reads is dbt's output: the derived features are there, computed for every generated row."""
    derived = ["loan_to_income", "monthly_installment", "installment_to_income"]
    assert set(spec.features.all) >= {"loan_to_income", "installment_to_income"}  # the model trains on them
    assert mart[derived].notna().all().all()  # the generator leaves no income, amount, term or rate missing
    assert len(mart) == DAYS * ROWS_PER_DAY and mart["application_id"].is_unique


@pytest.mark.slow  # an ingest run (raw day + dbt build) and a dbt invocation
def test_dbts_unit_tests_of_the_derived_features_pass(defs, nightjar_env, tmp_path):
    """`dbt test --select test_type:unit`, as CI runs it: every unit test of the project passes, those of the feature
    formulas among them. (Unit tests read their inputs' column types from the warehouse: one day is built first.)"""
    from jobs.dbt_full_tests import read_test_outcomes

    day = date(2026, 1, 1)
    assert run_days(defs, "ingest", day, day).success
    target = tmp_path / "dbt_target"
    done = dbt_cli(["test", "--select", "test_type:unit"], target, nightjar_env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    manifest = json.loads((target / "manifest.json").read_text())
    outcomes = read_test_outcomes(json.loads((target / "run_results.json").read_text()), manifest)
    assert {o.unique_id for o in outcomes} == set(manifest["unit_tests"])
    assert [o.describe() for o in outcomes if o.status != "pass"] == []
    assert {o.name for o in outcomes if o.tested == FEATURIZED} == FEATURE_UNIT_TESTS
    # dbt names a unit test's temporary relation after the test: Postgres (the prod target) refuses names over 63.
    assert [n for n in (o.name for o in outcomes) if len(n) > 63] == []


# --- MLflow -----------------------------------------------------------------------------------------------------


def test_log_and_register_creates_versions_one_then_two(logged, spec):
    first, second = logged
    assert (first.version, second.version) == (1, 2)
    assert first.name == spec.name
    assert first.model_uri == f"models:/{spec.name}/1"
    assert second.model_uri == f"models:/{spec.name}/2"
    assert first.run_id != second.run_id
    assert first.experiment_id == second.experiment_id


def test_run_has_params_metrics_and_tags(logged, registry, spec, trained):
    first, _ = logged
    run = registry.client().get_run(first.run_id)
    assert run.info.experiment_id == registry.experiment_id(spec.name)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["estimator.class"].endswith("HistGradientBoostingClassifier")
    assert params["estimator.max_iter"] == "200"
    assert params["spec.features.numeric"] == ",".join(spec.features.numeric)
    assert params["spec.features.categorical"] == ",".join(spec.features.categorical)
    assert params["window.holdout_rows"] == str(len(trained.holdout))
    assert params["window.train_first_day"] == "2024-01-01"
    assert params["window.data_hash"] == trained.data_hash
    assert params["data_window.start"] == "2024-01-01"
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "base_rate"):
        assert metrics[name] == pytest.approx(trained.metrics[name])
    assert metrics["train_rows"] == len(trained.train)
    assert metrics["holdout_rows"] == len(trained.holdout)
    assert tags["dagster_run_id"] == "run-1234"
    assert tags["dagster_asset_key"] == TAGS["dagster_asset_key"]
    assert tags["spec_name"] == spec.name
    assert tags["data_hash"] == trained.data_hash


def test_run_has_training_and_evaluation_datasets(logged, registry, spec, trained):
    run = registry.client().get_run(logged[0].run_id)
    inputs = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    assert {d.name for d in inputs.values()} == {spec.training_mart}
    assert inputs["training"].digest == trained.train_hash[:DIGEST_CHARS]
    assert inputs["evaluation"].digest == trained.holdout_hash[:DIGEST_CHARS]


def test_run_has_plots_tables_and_reference(logged, registry):
    client = registry.client()
    run_id = logged[0].run_id
    listed = {f.path for folder in ("plots", "evaluation", "reference") for f in client.list_artifacts(run_id, folder)}
    assert listed >= {
        "plots/roc_curve.png",
        "plots/calibration.png",
        "plots/feature_importance.png",
        "evaluation/calibration_by_decile.csv",
        "evaluation/segment_metrics.csv",
        REFERENCE_PATH,
    }


def test_evaluation_tables_report_the_positive_rate(logged, registry, tmp_path):
    import mlflow

    tables = Path(
        mlflow.artifacts.download_artifacts(
            run_id=logged[0].run_id,
            artifact_path="evaluation",
            dst_path=str(tmp_path),
            tracking_uri=registry.tracking_uri,
        )
    )
    deciles = pd.read_csv(tables / "calibration_by_decile.csv")
    assert list(deciles.columns) == ["decile", "mean_score", "positive_rate", "count"]
    assert deciles["positive_rate"].between(0, 1).all()
    assert "positive_rate" in pd.read_csv(tables / "segment_metrics.csv").columns


def test_reference_sample_is_holdout_rows_with_out_of_sample_scores(logged, registry, spec, trained):
    reference = load_reference(registry, logged[0].run_id)
    assert list(reference.columns) == [*spec.features.all, SCORE_COLUMN, spec.target, "nightjar_day"]
    # Each row's day: monitoring measures how far ordinary days of it drift from the rest.
    holdout_days = set(pd.to_datetime(trained.holdout[spec.timestamp]).dt.strftime("%Y-%m-%d"))
    assert set(reference["nightjar_day"]) <= holdout_days and reference["nightjar_day"].nunique() > 1
    assert len(reference) == min(len(trained.holdout), spec.monitoring.reference_rows)
    assert reference[SCORE_COLUMN].between(0, 1).all()
    # The scores are the pipeline's probabilities on those rows.
    np.testing.assert_allclose(
        reference[SCORE_COLUMN], trained.pipeline.predict_proba(reference[spec.features.all])[:, 1], rtol=1e-12
    )
    assert set(reference[spec.target].unique()) == {0, 1}


def test_model_version_carries_tags_and_description(logged, registry, spec, trained):
    first, second = logged
    v1, v2 = registry.version(spec.name, 1), registry.version(spec.name, 2)
    assert v1.run_id == first.run_id and v2.run_id == second.run_id
    assert v1.tags["dagster_run_id"] == "run-1234" and v2.tags["dagster_run_id"] == "run-5678"
    assert v1.tags["data_hash"] == trained.data_hash
    assert float(v1.tags["metric.roc_auc"]) == trained.metrics["roc_auc"]
    description = registry.client().get_model_version(spec.name, "1").description
    assert "HistGradientBoostingClassifier" in description and "roc_auc" in description
    # No alias is moved by registration: that is the gate's job.
    assert registry.by_alias(spec.name, "champion") is None


def test_the_version_links_its_run_and_logged_model_as_the_mlflow_ui_shows_them(logged, registry, spec, trained):
    """What the MLflow UI reads: the version's source is its logged model (its page links it) and its run; the run
    lists the logged model as its output and says who ran it; the logged model names its version (the run page lists
    it), carries the run's params and metrics, and its MLmodel the signature and input example."""
    import json

    first, _ = logged
    client = registry.client()
    model_id = first.logged_model_uri.removeprefix("models:/")
    version = client.get_model_version(spec.name, "1")
    assert (version.source, version.run_id) == (first.logged_model_uri, first.run_id)
    run = client.get_run(first.run_id)
    assert [o.model_id for o in run.outputs.model_outputs] == [model_id]
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.user"] and run.info.user_id == run.data.tags["mlflow.user"]
    model = client.get_logged_model(model_id)
    assert (model.status, model.source_run_id, model.name) == ("READY", first.run_id, "model")
    assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": spec.name, "version": 1}]
    assert model.params == run.data.params
    linked = {m.key: m.value for m in model.metrics}
    assert linked["roc_auc"] == pytest.approx(trained.metrics["roc_auc"]) and "train_rows" in linked
    files = {f.path for f in client.list_logged_model_artifacts(model_id)}
    assert {"MLmodel", "model.skops", "input_example.json", "serving_input_example.json"} <= files
    loaded = registry.load(registry.version(spec.name, 1))
    assert loaded.metadata.run_id == first.run_id and loaded.metadata.model_id == model_id
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == spec.features.all


def test_two_registries_in_one_process_keep_their_versions_apart(
    logged, registry, spec, trained, tmp_path, monkeypatch
):
    """Two registries (two stores) in one process, beside the process's own MLflow default (MLFLOW_TRACKING_URI, as
    a notebook next to nightjar has it): a version trained into one lands in that store alone, with its run and its
    logged model, loads from there, and the process's default neither changes nor receives anything."""
    import mlflow
    from mlflow.exceptions import MlflowException

    (tmp_path / "default").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'default' / 'mlflow.db'}")
    default = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    other = ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'other.db'}", artifact_root=(tmp_path / "other").as_uri()
    )
    in_other = log_and_register(other, spec, trained, tags=TAGS, data_window={})

    assert other.versions(spec.name) == {1: []}
    assert set(registry.versions(spec.name)) == {1, 2}  # the first registry's own, from the `logged` fixture
    model_id = in_other.logged_model_uri.removeprefix("models:/")
    assert other.client().get_logged_model(model_id).source_run_id == in_other.run_id
    for missing in (
        lambda: registry.client().get_run(in_other.run_id),
        lambda: registry.client().get_logged_model(model_id),
    ):
        with pytest.raises(MlflowException):
            missing()
    with pytest.raises(MlflowException):
        other.client().get_run(logged[0].run_id)
    np.testing.assert_allclose(
        score(other.load(other.version(spec.name, 1)), trained.holdout, spec), trained.holdout_scores, atol=1e-12
    )
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == default
    assert list((tmp_path / "default").iterdir()) == []


# A process whose code pinned MLflow to its own store (mlflow.set_tracking_uri), as a notebook does, registers a
# version in nightjar's registry: the version lands in nightjar's store, and the pin is what it was.
_PINNED_PROCESS = """
import os, sys
import mlflow
from mlflow import MlflowClient
from resources.registry import ModelRegistry

mine = f"sqlite:///{sys.argv[1]}/mine.db"
mlflow.set_tracking_uri(mine)
registry = ModelRegistry(tracking_uri=f"sqlite:///{sys.argv[1]}/nightjar.db")
client = registry.client()
experiment = registry.experiment_id("m")
run = client.create_run(experiment)
model = client.create_logged_model(experiment, name="model", source_run_id=run.info.run_id)
print(registry.register("m", f"models:/{model.model_id}", {}), registry.versions("m"))
print(mlflow.get_tracking_uri() == mine, os.environ["MLFLOW_TRACKING_URI"] == mine, mlflow.get_registry_uri() == mine)
print(MlflowClient(mine).search_registered_models())
"""


def test_registering_leaves_the_mlflow_store_a_process_pinned_as_it_was(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _PINNED_PROCESS, str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-3:] == ["1 {1: []}", "True True True", "[]"]


def test_registered_model_predicts_the_same_probabilities_with_pyfunc(logged, registry, spec, trained):
    model = registry.load(registry.version(spec.name, 1))
    X = features(trained.holdout, spec)
    proba = model.predict(X)
    # Logged with pyfunc_predict_fn="predict_proba": an (n, 2) array, column 1 = P(defaulted = 1).
    assert isinstance(proba, np.ndarray) and proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba[:, 1], trained.holdout_scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(score(model, trained.holdout, spec), trained.holdout_scores, rtol=0, atol=1e-12)


def test_pyfunc_accepts_warehouse_dtypes_through_features(logged, registry, spec, trained):
    """DuckDB hands over a missing VARCHAR as None and an INTEGER column with nulls as Int64."""
    model = registry.load(registry.version(spec.name, 1))
    rows = trained.holdout.head(50).copy()
    rows["credit_score"] = pd.array(rows["credit_score"], dtype="Int64")
    rows.loc[rows.index[:5], "credit_score"] = pd.NA
    rows.loc[rows.index[:5], "purpose"] = None
    rows["state"] = None  # a whole column missing in a batch
    expected = score(trained.pipeline, rows, spec)
    np.testing.assert_allclose(score(model, rows, spec), expected, rtol=0, atol=1e-12)
    # None is imputed like NaN, not scored as a category of its own.
    as_nan = rows.assign(purpose=rows["purpose"].astype(object).where(rows["purpose"].notna(), np.nan))
    np.testing.assert_allclose(expected, score(trained.pipeline, as_nan, spec), rtol=0, atol=1e-12)


def test_another_estimator_trains_and_registers_without_code_change(registry, mart):
    from sklearn.exceptions import ConvergenceWarning

    raw = yaml.safe_load(SPEC_PATH.read_text())
    raw["name"] = "loan_default_risk_logistic"
    raw["estimator"] = {"class": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0, "max_iter": 1000}}
    spec = ModelSpec.model_validate(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        trained = train(spec, mart)
    assert 0.6 < trained.metrics["roc_auc"] < 0.95
    logged = log_and_register(registry, spec, trained, tags=TAGS, data_window={})
    assert (logged.name, logged.version) == ("loan_default_risk_logistic", 1)
    run = registry.client().get_run(logged.run_id)
    assert run.data.params["estimator.class"].endswith("LogisticRegression")
    model = registry.load(registry.version(logged.name, logged.version))
    np.testing.assert_allclose(score(model, trained.holdout, spec), trained.holdout_scores, rtol=0, atol=1e-12)


def test_a_version_is_scored_on_its_own_features_after_the_spec_changes(logged, registry, spec, trained):
    """The gate scores the champion with the current spec; the champion must still get the columns it knows."""
    raw = yaml.safe_load(SPEC_PATH.read_text())
    raw["features"] = {"numeric": ["credit_score", "debt_to_income"], "categorical": ["state"]}
    raw["evaluation"]["segments"] = ["state"]
    raw["fairness"]["segments"] = ["state"]  # segments are features: age is no longer one
    narrower = ModelSpec.model_validate(raw)
    model = registry.load(registry.version(spec.name, 1))
    for scorer in (model, trained.pipeline):
        np.testing.assert_allclose(score(scorer, trained.holdout, narrower), trained.holdout_scores, atol=1e-12)


def test_max_training_rows_reads_the_same_hash_sample_of_the_window_every_time(spec, mart, registry, tmp_path):
    """The warehouse picks the rows (lowest md5 of the entity id), so only the sample reaches the training process;
    the same rows on every run, whatever the order the mart's rows are stored in."""
    import hashlib

    from assets.ml.training_set import read_training_set, write_training_set
    from resources.warehouse import DuckDBWarehouse

    sampled = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update={"max_training_rows": 1000})})
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    shuffled = mart.sample(frac=1.0, random_state=3)
    mart_table = f"marts.{spec.training_mart}"
    warehouse.replace_window(mart_table, spec.timestamp, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS), [shuffled])
    newest = pd.Timestamp(mart[spec.timestamp].max()).date()
    window = mart[pd.to_datetime(mart[spec.timestamp]).dt.date > newest - timedelta(days=spec.evaluation.window_days)]
    assert len(window) > 2000  # more than the limit: a sample is taken
    expected = sorted(window[spec.entity_id], key=lambda key: hashlib.md5(str(key).encode()).hexdigest())[:1000]

    for _ in range(2):
        written = write_training_set(warehouse, registry, sampled, "loan_default.yaml", None, None)
        stored = read_training_set(warehouse, sampled)
        assert written.rows == 1000 and sorted(stored[spec.entity_id]) == sorted(expected)
