"""A spec whose estimator or target does not fit its task fails when definitions load, naming the file and the
field, not after a training run has built its set: a regressor for a 0/1 target, a classifier without predict_proba,
params the class does not take, a target the training mart declares with a type or accepted values the task cannot
use, and every task-bound field (bands, class decisions, metrics, quality and fairness thresholds) of another task."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from assets.ml.spec import SpecError, check_estimator, load_spec
from assets.ml.spec.estimator_kind import CACHE_FILE, estimator_kind
from assets.ml.spec.mart_columns import check_declared_target
from resources.settings import MODEL_SPECS_DIR, PROJECT_ROOT


def _loan_spec() -> dict:
    return yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())


def _load_with(nightjar_env, tmp_path, spec: dict, name: str = "mine.yaml"):
    from definitions import build_definitions

    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / name).write_text(yaml.safe_dump(spec))
    return build_definitions(dataclasses.replace(nightjar_env, model_specs_dir=specs))


def test_a_regressor_for_a_0_1_target_fails_at_load_naming_file_and_field(nightjar_env, tmp_path):
    spec = _loan_spec()
    spec["estimator"] = {"class": "sklearn.ensemble.HistGradientBoostingRegressor", "params": {"max_iter": 50}}
    with pytest.raises(SpecError) as raised:
        _load_with(nightjar_env, tmp_path, spec)
    message = str(raised.value)
    assert "mine.yaml" in message and "field 'estimator.class'" in message
    assert "HistGradientBoostingRegressor' is a regressor" in message and "'defaulted'" in message


def test_a_classifier_without_predict_proba_and_params_it_does_not_take_fail_at_load(tmp_path):
    spec = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")

    def named(class_path: str, params: dict):
        return spec.model_copy(
            update={"estimator": spec.estimator.model_copy(update={"class_path": class_path, "params": params})}
        )

    with pytest.raises(
        SpecError,
        match=r"s\.yaml: field 'estimator\.class': 'sklearn\.svm\.LinearSVC' is a classifier without predict_proba",
    ):
        check_estimator(named("sklearn.svm.LinearSVC", {}), "s.yaml", tmp_path)
    with pytest.raises(
        SpecError, match=r"s\.yaml: field 'estimator\.params': do not fit sklearn\.linear_model\.LogisticRegression"
    ):
        check_estimator(named("sklearn.linear_model.LogisticRegression", {"trees": 3}), "s.yaml", tmp_path)
    with pytest.raises(SpecError, match=r"field 'estimator\.class': module 'sklearn\.linear_model' has no 'Nope'"):
        check_estimator(named("sklearn.linear_model.Nope", {}), "s.yaml", tmp_path)
    check_estimator(named("sklearn.linear_model.LogisticRegression", {"C": 0.5}), "s.yaml", tmp_path)  # fine


def test_the_answer_is_cached_per_class_params_and_installed_package(tmp_path):
    first = estimator_kind("sklearn.linear_model.LogisticRegression", {"C": 1.0}, tmp_path)
    assert (first.kind, first.predict_proba, first.error) == ("classifier", True, None)
    cached = json.loads((tmp_path / CACHE_FILE).read_text())
    assert len(cached) == 1 and list(cached.values())[0]["kind"] == "classifier"
    # Other params are another entry (they can decide whether the class builds).
    assert estimator_kind("sklearn.linear_model.LogisticRegression", {"C": 2.0}, tmp_path).kind == "classifier"
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 2
    # A damaged cache is rebuilt, never trusted.
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert estimator_kind("sklearn.linear_model.Ridge", {}, tmp_path).kind == "regressor"
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 1


def test_definitions_load_imports_scikit_learn_only_when_the_cache_has_no_answer(tmp_path):
    """The first load after a spec or package change inspects the estimator (importing scikit-learn); every later
    load, in any process, reads the answer."""
    import os

    env = {**os.environ, "NIGHTJAR_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path)}
    code = "import definitions, sys; print('sklearn' in sys.modules)"
    loads = [
        subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [load.returncode for load in loads] == [0, 0], loads[0].stderr[-2000:]
    assert [load.stdout.strip().splitlines()[-1] for load in loads] == ["True", "False"]
    assert (tmp_path / "data" / "cache" / CACHE_FILE).is_file()


def test_a_target_declared_as_a_non_integer_type_fails_at_load(nightjar_env, tmp_path):
    spec = _loan_spec()
    spec["features"]["numeric"].remove("annual_income")
    spec["fairness"]["segments"] = ["state"]
    spec["target"] = "annual_income"  # a double in fct_labeled_applications' YAML
    with pytest.raises(SpecError) as raised:
        _load_with(nightjar_env, tmp_path, spec)
    message = str(raised.value)
    assert "mine.yaml: field 'target': 'annual_income' is declared data_type" in message
    assert "fct_labeled_applications" in message and "integer or boolean" in message


def test_a_target_whose_accepted_values_are_not_0_1_fails_at_load():
    spec = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")
    mart, model_id = spec.training_mart, f"model.p.{spec.training_mart}"

    def manifest(values: list, data_type: str | None = "integer") -> dict:
        test = {
            "resource_type": "test",
            "attached_node": model_id,
            "column_name": spec.target,
            "test_metadata": {"name": "accepted_values", "kwargs": {"values": values}},
        }
        model = {"resource_type": "model", "name": mart, "columns": {spec.target: {"data_type": data_type}}}
        return {"nodes": {model_id: model, "test.p.t": test}}

    with pytest.raises(
        SpecError, match=r"s\.yaml: field 'target': 'defaulted' .* accepts values \['0', '1', '2'\].*2 is not one"
    ):
        check_declared_target(spec, "s.yaml", manifest([0, 1, 2]))
    check_declared_target(spec, "s.yaml", manifest([0, 1]))
    check_declared_target(spec, "s.yaml", manifest([True, False], "boolean"))
    check_declared_target(spec, "s.yaml", manifest([0, 1], None))  # no declared type: nothing to check
    with pytest.raises(SpecError, match=r"declared data_type 'varchar'"):
        check_declared_target(spec, "s.yaml", manifest([], "varchar"))


# --- task: each kind of model, checked against its estimator, target and task-bound fields at load ---------------

EXAMPLES = PROJECT_ROOT / "model_specs" / "examples"


def _example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def test_the_shipped_regression_and_multiclass_examples_load(nightjar_env, tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLES, specs)
    from definitions import build_definitions

    defs = build_definitions(dataclasses.replace(nightjar_env, model_specs_dir=specs))
    for model in ("interest_rate_pricing", "loan_purpose"):
        assert defs.resolve_job_def(f"train_{model}") is not None
    regression = load_spec(EXAMPLES / "interest_rate.yaml")
    assert (regression.task, regression.evaluation.primary_metric) == ("regression", "rmse")
    multiclass = load_spec(EXAMPLES / "loan_purpose.yaml")
    assert (multiclass.task, multiclass.decision_bands, multiclass.class_decisions) == (
        "multiclass",
        None,
        {"small_business": "business_desk"},
    )


@pytest.mark.parametrize(
    ("example", "estimator", "message"),
    [
        (
            "interest_rate.yaml",
            "sklearn.ensemble.HistGradientBoostingClassifier",
            r"field 'estimator\.class': 'sklearn\.ensemble\.HistGradientBoostingClassifier' is a classifier; task "
            r"regression predicts the number 'interest_rate', which needs a scikit-learn regressor",
        ),
        (
            "loan_purpose.yaml",
            "sklearn.linear_model.Ridge",
            r"field 'estimator\.class': 'sklearn\.linear_model\.Ridge' is a regressor; the spec's target 'purpose' is "
            r"one of several classes \(task multiclass\)",
        ),
    ],
)
def test_an_estimator_that_does_not_fit_the_task_fails_at_load(nightjar_env, tmp_path, example, estimator, message):
    spec = _example(example)
    spec["estimator"] = {"class": estimator, "params": {}}
    with pytest.raises(SpecError, match=r"mine\.yaml: " + message):
        _load_with(nightjar_env, tmp_path, spec)


def test_a_regression_target_declared_as_text_fails_at_load(nightjar_env, tmp_path):
    spec = _example("interest_rate.yaml")
    spec["target"] = "purpose"  # documented in the labeled mart, as a varchar
    spec["evaluation"]["segments"] = []
    spec.pop("fairness")
    with pytest.raises(
        SpecError,
        match=r"mine\.yaml: field 'target': 'purpose' is declared data_type 'varchar'.*"
        r"task regression predicts a number",
    ):
        _load_with(nightjar_env, tmp_path, spec)


@pytest.mark.parametrize(
    ("example", "change", "message"),
    [
        (
            "interest_rate.yaml",
            {"task": "binary"},
            r"field 'decision_bands': .*band 0 \('prime'\): below 10\.0 is not in",
        ),
        (
            "loan_purpose.yaml",
            {"decision_bands": [{"name": "a", "below": 0.5}, {"name": "b"}]},
            "not for task multiclass",
        ),
        ("interest_rate.yaml", {"class_decisions": {"x": "y"}}, "class_decisions: only for task multiclass"),
        (
            "interest_rate.yaml",
            {"monitoring": {"auc_drop": {"warn": 0.1, "error": 0.2}}},
            "monitoring.auc_drop: applies to task binary",
        ),
        (
            "loan_purpose.yaml",
            {"monitoring": {"rmse": {"warn": 2, "error": 3}}},
            "monitoring.rmse: applies to task regression",
        ),
        (
            "interest_rate.yaml",
            {"evaluation": {"primary_metric": "roc_auc", "metrics": ["roc_auc"]}},
            r"evaluation\.metrics \['roc_auc'\] do not apply to task regression",
        ),
        (
            "loan_purpose.yaml",
            {"fairness": {"segments": ["channel"], "max_auc_gap": 0.2}},
            "fairness.*max_auc_gap: applies to task binary",
        ),
        (
            "interest_rate.yaml",
            {"task": "ranking"},
            r"field 'task': Input should be 'binary', 'regression' or 'multiclass'",
        ),
    ],
)
def test_fields_that_do_not_fit_the_task_name_the_field(tmp_path, example, change, message):
    spec = _example(example)
    spec.update(change)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=message):
        load_spec(path)
