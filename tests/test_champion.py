"""The serving decision as an asset (``<model>/champion``), the gate that only observes, and no churn: on a real
MLflow store (SQLite under tmp_path) and a real warehouse, each test building its own state (tests/ml_lab.py).

- re-running the gate check never changes what serves; only materializing the champion does;
- a retraining on unchanged data registers nothing, and says so;
- a challenger must beat the champion to replace it by itself: a tie keeps the champion;
- a retraining launched by a failed monitoring check needs labels the champion never saw;
- each MLflow training run has a unique name, a description linking its Dagster run, in a classic ML experiment;
- lineage reads model -> champion -> predictions; promote and rollback are jobs of the champion asset, whose
  launchpads describe every field and whose runs go ahead of others.
"""

from __future__ import annotations

import re
from datetime import UTC, date, timedelta

import dagster as dg
import pandas as pd
import pytest

from assets.ml.champion import validated_actor
from assets.ml.champion_assets import ChampionConfig, champion_key
from assets.ml.promotion import GATE_BEATS_TAG, GATE_CHAMPION_TAG, GATE_PASSED_TAG, PromotionRefused
from assets.ml.provenance import FINGERPRINT_TAG, LABEL_LAST_DAY_TAG
from assets.ml.spec import load_spec
from assets.ml.training import content_hash
from assets.ml.training_assets import RETRAIN_REASON_TAG
from resources.registry import EXPERIMENT_KIND_TAG
from tests.dbt_marts import ROWS_PER_DAY
from tests.ml_lab import (
    CHAMPION_STEP,
    GATE,
    MART_DAYS,
    MODEL,
    MODEL_STEP,
    WEAK,
    Lab,
    champion_metadata,
    gate_evaluation,
    refusal,
)

MODEL_KEY = dg.AssetKey([MODEL, "model"])
CHAMPION_KEY = dg.AssetKey([MODEL, "champion"])
PREDICTIONS_KEY = dg.AssetKey([MODEL, "predictions"])
GATE_KEY = dg.AssetCheckKey(MODEL_KEY, GATE)


def _champion_moves(lab: Lab) -> list[list]:
    moves = lab.audit("gate", "promote", "rollback")[["action", "from_version", "to_version"]]
    return moves.astype(object).where(moves.notna(), None).values.tolist()  # no earlier version: NULL


def _run_gate_alone(lab: Lab) -> dg.ExecuteInProcessResult:
    """The gate check and nothing else, as the UI's "Execute" on the check launches it."""
    gate_only = dg.define_asset_job("gate_only", selection=dg.AssetSelection.checks(GATE_KEY))
    defs = dg.Definitions.merge(lab.defs(), dg.Definitions(jobs=[gate_only]))
    return defs.resolve_job_def("gate_only").execute_in_process(instance=lab.instance)


def _materialize_champion(lab: Lab) -> dg.ExecuteInProcessResult:
    """The champion asset alone with its default config (action auto), as "Materialize" on its page does."""
    return (
        lab.defs()
        .resolve_job_def(f"train_{MODEL}")
        .execute_in_process(asset_selection=[CHAMPION_KEY], instance=lab.instance)
    )


# --- the gate observes; the champion asset decides -----------------------------------------------------------------


def test_rerunning_the_gate_check_never_moves_an_alias_only_the_champion_asset_does(lab):
    assert lab.train(**WEAK) == 1 and lab.champion() == 1  # the first version to clear the (lowered) floor
    # The spec's own features: clearly better, but the policy says a person decides.
    waiting = lab.run_training({"policy": "manual"})
    assert waiting.success and gate_evaluation(waiting).passed
    decided = champion_metadata(waiting)
    assert (decided["decision"], decided["champion_version"]) == ("kept", 1)
    assert "policy manual: challenger version 2 passed the gate" in decided["reason"]
    assert (lab.champion(), lab.challenger()) == (1, 2)
    tags = lab.registry.version(MODEL, 2).tags
    assert (tags[GATE_PASSED_TAG], tags[GATE_BEATS_TAG], tags[GATE_CHAMPION_TAG]) == ("true", "true", "1")
    moves = _champion_moves(lab)

    # Even with the policy now auto, the check re-judges version 2 and records it, and nothing else.
    lab.write_spec({"policy": "auto"})
    for _ in range(2):
        again = _run_gate_alone(lab)
        assert [c.check_name for c in again.get_asset_check_evaluations()] == [GATE]
        assert gate_evaluation(again).passed and "beats the champion" in gate_evaluation(again).description
        assert again.get_asset_materialization_events() == []
        assert (lab.champion(), lab.challenger()) == (1, 2) and _champion_moves(lab) == moves

    # Materializing the champion is what decides: version 2 passed the gate, beats the champion, policy auto.
    promoted = _materialize_champion(lab)
    decided = champion_metadata(promoted)
    assert (decided["decision"], decided["champion_version"], decided["previous_version"]) == ("promoted", 2, 1)
    assert "beats the champion by more than min_improvement 0.0" in decided["reason"]
    assert decided["requested_by"] == "gate"
    assert (lab.champion(), lab.challenger()) == (2, None)
    assert _champion_moves(lab) == [*moves, ["gate", 1, 2]]


