"""Every model version is judged, and no MLflow run stays RUNNING after its Dagster run ended.

What a training killed mid-step leaves (an MLflow run still RUNNING, a version registered but never judged) is made
here by hand in a real MLflow store (SQLite under tmp_path), tagged with Dagster runs that are over, still in
progress, or unknown to the instance; :func:`assets.ml.recovery.recover` (called by the model step and the gate)
must end and retire exactly what a crash left, and nothing else. The last two tests run the real training job."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest

from assets.ml.promotion import GATE_PASSED_TAG, GATE_REASON_TAG, GATE_RETIRED_TAG
from assets.ml.provenance import DAGSTER_RUN_TAG
from assets.ml.recovery import ENDED_TAG, recover
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from tests.ml_lab import GATE, MART_DAYS, MODEL, MODEL_STEP, Lab

THIS_RUN = "recovering-run"
GATE_STEP = f"{MODEL_STEP}_{GATE}"  # the gate check's step


@pytest.fixture
def registry(tmp_path: Path, empty_mlflow_db: Path) -> ModelRegistry:
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return ModelRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "art").as_uri())


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def dagster_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> str:
    """A run of the training job in ``instance`` with ``status``; its id."""
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name=f"train_{MODEL}", run_id=run_id, status=status))
    return run_id


def running_mlflow_run(registry: ModelRegistry, dagster_run_id: str | None) -> str:
    """An MLflow run of the model's experiment left RUNNING, as a killed training leaves it; its id."""
    tags = {DAGSTER_RUN_TAG: dagster_run_id} if dagster_run_id else {}
    return registry.client().create_run(registry.experiment_id(MODEL), tags=tags).info.run_id


def registered_version(registry: ModelRegistry, dagster_run_id: str | None, **tags: str) -> int:
    """A version registered by a training of ``dagster_run_id`` (tagged as the model asset tags it), on a finished
    run of its own, carrying ``tags``; its number."""
    client = registry.client()
    run = client.create_run(registry.experiment_id(MODEL))
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    version_tags = {**({DAGSTER_RUN_TAG: dagster_run_id} if dagster_run_id else {}), **tags}
    created = client.create_model_version(
        MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=version_tags
    )
    return int(created.version)


def status(registry: ModelRegistry, run_id: str) -> str:
    return registry.client().get_run(run_id).info.status


def test_a_crashed_trainings_run_is_ended_failed_and_its_version_retired(registry, instance):
    missing = str(uuid.uuid4())  # a Dagster run this instance has never seen (or has lost): over
    failed = dagster_run(instance, dg.DagsterRunStatus.FAILURE)
    live = dagster_run(instance, dg.DagsterRunStatus.STARTED)

    crashed_run = running_mlflow_run(registry, missing)
    failed_run = running_mlflow_run(registry, failed)
    live_run = running_mlflow_run(registry, live)
    foreign_run = running_mlflow_run(registry, None)  # someone's own run, no Dagster run behind it

    crashed = registered_version(registry, missing)
    of_failed = registered_version(registry, failed)
    judged = registered_version(registry, failed, **{GATE_PASSED_TAG: "false", GATE_REASON_TAG: "below the floor"})
    in_progress = registered_version(registry, live)
    champion = registered_version(registry, failed)
    challenger = registered_version(registry, failed)
    served_once = registered_version(registry, failed, **{"champion.since": "2026-01-01 00:00:00 UTC"})
    by_hand = registered_version(registry, None)
    kept = registered_version(registry, failed)
    client = registry.client()
    client.set_registered_model_alias(MODEL, CHAMPION, str(champion))
    client.set_registered_model_alias(MODEL, CHALLENGER, str(challenger))
    before = {v.version: v.tags for v in registry.all_versions(MODEL)}

    done = recover(registry, MODEL, instance, by_run_id=THIS_RUN, keep=[kept])

    assert sorted(done.ended_runs) == sorted([crashed_run, failed_run])
    for run_id, why in ((crashed_run, "is not in this Dagster instance"), (failed_run, "ended FAILURE")):
        assert status(registry, run_id) == "FAILED"
        ended = client.get_run(run_id).data.tags[ENDED_TAG]
        assert why in ended and THIS_RUN in ended, ended
    assert status(registry, live_run) == "RUNNING"  # its Dagster run is in progress
    assert status(registry, foreign_run) == "RUNNING"  # not a nightjar training run

    assert done.retired_versions == [crashed, of_failed]
    after = {v.version: v.tags for v in registry.all_versions(MODEL)}
    for version in (crashed, of_failed):
        tags = after[version]
        assert tags[GATE_PASSED_TAG] == "false", tags
        assert tags[GATE_REASON_TAG].startswith("retired without a verdict: its training run (Dagster run ")
        assert THIS_RUN in tags[GATE_RETIRED_TAG]
    assert "is not in this Dagster instance" in after[crashed][GATE_REASON_TAG]
    assert f"Dagster run {failed} ended FAILURE" in after[of_failed][GATE_REASON_TAG]
    for untouched in (judged, in_progress, champion, challenger, served_once, by_hand, kept):
        assert after[untouched] == before[untouched], untouched
    assert len(done.lines) == 4 and all(str(v) in done.summary() for v in (crashed, of_failed))

    # Nothing left to do: a retried step changes nothing more.
    again = recover(registry, MODEL, instance, by_run_id="another-run", keep=[kept])
    assert not again.anything
    assert {v.version: v.tags for v in registry.all_versions(MODEL)} == after


