"""Warehouse writers never collide on DuckDB's single-writer lock.

- The one-slot `warehouse` pool holds across processes: Dagster's SQLite claim is a select-then-update with no row
  lock, so simultaneous claimers could all get the one slot; the claim guard installed by
  `resources.instance.prepare_instance` makes the claim atomic. Checked on hold intervals, whatever the timing.
- Two overlapping backfill runs on the multiprocess executor, as the UI launches them, both succeed and their
  warehouse steps never overlap in time (read from the event log, not inferred from timing).
- Opening the DuckDB file waits out another process's lock with backoff and then fails naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import PROJECT_ROOT
from resources.warehouse import WAREHOUSE_POOL, DuckDBWarehouse
from tests.chain import RANGE_END, RANGE_START, scalar
from tests.run_launch import launch_job, slot_holders
from tests.stores import TEST_ROWS_PER_DAY

CLAIMERS, CYCLES = 4, 20
MULTIPROCESS = {"NIGHTJAR_EXECUTOR": "multiprocess"}  # as the UI launches a backfill in a deployment

# One claimer process: CYCLES times, claim the warehouse slot (polling), hold it briefly, free it; print the
# intervals during which it certainly held the slot. All start claiming on one "go" line, once all are ready.
_CLAIMER = """
import json, sys, time
import dagster as dg
pool, run_id, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage = dg.DagsterInstance.get().event_log_storage
storage.get_pool_limits()
held = []
print("ready", flush=True)
sys.stdin.readline()
for cycle in range(cycles):
    step = f"step-{cycle}"
    while not storage.claim_concurrency_slot(pool, run_id, step).is_claimed:
        time.sleep(0.005)
    acquired = time.time()
    time.sleep(0.01)
    held.append((acquired, time.time(), run_id))
    storage.free_concurrency_slot_for_step(run_id, step)
print(json.dumps(held))
"""


def test_pool_claims_are_exclusive_across_processes(instance):
    storage = instance.event_log_storage
    assert {p.name: p.limit for p in storage.get_pool_limits()} == {WAREHOUSE_POOL: 1}
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, WAREHOUSE_POOL, f"claimer-{i}", str(CYCLES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(CLAIMERS)
    ]
    for claimer in claimers:  # blocks until that claimer has loaded dagster and opened the instance
        assert claimer.stdout.readline().strip() == "ready", claimer.communicate()[1][-3000:]
    for claimer in claimers:
        claimer.stdin.write("go\n")
        claimer.stdin.flush()
    intervals = []
    for claimer in claimers:
        out, err = claimer.communicate(timeout=600)
        assert claimer.returncode == 0, err[-3000:]
        intervals += [tuple(i) for i in json.loads(out)]
    assert len(intervals) == CLAIMERS * CYCLES
    overlaps = [(a, b) for a, b in combinations(sorted(intervals), 2) if a[2] != b[2] and a[0] < b[1] and b[0] < a[1]]
    assert overlaps == [], f"{len(overlaps)} overlapping holds of the one warehouse slot, e.g. {overlaps[:2]}"
    assert slot_holders(instance, WAREHOUSE_POOL) == []


def test_preparing_a_fresh_home_from_several_processes_at_once(nightjar_env):
    # What `make setup` / `make run` do before any run; two of them at once must not race either.
    home = Path(os.environ["DAGSTER_HOME"])
    assert not (home / "history").exists()
    preparers = [
        subprocess.Popen(
            [sys.executable, "-m", "resources.instance"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in preparers]
    assert [p.returncode for p in preparers] == [0, 0, 0], outputs
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert {p.name: p.limit for p in storage.get_pool_limits()} == {WAREHOUSE_POOL: 1}
        assert storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the DuckDB file until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline(); c.close()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_duckdb_open_waits_for_another_process_lock(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold_lock(path)
    waiting = threading.Event()

    class _Seen(logging.Handler):
        def emit(self, record):
            if "locked by another process" in record.getMessage():
                waiting.set()

    handler = _Seen()
    logging.getLogger("nightjar.warehouse").addHandler(handler)
    outcome: dict = {}

    def query():
        try:
            outcome["value"] = DuckDBWarehouse(path=str(path), lock_wait_seconds=300).query("SELECT 42 AS x")["x"][0]
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    try:
        reader = threading.Thread(target=query)
        reader.start()
        assert waiting.wait(timeout=120), "the open did not report waiting for the lock"
        assert reader.is_alive(), outcome  # still waiting, not failed
        holder.communicate("release\n", timeout=120)
        reader.join(timeout=300)
    finally:
        logging.getLogger("nightjar.warehouse").removeHandler(handler)
        if holder.poll() is None:
            holder.kill()
    assert outcome == {"value": 42}


def test_duckdb_open_gives_up_naming_the_file(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="another process holds its lock") as raised:
            DuckDBWarehouse(path=str(path), lock_wait_seconds=1).query("SELECT 1")
        assert str(path) in str(raised.value)
        assert time.monotonic() - started < 60
    finally:
        holder.communicate("release\n", timeout=120)


def _step_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float, str]]:
    """(start, end, run/step) of every step of the run, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = entry.timestamp
    assert starts.keys() == ends.keys(), (starts, ends)
    return [(starts[k], ends[k], f"{run_id}/{k}") for k in starts]


@pytest.mark.slow
def test_overlapping_multiprocess_backfills_do_not_hit_the_duckdb_lock(nightjar_env, instance, defs, tmp_path):
    # Every step of `ingest` is a warehouse step; if one ever is not, the overlap check below must filter.
    assert {n.definition.pool for n in defs.resolve_job_def("ingest").graph.nodes} == {WAREHOUSE_POOL}
    assert instance.get_runs() == []
    first = launch_job(
        "ingest", {RANGE_START: "2026-01-01", RANGE_END: "2026-01-04"}, tmp_path / "run1.log", env=MULTIPROCESS
    )
    second = launch_job(
        "ingest", {RANGE_START: "2026-01-03", RANGE_END: "2026-01-06"}, tmp_path / "run2.log", env=MULTIPROCESS
    )
    codes = [first.wait(timeout=1200), second.wait(timeout=1200)]
    logs = (tmp_path / "run1.log").read_text() + (tmp_path / "run2.log").read_text()

    assert "Could not set lock" not in logs
    assert codes == [0, 0], logs[-4000:]
    runs = instance.get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
    intervals = [i for run in runs for i in _step_intervals(instance, run.run_id)]
    overlaps = [(a, b) for a, b in combinations(sorted(intervals), 2) if a[0] < b[1] and b[0] < a[1]]
    assert overlaps == [], f"warehouse steps overlapped: {overlaps}"
    assert slot_holders(instance, WAREHOUSE_POOL) == []
    days = 6
    assert scalar(nightjar_env, "SELECT count(*) FROM raw.applications") == days * TEST_ROWS_PER_DAY
    assert scalar(nightjar_env, "SELECT count(*) FROM marts.fct_application_features") == days * TEST_ROWS_PER_DAY
    assert (
        scalar(nightjar_env, "SELECT count(DISTINCT application_id) FROM marts.fct_application_features")
        == days * TEST_ROWS_PER_DAY
    )
