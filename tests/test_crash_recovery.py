"""kill -9 anywhere in the chain, then the same command again: it finishes by itself, no daemon, nothing between.

Each case starts a run with ``dagster job execute`` in a process group of its own, waits until the step of interest
has started, kills the group with SIGKILL (dbt's subprocess included), and runs the very same command again. The
killed run held the warehouse's writer lock, an OS lock the kernel freed with it, so the second run never waits
for it; its first warehouse step marks the killed run failed (public run status in the UI). Where the kill lands
inside the step does not matter: the assertions hold wherever it lands (and if the step ended before the kill, the
re-run is simply a re-run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resources.build import open_warehouse
from resources.instance import _process_alive, reap_dead_runs
from resources.warehouse.writer_lock import exclusive_writer, lock_path_for
from tests.chain import RANGE_END, RANGE_START, run_days, scalar
from tests.ml_lab import CHAMPION_STEP, MODEL, MODEL_STEP
from tests.run_launch import launch_job, poll_run
from tests.stores import TEST_ROWS_PER_DAY

DAYS = {RANGE_START: "2026-01-01", RANGE_END: "2026-01-03"}


@dataclass
class Launch:
    job: str
    step: str  # the step to kill inside
    tags: dict
    config: dict | None = None


def _kill_inside(launch: Launch, instance: dg.DagsterInstance, tmp_path: Path, lock: Path | None = None) -> str:
    """Start ``launch``, kill its process group once ``launch.step`` has started; returns the killed run's id.

    ``lock``: the warehouse writer lock, held by the test until the run waits for it, for a run too quick to be
    caught otherwise: it is killed while taking the lock or just after, in the step (its only one)."""
    log = tmp_path / "killed.log"
    held = exclusive_writer(lock, run_id="the test") if lock else nullcontext()
    held.__enter__()
    # Events stored one at a time (Dagster's default; the repo's event log batches asset events): the test polls them.
    unbatched = {"DAGSTER_EVENT_BATCH_SIZE": "0"}
    config = _config_file(launch, tmp_path)
    proc = launch_job(launch.job, launch.tags, log, env=unbatched, own_group=True, config=config)
    try:
        run_id = poll_run(
            "a run record", lambda: next(iter(r.run_id for r in instance.get_runs(limit=1)), None), proc, log
        )
        if lock is None:
            _poll_unless_done(launch.step, lambda: _step_started(instance, run_id, launch.step), proc, log)
        else:
            _poll_unless_done("the writer lock", lambda: _waiting_for_lock(instance, run_id), proc, log)
        assert reap_dead_runs(instance) == []  # alive (or ended by itself): left alone
    finally:
        held.__exit__(None, None, None)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=120)
    return run_id


def _poll_unless_done(what: str, probe, proc: subprocess.Popen, log: Path, timeout: float = 900) -> None:
    """Poll ``probe`` until it finds something or the run's process ends by itself: then the kill finds nothing to
    kill and the re-run is a plain re-run, and every assertion after it holds either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if probe():
            return
        time.sleep(0.2)
    if proc.poll() not in (None, 0):
        pytest.fail(f"the run failed ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")


def _step_started(instance: dg.DagsterInstance, run_id: str, step: str) -> list:
    return [e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START) if e.step_key == step]


def _waiting_for_lock(instance: dg.DagsterInstance, run_id: str) -> list:
    return [e for e in instance.all_logs(run_id) if "waiting for the warehouse writer lock" in (e.user_message or "")]


def _rerun(launch: Launch, instance: dg.DagsterInstance, killed: str, tmp_path: Path) -> None:
    """The same command again: it must finish on its own, and leave the killed run marked failed."""
    log = tmp_path / "rerun.log"
    proc = launch_job(launch.job, launch.tags, log, own_group=True, config=_config_file(launch, tmp_path))
    assert proc.wait(timeout=1800) == 0, log.read_text()[-4000:]
    latest = instance.get_runs(limit=1)[0]
    assert latest.run_id != killed and latest.status == dg.DagsterRunStatus.SUCCESS
    killed_run = instance.get_run_by_id(killed)
    if killed_run.status != dg.DagsterRunStatus.SUCCESS:  # the kill landed before the run's end (almost always)
        assert killed_run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
        assert "process of this run" in failure.message and "is gone" in failure.message
    assert "blocked by limit" not in log.read_text()


