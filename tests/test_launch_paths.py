"""Launches that explain themselves: a daily-partitioned job started without a day is refused at its first step with
a message naming the days to choose from (not Dagster's internal ``CheckError``), in process and from
``dagster job execute``; a refused promotion or rollback leaves its run tagged with who asked for what and why it
was refused, read back through the instance as the runs list shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.ml.champion_assets import ACTION_TAG, REFUSED_TAG, REQUESTED_BY_TAG, VERSION_TAG
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from resources.settings import Settings
from tests.ml_lab import MODEL, refusal
from tests.run_launch import launch_job

# --- partitioned jobs without a partition ---------------------------------------------------------------------------


def _yesterdays() -> set[str]:
    """Yesterday (UTC, the tests' timezone), on both sides of a midnight the test might straddle."""
    today = datetime.now(UTC).date()
    return {(today - timedelta(days=1)).isoformat(), today.isoformat()}


def _says_which_days(message: str, settings: Settings, last_days: set[str]) -> None:
    assert "has no partition" in message
    assert any(f"choose a day (partition) from {settings.start_date} to {day}" in message for day in last_days)
    assert RANGE_START_TAG in message and RANGE_END_TAG in message
    assert "nightly: yesterday" in message
    assert "CheckError" not in message and "Has a PartitionsDefinition" not in message


@pytest.mark.parametrize("job", ["nightly", "ingest", f"monitor_{MODEL}"])
def test_a_partitioned_job_without_a_day_is_refused_saying_which_days_to_choose(
    job: str, defs: dg.Definitions, instance: dg.DagsterInstance, nightjar_env: Settings
):
    last_days = _yesterdays()
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)
    last_days |= _yesterdays()

    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events and "ASSET_MATERIALIZATION" not in events
    failures = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures  # each first step refuses; the steps after them are skipped
    for error in failures:
        raised = error.cause or error
        assert raised.cls_name == "NoPartitionChosen", error.to_string()
        _says_which_days(raised.message, nightjar_env, last_days)
    # The run's own failure, what the runs list shows, says it too.
    [run_failure] = [e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE"]
    assert f"{job} is daily-partitioned and this run has no partition" in run_failure.event_specific_data.error.message


def test_dagster_job_execute_without_a_day_prints_the_days_to_choose(tmp_path: Path, nightjar_env: Settings):
    last_days = _yesterdays()
    log = tmp_path / "ingest.log"
    proc = launch_job("ingest", {}, log)
    assert proc.wait(timeout=600) != 0
    last_days |= _yesterdays()
    output = log.read_text()
    assert "NoPartitionChosen" in output
    _says_which_days(output, nightjar_env, last_days)


# --- refused promotions ---------------------------------------------------------------------------------------------


def _run_tags(lab, result: dg.ExecuteInProcessResult) -> dict[str, str]:
    run = lab.instance.get_run_by_id(result.run_id)
    return {k: v for k, v in run.tags.items() if k.startswith("nightjar/")}


def test_a_refused_promotion_or_rollback_run_carries_who_asked_for_what_and_why_not(lab):
    lab.train()
    refused_by_gate = lab.train({"min_primary": 0.99}, retrain=True)  # no model clears this floor
    assert lab.champion() == 1

    promoted = lab.promote(version=refused_by_gate, requested_by=" ana@example.com ")
    tags = _run_tags(lab, promoted)
    assert tags == {
        REQUESTED_BY_TAG: "ana@example.com",
        VERSION_TAG: str(refused_by_gate),
        ACTION_TAG: "promote",
        REFUSED_TAG: tags[REFUSED_TAG],
    }
    # The tag is the step failure's message, without the exception's class name.
    assert tags[REFUSED_TAG].startswith(f"version {refused_by_gate} of '{MODEL}' cannot be promoted: ")
    assert tags[REFUSED_TAG] in refusal(promoted)

    unknown = lab.promote(version=7, requested_by="bo", reason="typo")
    assert _run_tags(lab, unknown)[VERSION_TAG] == "7"
    assert f"model '{MODEL}' has no version 7" in _run_tags(lab, unknown)[REFUSED_TAG]

    # A rollback names no version; with no earlier champion it is refused, and says so on the run.
    back = lab.rollback(requested_by="cy", reason="bad release")
    tags = _run_tags(lab, back)
    assert tags == {REQUESTED_BY_TAG: "cy", ACTION_TAG: "rollback", REFUSED_TAG: tags[REFUSED_TAG]}
    assert "nothing to roll back to" in tags[REFUSED_TAG] and tags[REFUSED_TAG] in refusal(back)

    # Nobody named: no requested_by tag (an empty one would read as a person), the refusal says what is missing.
    anonymous = lab.promote(version=1, requested_by="  ")
    tags = _run_tags(lab, anonymous)
    assert REQUESTED_BY_TAG not in tags and tags[VERSION_TAG] == "1"
    assert "requested_by is empty" in tags[REFUSED_TAG]
    assert lab.champion() == 1 and lab.audit("promote", "rollback").empty


def test_a_promotion_run_records_its_move_in_words_that_a_retry_reads_back(lab):
    """The runs list shows the move a promotion decided (no JSON); a retry of its step carries out that very move,
    read back from the same tags."""
    import json

    from assets.ml.champion import Decision
    from assets.ml.champion_assets import PLANNED_MOVE_TAG, planned_decision

    lab.train()
    waiting = lab.train({"policy": "manual"}, retrain=True)
    assert lab.champion() == 1 and waiting == 2

    promoted = lab.promote(version=waiting, requested_by="ana@example.com", reason="holds up on two weeks")
    assert promoted.success
    tags = _run_tags(lab, promoted)
    assert tags[PLANNED_MOVE_TAG] == "promote: version 2 serves (was 1)"
    for key, value in tags.items():
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        assert not isinstance(parsed, dict | list), f"{key} holds JSON, not words: {value}"
    run = lab.instance.get_run_by_id(promoted.run_id)
    assert planned_decision(run.tags) == Decision(
        action="promote", serving=2, previous=1, reason="holds up on two weeks", actor="ana@example.com"
    )
    assert lab.champion() == 2