def test_a_retired_version_reads_as_retired_and_needs_force_to_serve(registry, instance):
    from assets.ml.champion import versions_table
    from assets.ml.promotion import PromotionRefused, check_promotion_allowed, gate_verdict
    from assets.ml.spec import load_specs
    from resources.settings import MODEL_SPECS_DIR

    crashed = registered_version(registry, dagster_run(instance, dg.DagsterRunStatus.CANCELED))
    recover(registry, MODEL, instance, by_run_id=THIS_RUN)

    passed, reason = gate_verdict(registry, MODEL, crashed)
    assert passed is False and "ended CANCELED" in reason
    with pytest.raises(PromotionRefused, match="cannot be promoted: retired without a verdict"):
        check_promotion_allowed(registry, MODEL, crashed, force=False, reason="")
    check_promotion_allowed(registry, MODEL, crashed, force=True, reason="checked it by hand")  # a person may
    [spec] = [s for s in load_specs(MODEL_SPECS_DIR).values() if s.name == MODEL]
    row = versions_table(spec, registry.all_versions(MODEL)).splitlines()[2]
    assert row.startswith(f"| {crashed} |  | retired: its training run (Dagster run "), row


def test_a_model_never_trained_has_nothing_to_recover(registry, instance):
    done = recover(registry, MODEL, instance, by_run_id=THIS_RUN)
    assert not done.anything and done.summary() == ""
    assert registry.client().get_experiment_by_name(MODEL) is None  # recovery creates nothing


def _logged(lab: Lab, result: dg.ExecuteInProcessResult, step: str) -> list[str]:
    """The messages ``step`` logged at WARNING in the run."""
    return [
        record.user_message
        for record in lab.instance.all_logs(result.run_id)
        if record.step_key == step and record.level == 30  # logging.WARNING
    ]


def test_the_training_job_ends_a_crashed_run_and_retires_its_version_before_training(lab):
    crashed_run = running_mlflow_run(lab.registry, "killed-training-run")  # not in the lab's instance
    crashed = registered_version(lab.registry, "killed-training-run")

    result = lab.run_training()

    assert result.success
    assert status(lab.registry, crashed_run) == "FAILED"
    assert lab.registry.version(MODEL, crashed).tags[GATE_PASSED_TAG] == "false"
    [materialized] = result.asset_materializations_for_node(MODEL_STEP)
    assert materialized.metadata["model_version"].value == crashed + 1
    recovered = materialized.metadata["recovered"].value
    assert f"version {crashed} of '{MODEL}' retired without a verdict" in recovered and crashed_run in recovered
    logged = " ".join(_logged(lab, result, MODEL_STEP))
    assert "ended as FAILED: Dagster run killed-training-run" in logged and f"version {crashed}" in logged
    assert lab.champion() == crashed + 1  # the new version was judged and serves; the retired one never did
    assert not lab.registry.running_runs(MODEL)


def test_the_gate_retires_a_challenger_left_unjudged_once_a_new_version_takes_its_place(lab):
    # A training killed after making its version the challenger, before the gate judged it.
    first = lab.train()
    unjudged = registered_version(lab.registry, "killed-training-run")
    lab.registry.client().set_registered_model_alias(MODEL, CHALLENGER, str(unjudged))

    lab.write_mart(MART_DAYS + 5)  # new labels: the next training has something new to learn
    result = lab.run_training()

    assert result.success
    [materialized] = result.asset_materializations_for_node(MODEL_STEP)
    assert "recovered" not in materialized.metadata  # it was still the challenger when training began
    newest = int(materialized.metadata["model_version"].value)
    assert newest == unjudged + 1
    tags = lab.registry.version(MODEL, unjudged).tags
    assert tags[GATE_PASSED_TAG] == "false" and tags[GATE_REASON_TAG].startswith("retired without a verdict")
    retired = f"version {unjudged} of '{MODEL}' retired without a verdict"
    assert any(retired in message for message in _logged(lab, result, GATE_STEP))  # by the gate, in this run
    assert GATE_PASSED_TAG in lab.registry.version(MODEL, newest).tags  # the new version was judged
    assert lab.champion() in (first, newest)
