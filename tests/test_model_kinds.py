"""A regression spec and a multi-class spec, written as files only, through the whole lifecycle on real dbt, DuckDB,
MLflow and Evidently: train -> gate -> champion -> predictions -> drift -> quality with delayed labels, then a worse
version refused by the gate on the spec's primary metric, which waits as challenger and scores in shadow.

The shipped examples (``model_specs/examples/``) are copied with a shorter window for test-sized days. The past
window command (``python -m jobs.bootstrap --all-history --train-as-of DAY``) runs once for the module, in this
process; the tests that train more versions copy its stores first, so each owns what it changes.
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from resources.build import open_warehouse
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.settings import PROJECT_ROOT
from tests.chain import run_days
from tests.stores import TEST_LABEL_DELAY_DAYS, TEST_ROWS_PER_DAY, move_store_paths, point_stores_at

pytestmark = pytest.mark.slow

EXAMPLES = PROJECT_ROOT / "model_specs" / "examples"
REGRESSION, MULTICLASS = "interest_rate_pricing", "loan_purpose"
FILES = {REGRESSION: "interest_rate.yaml", MULTICLASS: "loan_purpose.yaml"}
FIRST, LAST = date(2026, 1, 1), date(2026, 2, 16)
TRAIN_AS_OF = date(2026, 2, 10)
SCORED = [TRAIN_AS_OF + timedelta(days=n) for n in range(1, (LAST - TRAIN_AS_OF).days + 1)]
LABELED = [day for day in SCORED if day <= LAST - timedelta(days=TEST_LABEL_DELAY_DAYS)]


def _spec(model: str, **changes) -> dict:
    """The shipped example, with a window that fits the test's days, and ``changes`` on top (section -> fields)."""
    spec = yaml.safe_load((EXAMPLES / FILES[model]).read_text())
    spec["evaluation"].update(window_days=30, holdout_days=7)
    for section, fields in changes.items():
        if isinstance(fields, dict) and isinstance(spec.get(section), dict):
            spec[section].update(fields)
        else:
            spec[section] = fields
    return spec


def _write_specs(directory: Path, **specs: dict) -> None:
    directory.mkdir(exist_ok=True)
    for model in (REGRESSION, MULTICLASS):
        spec = specs.get(model) or _spec(model)
        (directory / FILES[model]).write_text(yaml.safe_dump(spec))


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """Both examples' past window, once, as `python -m jobs.bootstrap --all-history --train-as-of DAY` runs it:
    ingest, train as of TRAIN_AS_OF, score and monitor every later day."""
    root = tmp_path_factory.mktemp("kinds")
    _write_specs(root / "specs")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = _chain_settings(root, monkeypatch)
        from assets.ml.spec import load_specs
        from jobs.backfill import plan_past_window, run_past_window

        specs = list(load_specs(settings.model_specs_dir).values())
        plan = plan_past_window(settings, specs, LAST, all_history=True, train_as_of=TRAIN_AS_OF)
        summary = io.StringIO()  # what `python -m jobs.bootstrap --all-history` prints of each step
        run_past_window(plan, settings, specs, summary)
    (root / "summary.txt").write_text(summary.getvalue())
    return root


@pytest.fixture
def stores(chain, tmp_path, monkeypatch):
    """This test's own copy of the module's stores (warehouse, MLflow store and artifacts, Dagster home)."""
    for name in ("data", "mlartifacts", "dagster_home", "specs"):
        shutil.copytree(chain / name, tmp_path / name)
    shutil.copy(chain / "mlflow.db", tmp_path / "mlflow.db")
    move_store_paths(tmp_path / "mlflow.db", str(chain), str(tmp_path))
    return point_stores_at(
        tmp_path,
        monkeypatch,
        NIGHTJAR_MODEL_SPECS_DIR=str(tmp_path / "specs"),
        NIGHTJAR_START_DATE=FIRST.isoformat(),
        NIGHTJAR_END_DATE=LAST.isoformat(),
    )


def _read(settings, sql: str):
    return open_warehouse(settings).query(sql)


def _registry(settings) -> ModelRegistry:
    return ModelRegistry(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root)


def _chain_settings(chain: Path, monkeypatch):
    return point_stores_at(
        chain,
        monkeypatch,
        NIGHTJAR_MODEL_SPECS_DIR=str(chain / "specs"),
        NIGHTJAR_START_DATE=FIRST.isoformat(),
        NIGHTJAR_END_DATE=LAST.isoformat(),
    )