def test_a_failed_gate_blocks_the_champion_asset_in_the_training_run(lab):
    lab.train()
    refused = lab.run_training({"min_primary": 0.99}, retrain=True)  # no model clears this floor
    assert not refused.success
    assert (
        not gate_evaluation(refused).passed and "does not clear the floor 0.99" in gate_evaluation(refused).description
    )
    assert refused.asset_materializations_for_node(CHAMPION_STEP) == []  # blocked: not even attempted
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in refused.all_events]
    assert (lab.champion(), lab.challenger()) == (1, 2)


# --- no churn --------------------------------------------------------------------------------------------------------


def test_a_retrain_on_unchanged_data_registers_nothing_and_keeps_the_champion(lab):
    assert lab.train() == 1
    first = lab.registry.version(MODEL, 1)

    again = lab.run_training()
    assert again.success
    [model] = again.asset_materializations_for_node(MODEL_STEP)
    assert model.metadata["new_version"].value is False and model.metadata["model_version"].value == 1
    assert model.metadata["unchanged"].value == "same data as champion version 1: nothing new to learn"
    assert model.metadata["training_fingerprint"].value == first.tags[FINGERPRINT_TAG]
    assert lab.registry.versions(MODEL) == {1: ["champion"]}
    assert gate_evaluation(again).passed and gate_evaluation(again).description.startswith(
        "version 1 is the champion: nothing to judge"
    )
    kept = champion_metadata(again)
    assert (kept["decision"], kept["champion_version"], kept["reason"]) == ("kept", 1, "no challenger is waiting")
    assert _champion_moves(lab) == [["gate", None, 1]]

    # Each version records the content hash of what it learned from (rows in any order give the same hash) and
    # its newest label day.
    stored = lab.warehouse.query(f"SELECT * FROM ml.{MODEL}_training_set")
    loaded = load_spec(lab.specs / "loan_default.yaml")
    ordered = stored.sort_values([loaded.timestamp, loaded.entity_id], kind="mergesort")
    assert first.tags["data_hash"] == content_hash(ordered, loaded)
    assert first.tags[LABEL_LAST_DAY_TAG] == str(pd.to_datetime(stored[loaded.label_date]).max().date())

    # What the model learns changed (the estimator's regularization): that is something new, a new version.
    changed = lab.train(estimator={"params": {"max_iter": 500, "C": 0.05}})
    assert changed == 2 and lab.registry.version(MODEL, 2).tags[FINGERPRINT_TAG] != first.tags[FINGERPRINT_TAG]


def test_a_tie_keeps_the_champion(lab):
    assert lab.train() == 1
    tie = lab.run_training(retrain=True)  # the same data and model: the very same metrics
    assert tie.success
    judged = gate_evaluation(tie)
    assert judged.passed  # within tolerance: a person may promote it without force
    assert judged.metadata["improvement"].value == 0.0 and judged.metadata["beats_champion"].value is False
    kept = champion_metadata(tie)
    assert (kept["decision"], kept["champion_version"]) == ("kept", 1)
    assert "challenger version 2 does not beat champion version 1 by more than min_improvement 0.0" in kept["reason"]
    assert (lab.champion(), lab.challenger()) == (1, 2)
    assert _champion_moves(lab) == [["gate", None, 1]]