def _config_file(launch: Launch, tmp_path: Path) -> Path | None:
    if launch.config is None:
        return None
    path = tmp_path / "run_config.yaml"
    path.write_text(yaml.safe_dump(launch.config))
    return path


def scalar_row(settings, sql: str) -> tuple:
    return tuple(int(v) for v in open_warehouse(settings).query(sql).iloc[0])


def _assert_every_row_once(settings, days: int) -> None:
    rows = days * TEST_ROWS_PER_DAY
    for table in ("raw.applications", "marts.fct_application_features"):
        assert scalar(settings, f"SELECT count(*) FROM {table}") == rows, table
        assert scalar(settings, f"SELECT count(DISTINCT application_id) FROM {table}") == rows, table


@pytest.mark.slow
@pytest.mark.parametrize("step", ["raw__applications", "nightjar_dbt_models"])
def test_kill_in_ingest_then_the_same_command_finishes(step, nightjar_env, instance, tmp_path):
    launch = Launch("ingest", step, DAYS)
    killed = _kill_inside(launch, instance, tmp_path)
    _rerun(launch, instance, killed, tmp_path)
    _assert_every_row_once(nightjar_env, days=3)


@pytest.mark.slow
def test_kill_in_training_then_the_same_command_finishes(lab, tmp_path):
    instance = dg.DagsterInstance.get()
    launch = Launch(f"train_{MODEL}", MODEL_STEP, {})
    killed = _kill_inside(launch, instance, tmp_path)
    _rerun(launch, instance, killed, tmp_path)
    from mlflow import MlflowClient

    client = MlflowClient(lab.settings.mlflow_tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    assert lab.champion() is not None  # the re-run's version went through the gate


@pytest.mark.slow
def test_kill_in_scoring_then_the_same_command_finishes(nightjar_env, instance, defs, tmp_path):
    # A champion trained on the real chain's marts (the shipped spec), then the nightly run of the next day.
    run_days(defs, "ingest", date(2026, 1, 1), date(2026, 1, 30), instance)
    trained = defs.resolve_job_def(f"train_{MODEL}").execute_in_process(instance=instance, raise_on_error=False)
    assert trained.success
    day = "2026-01-31"
    launch = Launch("nightly", f"{MODEL}__predictions", {"dagster/partition": day})
    killed = _kill_inside(launch, instance, tmp_path)
    _rerun(launch, instance, killed, tmp_path)
    counts = scalar_row(
        nightjar_env,
        f"SELECT count(*), count(DISTINCT application_id) FROM predictions.{MODEL} "
        f"WHERE CAST(application_date AS DATE) = DATE '{day}'",
    )
    assert counts == (TEST_ROWS_PER_DAY, TEST_ROWS_PER_DAY)


@pytest.mark.slow
def test_kill_in_promotion_then_the_same_command_finishes(lab, tmp_path):
    first = lab.train()
    second = lab.train(retrain=True, promotion={"policy": "manual"})
    assert lab.champion() == first and second != first
    instance = dg.DagsterInstance.get()
    config = {"version": second, "requested_by": "kill test", "reason": "a crash in the middle"}
    launch = Launch(f"promote_{MODEL}", CHAMPION_STEP, {}, config=config)
    killed = _kill_inside(launch, instance, tmp_path, lock=lock_path_for(lab.settings.warehouse_path))
    _rerun(launch, instance, killed, tmp_path)
    assert lab.champion() == second


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


def test_a_run_still_starting_is_not_reaped(instance):
    """A run with no RUN_START yet (launched, not started) holds nothing: never marked failed on a guess."""
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    assert reap_dead_runs(instance) == []
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED
