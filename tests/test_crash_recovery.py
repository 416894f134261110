"""A run killed with kill -9 while it holds the `warehouse` slot heals without a person.

The kill leaves the run STARTED and its slot claimed, which blocks every later warehouse step for ever. The
reaper (`resources.instance.reap_dead_runs`, run by the `run_reaper_sensor` under the daemon and by `make run`
through `prepare_instance`) sees that the run's process is gone, fails the run and frees its slot; the next run
completes and leaves the same tables as a clean run. Every wait polls the instance; nothing sleeps a fixed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from jobs.run_reaper import run_reaper_sensor
from resources.instance import _process_alive, prepare_instance, reap_dead_runs
from resources.warehouse import WAREHOUSE_POOL
from tests.chain import RANGE_END, RANGE_START, scalar
from tests.run_launch import launch_job, poll_run, slot_holders
from tests.stores import TEST_ROWS_PER_DAY

DAYS = {RANGE_START: "2026-01-01", RANGE_END: "2026-01-03"}


@pytest.mark.slow
def test_killed_run_is_reaped_and_the_next_run_completes(nightjar_env, instance, tmp_path):
    crashed_log = tmp_path / "crashed.log"
    crashed = launch_job("ingest", DAYS, crashed_log, own_group=True)
    try:
        # The run holds the slot and its step has started: it is inside a warehouse step.
        run_id, step_key = poll_run(
            "claimed warehouse slot",
            lambda: next(iter(slot_holders(instance, WAREHOUSE_POOL)), None),
            crashed,
            crashed_log,
        )
        poll_run(
            f"start of step {step_key}",
            lambda: instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START),
            crashed,
            crashed_log,
        )
        # Alive in another process: the reaper leaves it alone.
        assert reap_dead_runs(instance) == []
        assert slot_holders(instance, WAREHOUSE_POOL) == [(run_id, step_key)]
    finally:
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait(timeout=120)

    # What the issue saw: the run is still STARTED and still holds the slot every later warehouse step needs.
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert slot_holders(instance, WAREHOUSE_POOL) == [(run_id, step_key)]

    # The heal, as the daemon runs it: one sensor evaluation.
    result = run_reaper_sensor(dg.build_sensor_context(instance=instance))
    assert run_id in result.skip_message
    failed = instance.get_run_by_id(run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    assert slot_holders(instance, WAREHOUSE_POOL) == []
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "process of this run is gone" in failure.message and step_key in failure.message
    assert reap_dead_runs(instance) == []  # idempotent

    rerun_log = tmp_path / "rerun.log"
    rerun = launch_job("ingest", DAYS, rerun_log, own_group=True)
    assert rerun.wait(timeout=1200) == 0, rerun_log.read_text()[-4000:]
    latest = instance.get_runs(limit=1)[0]
    assert latest.run_id != run_id and latest.status == dg.DagsterRunStatus.SUCCESS

    # The same tables as a clean run over these days: every row once.
    rows = 3 * TEST_ROWS_PER_DAY
    for table in ("raw.applications", "marts.fct_application_features"):
        assert scalar(nightjar_env, f"SELECT count(*) FROM {table}") == rows, table
        assert scalar(nightjar_env, f"SELECT count(DISTINCT application_id) FROM {table}") == rows, table


def test_prepare_frees_slots_of_runs_that_no_longer_exist(instance):
    storage = instance.event_log_storage
    assert storage.claim_concurrency_slot(WAREHOUSE_POOL, "deleted-run", "raw__applications").is_claimed
    prepare_instance(instance)
    assert slot_holders(instance, WAREHOUSE_POOL) == []
    assert storage.claim_concurrency_slot(WAREHOUSE_POOL, "next-run", "raw__applications").is_claimed


def test_a_reused_pid_is_not_the_run_worker():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert _process_alive(sleeper.pid, time.time() + 5)  # it existed when the event was written
        assert not _process_alive(sleeper.pid, time.time() - 3600)  # started after: a newcomer with an old pid
        sleeper.kill()
        deadline = time.monotonic() + 120
        while _process_alive(sleeper.pid, time.time()) and time.monotonic() < deadline:  # a zombie until waited
            time.sleep(0.1)
        assert not _process_alive(sleeper.pid, time.time())
    finally:
        sleeper.kill()
        sleeper.wait()