def _monitored(chain: Path, monkeypatch, model: str) -> tuple[set[str], set[str]]:
    """The partitions of ``model``'s drift and quality assets that were materialized."""
    monkeypatch.setenv("DAGSTER_HOME", str(chain / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        return (
            instance.get_materialized_partitions(dg.AssetKey([model, "drift"])),
            instance.get_materialized_partitions(dg.AssetKey([model, "quality"])),
        )


def test_a_regression_spec_trains_scores_its_predicted_value_and_is_monitored(chain, monkeypatch):
    settings = _chain_settings(chain, monkeypatch)
    registry = _registry(settings)
    champion = registry.by_alias(REGRESSION, CHAMPION)
    assert champion is not None and champion.version == 1
    run = registry.client().get_run(champion.run_id)
    metrics = run.data.metrics
    assert 0.3 < metrics["rmse"] < 2.0 and metrics["mae"] < metrics["rmse"] and metrics["r2"] > 0.6
    assert {"error_p10", "error_p50", "error_p90"} <= set(metrics)

    rows = _read(settings, f"SELECT * FROM predictions.{REGRESSION} ORDER BY application_date, application_id")
    assert sorted(set(rows["application_date"].dt.date)) == SCORED
    assert len(rows) == len(SCORED) * TEST_ROWS_PER_DAY == rows["application_id"].nunique()
    assert {"predicted_class", "class_probabilities"}.isdisjoint(rows.columns)
    # The score is the predicted rate, in the target's range; the decision its band on the spec's bounds.
    actual = _read(settings, "SELECT avg(interest_rate) FROM marts.fct_application_features").iloc[0, 0]
    assert abs(rows["score"].mean() - actual) < 1.0
    bands = np.select([rows["score"] < 10, rows["score"] < 16], ["prime", "near_prime"], "subprime")
    assert (rows["decision"].to_numpy() == bands).all() and set(bands) == {"prime", "near_prime", "subprime"}
    queue = _read(settings, f"SELECT count(*) FROM predictions.{REGRESSION}_review_queue").iloc[0, 0]
    assert queue == (rows["decision"] == "subprime").sum()

    drift, quality = _monitored(chain, monkeypatch, REGRESSION)
    assert drift == {d.isoformat() for d in SCORED} and quality == {d.isoformat() for d in LABELED}
    # Each labeled day judged by its own check (RMSE against the version's holdout), not a classifier's AUC.
    summary = (chain / "summary.txt").read_text()
    assert f"{REGRESSION} quality: checked {len(LABELED)}; rmse " in summary
    assert f"{REGRESSION} drift: checked {len(SCORED)}" in summary and "score_drift" in summary


def test_a_multiclass_spec_scores_its_class_with_every_class_probability(chain, monkeypatch):
    settings = _chain_settings(chain, monkeypatch)
    registry = _registry(settings)
    champion = registry.by_alias(MULTICLASS, CHAMPION)
    assert champion is not None and champion.version == 1
    metrics = registry.client().get_run(champion.run_id).data.metrics
    assert 0 < metrics["log_loss"] < 1.6 and 0 < metrics["macro_f1"] <= metrics["accuracy"] + 1e-9
    assert "recall_debt_consolidation" in metrics

    rows = _read(settings, f"SELECT * FROM predictions.{MULTICLASS}")
    assert len(rows) == len(SCORED) * TEST_ROWS_PER_DAY == rows["application_id"].nunique()
    classes = set(_read(settings, "SELECT DISTINCT purpose FROM marts.fct_labeled_applications")["purpose"])
    assert set(rows["predicted_class"]) <= classes
    probabilities = rows["class_probabilities"].map(json.loads)
    assert all(set(p) == classes and abs(sum(p.values()) - 1) < 1e-6 for p in probabilities)
    best = probabilities.map(lambda p: max(p, key=p.get))
    assert (best == rows["predicted_class"]).all()
    assert np.allclose(rows["score"], probabilities.map(lambda p: max(p.values())))
    # A class the spec maps is written as its decision, the others as themselves.
    expected = rows["predicted_class"].replace({"small_business": "business_desk"})
    assert (rows["decision"] == expected).all()

    # The linear model's reason codes (on by default for it) name what pushed the predicted class up, for the rows
    # of the review decision.
    reviewed = rows[rows["decision"] == "business_desk"]
    assert reviewed["reasons"].notna().all() and rows.loc[rows["decision"] != "business_desk", "reasons"].isna().all()

    drift, quality = _monitored(chain, monkeypatch, MULTICLASS)
    assert drift == {d.isoformat() for d in SCORED} and quality == {d.isoformat() for d in LABELED}
    assert f"{MULTICLASS} quality: checked {len(LABELED)}; macro_f1_drop " in (chain / "summary.txt").read_text()


@pytest.mark.parametrize(
    ("model", "weak"),
    [
        (REGRESSION, {"numeric": ["annual_income"], "categorical": ["channel"]}),
        (MULTICLASS, {"numeric": ["age"], "categorical": ["channel"]}),
    ],
)
def test_a_worse_version_is_refused_by_the_primary_metric_and_scores_in_shadow(stores, model, weak):
    from definitions import build_definitions

    settings, specs = stores, Path(stores.model_specs_dir)
    primary = _spec(model)["evaluation"]["primary_metric"]
    # A version on a few uninformative features, under a floor it clears: the comparison with the champion refuses
    # it, by the primary metric (lower is better for both examples' rmse and log_loss).
    loose = {"min_primary": 100.0}
    _write_specs(specs, **{model: _spec(model, features=weak, promotion=loose, evaluation={"segments": []})})
    weak_spec = yaml.safe_load((specs / FILES[model]).read_text())
    weak_spec.pop("fairness", None)
    (specs / FILES[model]).write_text(yaml.safe_dump(weak_spec))
    result = build_definitions(settings).resolve_job_def(f"train_{model}").execute_in_process(raise_on_error=False)
    [gate] = [c for c in result.get_asset_check_evaluations() if c.check_name == "champion_challenger_gate"]
    assert not gate.passed and "trails the champion" in gate.description and primary in gate.description
    registry = _registry(settings)
    assert registry.by_alias(model, CHAMPION).version == 1 and registry.by_alias(model, CHALLENGER).version == 2

    # While version 2 waits as challenger, it scores in shadow; decisions still come from the champion.
    assert run_days(build_definitions(settings), "nightly", LAST, LAST).success
    served = _read(settings, f"SELECT * FROM predictions.{model} WHERE application_date = DATE '{LAST}'")
    shadow = _read(settings, f"SELECT * FROM predictions.{model}_shadow WHERE application_date = DATE '{LAST}'")
    assert set(served["model_version"]) == {1} and set(shadow["model_version"]) == {2}
    assert len(shadow) == len(served) == TEST_ROWS_PER_DAY
    assert set(shadow["decided_by"]) == {"shadow"}
    assert list(shadow.columns) == list(served.columns)
    assert not np.allclose(shadow.sort_values("application_id")["score"], served.sort_values("application_id")["score"])
