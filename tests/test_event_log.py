"""The embedded event log (nightjar_instance/event_log.py) records a ranged run exactly as Dagster's own SQLite storage does.

A single-run backfill is where batches happen: one output over a range of daily partitions, and the run's planned
materializations. Both instances run the same job; what a user reads afterwards (materialized partitions, each
partition's latest materialization and its metadata, planned events, the asset's history) must be the same.
"""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from nightjar_instance.event_log import BATCH_SIZE_ENV, BatchedSqliteEventLogStorage

REPO = Path(__file__).resolve().parents[1]
DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-02-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[daily_rows])
def daily_summary(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"first": context.partition_keys[0]})


@dg.asset_check(asset=daily_rows, partitions_def=DAYS)
def daily_rows_present(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Planned over the run's range: one planned row per partition (written by the storage's own code)."""
    return dg.AssetCheckResult(passed=True)


def _run_range(home: Path, *, repo_config: bool, monkeypatch) -> dg.DagsterInstance:
    home.mkdir()
    if repo_config:
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    for start, end in (("2025-01-01", "2025-01-20"), ("2025-01-15", "2025-01-31")):  # overlapping: re-run days
        result = dg.materialize(
            [daily_rows, daily_summary, daily_rows_present],
            instance=instance,
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        )
        assert result.success
    return instance


def _what_a_user_reads(instance: dg.DagsterInstance) -> dict:
    seen = {}
    for asset in (daily_rows, daily_summary):
        key = asset.key
        materialized = instance.get_materialized_partitions(key)
        records = instance.fetch_materializations(key, limit=1000).records
        planned = instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key)
        )
        latest = instance.get_latest_materialization_event(key).asset_materialization.partition
        entry = instance.get_asset_records([key])[0].asset_entry  # the asset's row: what the asset pages read first
        last_run = instance.get_run_by_id(entry.last_run_id).tags["dagster/asset_partition_range_start"]
        # oldest first: the last write of each day wins, as the UI shows it
        per_day = {r.partition_key: dict(r.asset_materialization.metadata) for r in reversed(records)}
        seen[key.to_user_string()] = {
            "materialized": sorted(materialized),
            "materializations": len(records),
            "planned": len(planned),
            "latest": latest,
            "entry": (entry.last_materialization.asset_materialization.partition, last_run),
            "per_day": per_day,
        }
    history = instance.event_log_storage.get_asset_check_execution_history(daily_rows_present.check_key, limit=1000)
    runs = {r.run_id: instance.get_run_by_id(r.run_id).tags["dagster/asset_partition_range_start"] for r in history}
    seen["check"] = sorted(
        ((runs[r.run_id], r.partition, r.status.value, r.event.dagster_event_type.value) for r in history), key=str
    )
    return seen


def test_a_ranged_run_reads_the_same_as_with_dagsters_storage(tmp_path, monkeypatch):
    monkeypatch.setenv(BATCH_SIZE_ENV, "1000")  # as the Makefile sets it
    batch_sizes = []
    store_batch = BatchedSqliteEventLogStorage.store_event_batch

    def observed(self, events):
        batch_sizes.append(len(events))
        store_batch(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", observed)
    batched = _run_range(tmp_path / "batched", repo_config=True, monkeypatch=monkeypatch)
    assert isinstance(batched.event_log_storage, BatchedSqliteEventLogStorage)
    batched_view = _what_a_user_reads(batched)
    assert max(batch_sizes) >= 17, f"the ranged runs were not written in batches: {batch_sizes}"

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # Dagster's own path: one event at a time
    plain = _run_range(tmp_path / "plain", repo_config=False, monkeypatch=monkeypatch)
    assert type(plain.event_log_storage).__name__ == "SqliteEventLogStorage"
    plain_view = _what_a_user_reads(plain)

    assert batched_view == plain_view
    rows = batched_view["daily_rows"]
    assert len(rows["materialized"]) == 31 and rows["materializations"] == 20 + 17 and rows["planned"] == 20 + 17
    assert rows["per_day"]["2025-01-16"] == {"days": dg.IntMetadataValue(17)}  # the second run's write
    # the check's planned rows: one per partition of each run (the batched storage writes them itself, serializing
    # the event once: above, they read as Dagster's)
    planned_checks = [row for row in batched_view["check"] if row[3] == "ASSET_CHECK_EVALUATION_PLANNED"]
    assert len(planned_checks) == 20 + 17
    assert {row[1] for row in planned_checks} == set(rows["materialized"])


def test_opening_the_storage_leaves_the_process_environment_alone(tmp_path, monkeypatch):
    """Batching is the environment's choice (the Makefile exports it), never a side effect of opening a home."""
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    before = dict(os.environ)
    BatchedSqliteEventLogStorage(str(tmp_path / "a"))
    assert dict(os.environ) == before


def test_the_makefile_turns_batching_on_for_every_target():
    """What `make run`, `make dev` and `make test` run inherits the batch size (a user's own value wins)."""
    import subprocess

    shown = subprocess.run(
        ["make", "-s", "-C", str(REPO), "--eval", "print-batch: ; @echo $$" + BATCH_SIZE_ENV, "print-batch"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != BATCH_SIZE_ENV},
    )
    assert shown.stdout.strip() == "1000", shown.stdout + shown.stderr


def test_without_a_base_dir_or_dagster_home_the_error_says_what_to_set(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(dg.DagsterInvariantViolationError, match="DAGSTER_HOME is not set"):
        BatchedSqliteEventLogStorage.from_config_value(None, {})


def test_a_batch_that_fails_half_way_is_stored_once_by_dagsters_fallback(tmp_path, monkeypatch):
    """The run shard is written before the index; when the index write fails, Dagster stores each event of the
    batch again, one by one: the batch's run-shard rows must be taken back first, or every event would be twice."""
    monkeypatch.setenv(BATCH_SIZE_ENV, "1000")  # as the Makefile sets it
    index_batch = BatchedSqliteEventLogStorage._index_batch
    failed = []

    def fails_once(self, batched, inserts):
        if not failed:
            failed.append(len(batched))
            raise RuntimeError("database is locked (the index write of a batch failed)")
        index_batch(self, batched, inserts)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_index_batch", fails_once)
    instance = _run_range(tmp_path / "home", repo_config=True, monkeypatch=monkeypatch)
    assert failed and failed[0] >= 2
    view = _what_a_user_reads(instance)
    rows = view["daily_rows"]
    assert rows["materializations"] == 20 + 17 and rows["planned"] == 20 + 17
    for run in instance.get_runs():
        events = [e for e in instance.all_logs(run.run_id) if e.is_dagster_event]
        keys = [
            (e.dagster_event_type, e.dagster_event.asset_key, e.dagster_event.partition, e.timestamp) for e in events
        ]
        assert len(keys) == len(set(keys)), "an event of the failed batch was stored twice in the run's shard"
