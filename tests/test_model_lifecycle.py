"""The model lifecycle end to end on real dbt, DuckDB and MLflow (SQLite store in a temp dir): training
registers versions, the gate judges them, the champion asset decides what serves (by itself or for people who
promote and roll back, with an audit trail), and scoring always says which version made each prediction.

History is ingested once for the module (raw + dbt), and both models trained once on it (version 1 of each, the
champion); each test copies the stores it starts from (the ingested warehouse and an empty MLflow store, or the
trained warehouse, MLflow store and artifacts), so every test owns what it changes and passes alone
(``pytest -k <name>``)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resources.build import open_warehouse
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.settings import MODEL_SPECS_DIR
from tests.chain import run_days, scalar
from tests.stores import TEST_ROWS_PER_DAY, move_store_paths, point_stores_at

pytestmark = pytest.mark.slow

MODEL = "loan_default_risk"
SECOND_MODEL = "loan_default_logreg"
# The second model decides with bands of its own (four, no review queue): decisions are the spec's names.
SECOND_BANDS = [
    {"name": "very_low", "below": 0.05},
    {"name": "low", "below": 0.1},
    {"name": "high", "below": 0.3},
    {"name": "very_high"},
]
HISTORY = (date(2026, 1, 1), date(2026, 2, 9))
SCORED_DAY = date(2026, 2, 10)


def _write_specs(directory: Path, weak: bool = False) -> None:
    """The shipped spec, plus a second model on the same marts (another estimator, its own decision bands and no
    review band) added with no code change.
    ``weak`` retrains the shipped model on three uninformative features: a challenger clearly worse than the
    champion, yet above a lowered floor, so it is the champion comparison that refuses it."""
    directory.mkdir(exist_ok=True)
    shipped = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    if weak:
        shipped["features"] = {"numeric": ["age"], "categorical": ["state", "channel"]}
        shipped["evaluation"]["segments"] = ["state"]
        shipped["promotion"]["min_primary"] = 0.3
    (directory / "loan_default.yaml").write_text(yaml.safe_dump(shipped))
    second = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    second["name"] = SECOND_MODEL
    second["estimator"] = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500, "C": 0.5}}
    second["decision_bands"] = SECOND_BANDS
    second.pop("review_band")
    (directory / "loan_default_logreg.yaml").write_text(yaml.safe_dump(second))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """History ingested once for the module: the data folder (the warehouse) each test copies."""
    root = tmp_path_factory.mktemp("history")
    specs = root / "specs"
    _write_specs(specs)
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_stores_at(root, monkeypatch, NIGHTJAR_MODEL_SPECS_DIR=str(specs))
        from definitions import build_definitions

        assert run_days(build_definitions(settings), "ingest", *HISTORY).success
    return root / "data"


@pytest.fixture(scope="module")
def trained(history, empty_mlflow_db, tmp_path_factory) -> Path:
    """Both models trained once for the module on a copy of the history (version 1 of each, the champion): the
    folder (warehouse, MLflow store, artifacts) each test that starts from trained models copies."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = _stores(root, history, empty_mlflow_db, monkeypatch)
        from definitions import build_definitions

        defs = build_definitions(settings)
        assert _train(defs).success and _train(defs, SECOND_MODEL).success
    return root