# --- what MLflow and the champion asset show ------------------------------------------------------------------------


def test_each_training_run_is_named_described_and_linked_to_its_dagster_run(lab):
    first = lab.run_training()
    second = lab.run_training(retrain=True)  # the same data: the same fingerprint, yet a run of its own
    assert first.success and second.success
    client = lab.registry.client()
    experiment = client.get_experiment_by_name(MODEL)
    # MLflow 3 opens a classic ML (model training) experiment on its runs, not on the GenAI view.
    assert experiment.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"

    names = []
    for version, result in ((1, first), (2, second)):
        registered = lab.registry.version(MODEL, version)
        run = client.get_run(registered.run_id)
        name = run.info.run_name
        fingerprint = registered.tags[FINGERPRINT_TAG]
        assert re.fullmatch(rf"{MODEL}-\d{{8}}-\d{{6}}-{fingerprint[:8]}", name), name
        names.append(name)
        # The run's description (Markdown) links the Dagster run that trained it and names the version it became;
        # the run id stays a tag for searches.
        description = run.data.tags["mlflow.note.content"]
        dagster_run = f"{lab.settings.dagster_url}/runs/{result.run_id}"
        assert f"[{result.run_id}]({dagster_run})" in description
        assert f"Registered as **version {version}** of `{MODEL}`" in description
        assert run.data.tags["dagster_run_id"] == result.run_id
        assert name in client.get_model_version(MODEL, str(version)).description
        [model] = result.asset_materializations_for_node(MODEL_STEP)
        assert model.metadata["mlflow_run_name"].value == name
    assert names[0] != names[1]

    # The champion asset lists the versions there are with the gate's verdict: what a person promotes from.
    versions = champion_metadata(second)["versions"]
    rows = [line for line in versions.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert rows[0].startswith("| 2 | challenger | passed: ") and rows[1].startswith("| 1 | champion | ")


# --- retraining launched by drift -----------------------------------------------------------------------------------


def test_a_drift_retraining_needs_labels_the_champion_never_saw(lab):
    launched_by_sensor = {RETRAIN_REASON_TAG: f"{MODEL}/drift:data_drift"}
    assert lab.train() == 1
    last_label = date.fromisoformat(lab.registry.version(MODEL, 1).tags[LABEL_LAST_DAY_TAG])

    refused = lab.run_training(tags=launched_by_sensor)
    message = refusal(refused)
    assert (
        f"no labels newer than the champion's (version 1, last label day {last_label}); "
        f"next labels due on {last_label + timedelta(days=1)}"
    ) in message
    assert f"{MODEL}/drift:data_drift" in message
    assert refused.asset_materializations_for_node(MODEL_STEP) == []
    assert lab.registry.versions(MODEL) == {1: ["champion"]}

    lab.write_mart(MART_DAYS + 1)  # the next day's labels arrive
    trained = lab.run_training(tags=launched_by_sensor)
    assert trained.success
    [training_set] = trained.asset_materializations_for_node(f"{MODEL}__training_set")
    used = {k: v.value for k, v in training_set.metadata.items()}
    assert used["labels_newer_than_champion"] == ROWS_PER_DAY
    assert used["label_last_day"] == (last_label + timedelta(days=1)).isoformat()
    assert f"{ROWS_PER_DAY} of " in used["labels_used"] and f"last label day {last_label}" in used["labels_used"]
    assert lab.registry.version(MODEL, 2).tags[LABEL_LAST_DAY_TAG] == used["label_last_day"]


def test_the_monitoring_sensor_tags_the_training_runs_it_launches():
    from datetime import datetime

    from jobs.checks_cursor import ChecksCursor
    from jobs.retraining import FailedCheck, retrain_decision

    failure = FailedCheck(
        dg.AssetKey([MODEL, "drift"]),
        "data_drift",
        dg.AssetCheckSeverity.ERROR,
        "drifted",
        "2026-03-09",
        "run-1",
        f"monitor_{MODEL}",
    )
    job = dg.define_asset_job(f"train_{MODEL}")
    request, _ = retrain_decision(failure, {MODEL: job}, ChecksCursor(), timedelta(hours=24), datetime.now(UTC), set())
    assert request.tags[RETRAIN_REASON_TAG] == f"{MODEL}/drift:data_drift"


# --- the graph and the jobs ------------------------------------------------------------------------------------------


def test_lineage_reads_model_champion_predictions_and_the_jobs_materialize_the_champion(defs):
    graph = defs.resolve_asset_graph()
    assert graph.get(CHAMPION_KEY).parent_keys == {MODEL_KEY}
    assert CHAMPION_KEY in graph.get(PREDICTIONS_KEY).parent_keys
    assert MODEL_KEY not in graph.get(PREDICTIONS_KEY).parent_keys
    assert graph.get(CHAMPION_KEY).kinds == {"mlflow"} and graph.get(CHAMPION_KEY).group_name == "training"
    assert not graph.get(CHAMPION_KEY).is_partitioned
    assert graph.get_check_spec(GATE_KEY).blocking

    selected = {
        name: defs.resolve_job_def(name).asset_layer.selected_asset_keys
        for name in (f"train_{MODEL}", f"promote_{MODEL}", f"rollback_{MODEL}", "nightly")
    }
    assert selected[f"train_{MODEL}"] == {dg.AssetKey([MODEL, "training_set"]), MODEL_KEY, CHAMPION_KEY}
    assert selected[f"promote_{MODEL}"] == selected[f"rollback_{MODEL}"] == {CHAMPION_KEY}
    assert CHAMPION_KEY not in selected["nightly"]  # scoring reads the alias; it never decides
    # The launchpad asks a person only for what the action needs.
    promote_fields = defs.resolve_job_def(f"promote_{MODEL}").run_config_schema.config_type.fields
    rollback_fields = defs.resolve_job_def(f"rollback_{MODEL}").run_config_schema.config_type.fields
    assert set(promote_fields) == {"version", "requested_by", "reason", "force"}
    assert set(rollback_fields) == {"requested_by", "reason"}
    # Every field the launchpad shows says what it is for, and the promote job says where the versions are listed.
    training_ops = defs.resolve_job_def(f"train_{MODEL}").run_config_schema.config_type.fields["ops"].config_type
    step_fields = {
        step: training_ops.fields[step].config_type.fields["config"].config_type.fields
        for step in (f"{MODEL}__training_set", MODEL_STEP, CHAMPION_STEP)
    }
    launchpads = {"promote": promote_fields, "rollback": rollback_fields, **step_fields}
    undescribed = [
        f"{where}.{name}" for where, fields in launchpads.items() for name, f in fields.items() if not f.description
    ]
    assert undescribed == []
    assert "requested_by" in step_fields[CHAMPION_STEP] and "audit" in promote_fields["requested_by"].description
    assert "`versions` table of the latest materialization of <model>/champion" in promote_fields["version"].description
    assert f"`versions` table of {MODEL}/champion" in defs.resolve_job_def(f"promote_{MODEL}").description
    # Promote and rollback runs go ahead of queued runs and of steps waiting for the warehouse pool.
    for job in (f"promote_{MODEL}", f"rollback_{MODEL}"):
        assert int(defs.resolve_job_def(job).tags["dagster/priority"]) > 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ChampionConfig(version=3), "action auto takes the newest challenger"),
        (ChampionConfig(force=True), "force is only for action promote"),
        (ChampionConfig(action="promote", requested_by="ana"), "version is empty"),
        (ChampionConfig(action="promote", version=2, requested_by=" "), "requested_by is empty"),
        (ChampionConfig(action="promote", version=2, requested_by="ana", force=True), "force: true needs a written"),
        (ChampionConfig(action="rollback", requested_by="ana"), "a rollback needs a written reason"),
        (ChampionConfig(action="rollback", requested_by="ana", reason="bad", version=2), "takes no version"),
    ],
)
def test_champion_config_refusals_say_why(config, message):
    with pytest.raises(PromotionRefused, match=message) as refused:
        validated_actor(config, MODEL)
    assert refused.value.allow_retries is False


def test_champion_config_actors():
    assert validated_actor(ChampionConfig(), MODEL) == "gate"
    assert validated_actor(ChampionConfig(requested_by=" ana "), MODEL) == "ana"
    assert validated_actor(ChampionConfig(action="rollback", requested_by="bo", reason="bad"), MODEL) == "bo"
    assert champion_key(type("Spec", (), {"name": MODEL})()) == CHAMPION_KEY