def _stores(root: Path, data: Path, mlflow_db: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings for stores under ``root`` that start as a copy of the warehouse folder ``data`` and the MLflow
    SQLite store ``mlflow_db``, with both models' specs."""
    specs = root / "specs"
    _write_specs(specs)
    shutil.copytree(data, root / "data")
    settings = point_stores_at(root, monkeypatch, NIGHTJAR_MODEL_SPECS_DIR=str(specs))
    shutil.copy(mlflow_db, settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    return settings


def _lifecycle(settings) -> dict:
    from definitions import build_definitions

    specs = Path(settings.model_specs_dir)
    return {"settings": settings, "defs": build_definitions(settings), "specs": specs, "build": build_definitions}


@pytest.fixture
def lifecycle(history, empty_mlflow_db, tmp_path, monkeypatch):
    """This test's own stores: a copy of the ingested history, an empty MLflow store, both models' specs."""
    return _lifecycle(_stores(tmp_path, history, empty_mlflow_db, monkeypatch))


@pytest.fixture
def trained_lifecycle(trained, tmp_path, monkeypatch):
    """This test's own stores with both models trained (version 1 of each, the champion): a copy of the module's
    trained warehouse, MLflow store and artifacts, the store's paths moved to this test's folder so that nothing it
    writes or reads is another test's."""
    shutil.copytree(trained / "mlartifacts", tmp_path / "mlartifacts")
    mlflow_db = tmp_path / "trained_mlflow.db"
    shutil.copy(trained / "mlflow.db", mlflow_db)
    move_store_paths(mlflow_db, str(trained), str(tmp_path))
    return _lifecycle(_stores(tmp_path, trained / "data", mlflow_db, monkeypatch))


def _train(defs: dg.Definitions, model: str = MODEL, **kwargs) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(f"train_{model}").execute_in_process(**kwargs)


def _train_weak(lifecycle) -> tuple[dg.Definitions, dg.ExecuteInProcessResult]:
    """Version 2, on three uninformative features: refused by the gate's comparison with the champion."""
    _write_specs(lifecycle["specs"], weak=True)
    weak_defs = lifecycle["build"](lifecycle["settings"])
    return weak_defs, _train(weak_defs, raise_on_error=False)


def _registry(settings) -> ModelRegistry:
    return ModelRegistry(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root)


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(
        str(event.event_specific_data) for event in result.all_events if event.event_type_value == "STEP_FAILURE"
    )


def _predictions(settings, day: date):
    from resources.build import open_warehouse

    return open_warehouse(settings).query(
        f"SELECT application_id, score, decision, model_name, model_version FROM predictions.{MODEL} "
        f"WHERE application_date = DATE '{day.isoformat()}' ORDER BY application_id"
    )


def test_scoring_without_a_champion_fails_with_a_named_error(lifecycle):
    result = run_days(lifecycle["defs"], "nightly", SCORED_DAY, SCORED_DAY, raise_on_error=False)
    assert not result.success
    assert f"model '{MODEL}' has no 'champion' version" in _failure_text(result)


def test_first_version_is_registered_with_its_lineage_and_becomes_champion(lifecycle):
    import mlflow

    settings, defs = lifecycle["settings"], lifecycle["defs"]
    result = _train(defs)
    assert result.success
    gate = [c for c in result.get_asset_check_evaluations() if c.check_name == "champion_challenger_gate"]
    assert len(gate) == 1 and gate[0].passed
    # The training run ends with the serving decision: its champion asset says which version serves, and why.
    [decision] = result.asset_materializations_for_node(f"{MODEL}__champion")
    assert decision.metadata["champion_version"].value == 1 and decision.metadata["decision"].value == "promoted"
    assert decision.metadata["reason"].value.startswith("first version to clear the floor")

    registry = _registry(settings)
    champion = registry.by_alias(MODEL, CHAMPION)
    assert champion is not None and champion.version == 1
    assert registry.by_alias(MODEL, CHALLENGER) is None

    run = registry.client().get_run(champion.run_id)
    assert run.data.tags["dagster_run_id"] == result.run_id
    # The MLflow run reads as what it is: a name of its own, a description linking its Dagster run, in an experiment
    # that MLflow 3 opens as classic ML (model training).
    assert run.info.run_name.startswith(f"{MODEL}-") and run.info.run_name.endswith(
        run.data.tags["training.fingerprint"][:8]
    )
    assert f"({settings.dagster_url}/runs/{result.run_id})" in run.data.tags["mlflow.note.content"]
    experiment = registry.client().get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.tags["dagster_asset_key"] == f"{MODEL}/model"
    assert run.data.params["estimator.class"].endswith(".HistGradientBoostingClassifier")
    assert 0.6 < run.data.metrics["roc_auc"] < 0.95
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert "fct_labeled_applications" in inputs
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    artifacts = {a.path for a in registry.client().list_artifacts(champion.run_id)}
    assert {"plots", "reference"} <= artifacts

    audit = scalar(
        settings,
        f"SELECT count(*) FROM audit.model_alias_changes WHERE model_name = '{MODEL}' AND alias = 'champion' AND to_version = 1",
    )
    assert audit == 1


def test_predictions_carry_the_champion_version_and_rescoring_is_identical(trained_lifecycle):
    lifecycle = trained_lifecycle  # both models trained: version 1 of each is the champion
    settings, defs = lifecycle["settings"], lifecycle["defs"]

    first = run_days(defs, "nightly", SCORED_DAY, SCORED_DAY)
    assert first.success
    scored = _predictions(settings, SCORED_DAY)
    assert (
        len(scored)
        == TEST_ROWS_PER_DAY
        == scalar(
            settings,
            f"SELECT count(*) FROM marts.fct_application_features WHERE application_date = DATE '{SCORED_DAY}'",
        )
    )
    assert set(scored["model_version"]) == {1}
    assert set(scored["decision"]) <= {"approve", "review", "decline"}  # the shipped spec's band names
    in_review = (scored["decision"] == "review").sum()  # its review_band
    assert scalar(settings, f"SELECT count(*) FROM predictions.{MODEL}_review_queue") == in_review
    meta = first.asset_materializations_for_node(f"{MODEL}__predictions")[0].metadata
    mix = {k: v.value for k, v in meta.items() if k.startswith("decisions_")}
    assert set(mix) == {"decisions_approve", "decisions_review", "decisions_decline"}
    assert sum(mix.values()) == TEST_ROWS_PER_DAY and meta["review_queue_rows"].value == in_review
    # The second spec's model scored the same day with no code change, into its own bands and no review queue.
    assert scalar(settings, f"SELECT count(*) FROM predictions.{SECOND_MODEL}") == TEST_ROWS_PER_DAY
    second_decisions = open_warehouse(settings).query(f"SELECT decision, score FROM predictions.{SECOND_MODEL}")
    assert set(second_decisions["decision"]) <= {b["name"] for b in SECOND_BANDS}
    assert len(set(second_decisions["decision"])) >= 2
    assert (second_decisions.loc[second_decisions["decision"] == "very_low", "score"] < 0.05).all()
    assert (second_decisions.loc[second_decisions["decision"] == "very_high", "score"] >= 0.3).all()
    assert scalar(settings, f"SELECT count(*) FROM predictions.{SECOND_MODEL}_review_queue") == 0
    second_meta = first.asset_materializations_for_node(f"{SECOND_MODEL}__predictions")[0].metadata
    assert {k for k in second_meta if k.startswith("decisions_")} == {f"decisions_{b['name']}" for b in SECOND_BANDS}
    assert second_meta["review_queue_rows"].value == 0

    assert run_days(defs, "nightly", SCORED_DAY, SCORED_DAY).success
    again = _predictions(settings, SCORED_DAY)
    assert again.equals(scored)


def test_worse_challenger_is_refused_forced_promotion_and_rollback_are_audited(trained_lifecycle):
    lifecycle = trained_lifecycle  # both models trained (nightly scores both): version 1 of each is the champion
    settings = lifecycle["settings"]
    weak_defs, result = _train_weak(lifecycle)
    gate = [c for c in result.get_asset_check_evaluations() if c.check_name == "champion_challenger_gate"][0]
    assert not gate.passed
    assert "trails the champion" in gate.description
    assert result.asset_materializations_for_node(f"{MODEL}__champion") == []  # the blocking gate stopped it

    registry = _registry(settings)
    assert registry.by_alias(MODEL, CHAMPION).version == 1
    assert registry.by_alias(MODEL, CHALLENGER).version == 2

    # While version 2 waits as challenger, it scores in shadow; decisions still come from the champion.
    nightly = run_days(weak_defs, "nightly", SCORED_DAY, SCORED_DAY)
    assert set(_predictions(settings, SCORED_DAY)["model_version"]) == {1}
    assert scalar(settings, f"SELECT count(*) FROM predictions.{MODEL}_shadow") == TEST_ROWS_PER_DAY
    meta = nightly.asset_materializations_for_node(f"{MODEL}__predictions")[0].metadata
    assert 0.0 <= meta["champion_challenger_agreement"].value <= 1.0

    promote = weak_defs.resolve_job_def(f"promote_{MODEL}")
    refused = promote.execute_in_process(run_config={"version": 2, "requested_by": "ana"}, raise_on_error=False)
    assert not refused.success
    assert "cannot be promoted" in _failure_text(refused)
    assert registry.by_alias(MODEL, CHAMPION).version == 1

    forced = promote.execute_in_process(
        run_config={"version": 2, "requested_by": "ana", "force": True, "reason": "incident drill"}
    )
    assert forced.success
    [decision] = forced.asset_materializations_for_node(f"{MODEL}__champion")
    assert (decision.metadata["champion_version"].value, decision.metadata["requested_by"].value) == (2, "ana")
    assert registry.by_alias(MODEL, CHAMPION).version == 2

    rollback_job = weak_defs.resolve_job_def(f"rollback_{MODEL}")
    rollback_config = {"reason": "drill over", "requested_by": "ana"}
    assert rollback_job.execute_in_process(run_config=rollback_config).success
    assert registry.by_alias(MODEL, CHAMPION).version == 1
    # A second rollback must not bounce back to the version just rolled away from.
    again = rollback_job.execute_in_process(run_config=rollback_config, raise_on_error=False)
    assert not again.success and "nothing to roll back to" in _failure_text(again)
    same = promote.execute_in_process(run_config={"version": 1, "requested_by": "ana"}, raise_on_error=False)
    assert not same.success and "already the champion" in _failure_text(same)
    assert registry.by_alias(MODEL, CHAMPION).version == 1

    from resources.build import open_warehouse

    audit = open_warehouse(settings).query(
        f"SELECT from_version, to_version, actor, forced, reason FROM audit.model_alias_changes "
        f"WHERE model_name = '{MODEL}' AND alias = 'champion' ORDER BY changed_at"
    )
    versions = audit[["from_version", "to_version"]]
    assert versions.astype(object).where(versions.notna(), None).values.tolist() == [[None, 1], [1, 2], [2, 1]]
    assert audit["actor"].tolist()[1:] == ["ana", "ana"]
    assert audit["forced"].tolist() == [False, True, False]
    challenger_moves = scalar(
        settings,
        f"SELECT count(*) FROM audit.model_alias_changes WHERE model_name = '{MODEL}' AND alias = 'challenger'",
    )
    assert challenger_moves >= 1  # the history holds challenger moves too
    # MLflow shows the present only: who serves now, since when, by whom and why; the same few keys after three moves.
    state = registry.client().get_registered_model(MODEL).tags
    assert set(state) == {"champion.version", "champion.since", "champion.by", "champion.why", "alias_history"}
    assert (state["champion.version"], state["champion.by"]) == ("1", "ana")
    assert state["champion.why"] == "rolled back from version 2: drill over"


def test_an_alias_set_by_hand_in_mlflow_is_used_by_the_next_scoring_run(trained_lifecycle):
    lifecycle = trained_lifecycle  # both models trained (nightly scores both): version 1 of each is the champion
    settings, defs = lifecycle["settings"], lifecycle["defs"]
    assert run_days(defs, "nightly", SCORED_DAY, SCORED_DAY).success  # decided by version 1
    _train_weak(lifecycle)  # version 2, a challenger the gate refused
    registry = _registry(settings)
    assert (registry.by_alias(MODEL, CHAMPION).version, registry.by_alias(MODEL, CHALLENGER).version) == (1, 2)
    registry.client().set_registered_model_alias(MODEL, CHAMPION, "2")
    next_day = SCORED_DAY + timedelta(days=1)
    assert run_days(defs, "nightly", next_day, next_day).success
    assert set(_predictions(settings, next_day)["model_version"]) == {2}

    # A day another version already decided is not silently re-decided by the new champion (the nightly job's
    # scoring step, re-run for that day: its raw and dbt steps were run above)...
    scoring = [dg.AssetKey([MODEL, "predictions"])]
    refused = run_days(defs, "nightly", SCORED_DAY, SCORED_DAY, asset_selection=scoring, raise_on_error=False)
    assert not refused.success and "rescore: true" in _failure_text(refused)
    assert set(_predictions(settings, SCORED_DAY)["model_version"]) == {1}
    # ...unless someone asks for it.
    rescored = defs.resolve_job_def("nightly").execute_in_process(
        partition_key=SCORED_DAY.isoformat(),
        asset_selection=scoring,
        run_config={"ops": {f"{MODEL}__predictions": {"config": {"rescore": True}}}},
    )
    assert rescored.success
    assert set(_predictions(settings, SCORED_DAY)["model_version"]) == {2}


def test_a_range_run_records_each_days_own_figures_on_its_partition(trained_lifecycle):
    """A 3-day nightly run: every partition of the raw tables and of the predictions carries that day's own row
    count and decision counts, read back through the instance as the UI reads them (not the run's totals)."""
    settings, defs = trained_lifecycle["settings"], trained_lifecycle["defs"]
    days = [SCORED_DAY + timedelta(days=n) for n in range(3)]
    with dg.DagsterInstance.get() as instance:  # the test's own home (DAGSTER_HOME under its folder)
        assert run_days(defs, "nightly", days[0], days[-1], instance=instance).success

        def figures(key: list[str]) -> dict[str, dict]:
            records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(key)), limit=10)
            return {
                r.asset_materialization.partition: {k: v.value for k, v in r.asset_materialization.metadata.items()}
                for r in records.records
            }

        raw = figures(["raw", "applications"])
        assert set(raw) == {d.isoformat() for d in days}
        assert all(meta["dagster/row_count"] == TEST_ROWS_PER_DAY for meta in raw.values())
        scored = figures([MODEL, "predictions"])
        assert set(scored) == {d.isoformat() for d in days}
        for day in days:
            meta = scored[day.isoformat()]
            counts = open_warehouse(settings).query(
                f"SELECT decision, count(*) AS n FROM predictions.{MODEL} WHERE application_date = DATE '{day}' "
                "GROUP BY decision"
            )
            assert meta["dagster/row_count"] == TEST_ROWS_PER_DAY == int(counts["n"].sum())
            assert {f"decisions_{d}": int(n) for d, n in zip(counts["decision"], counts["n"], strict=True)}.items() <= (
                meta.items()
            )
            assert meta["review_queue_rows"] == meta.get("decisions_review", 0)
