"""The Dagster instance made ready before runs, and healed after crashed ones.

``prepare_instance()`` (``python -m resources.instance``, run by ``make setup`` and ``make run``, and by the tests'
``instance`` fixture) does what no run should race to do:

- creates the storage under ``DAGSTER_HOME`` once: two runs creating a fresh SQLite home at the same moment crash
  one with ``table secondary_indexes already exists`` (the run storage's first-time set-up has no retry);
- applies the pool limits (``concurrency.pools.default_limit``) to our pools, which Dagster otherwise does
  lazily inside the first step that claims a slot;
- installs the claim guard below on SQLite storage;
- reaps runs whose process died (below), so ``make run`` heals a crash left by an earlier one.

**Claim guard.** Dagster claims a pool slot by selecting a free slot row and then updating it by id. On Postgres
the select takes a row lock (``FOR UPDATE SKIP LOCKED``); SQLite has no row locks and ignores it, so two
processes claiming at the same moment both "claim" the one slot (measured: 2 and 4 of 4 simultaneous claimers
on a one-slot pool). That, not the configuration, is why the ``warehouse`` pool let two runs into DuckDB at
once. The guard is a trigger that refuses to overwrite a slot another step holds; the update then changes no
row, which Dagster already reads as "blocked, retry later". Writes to one SQLite file are serialised, so the
check and the write are atomic.

**Reaper.** A run killed with ``kill -9`` stays STARTED and keeps its slots; later runs wait for ever. The
daemon's run monitoring cannot tell: the DefaultRunLauncher has no worker health check
(``RunLauncher.supports_check_run_worker_health`` is False; Dagster's docs: crash detection "only works when
using a run launcher other than the DefaultRunLauncher"), and runs from ``dagster job execute`` or
``execute_in_process`` have no launcher at all. Every Dagster event records the pid of the process that wrote
it, so the run worker is the pid on the run's RUN_START event (step processes: on their STEP_START events).
``reap_dead_runs`` marks a run failed once none of those processes is alive (a pid reused by a process that
started later does not count as alive), and frees its slots and queued claims.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from resources.warehouse import WAREHOUSE_POOL

LOG = logging.getLogger("nightjar.instance")

POOLS: tuple[str, ...] = (WAREHOUSE_POOL,)

IN_PROGRESS = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

# Refuses to overwrite a slot that another step holds (see the module docstring); freeing (NULL) and Dagster's
# own bookkeeping updates (``deleted``) pass.
_CLAIM_GUARD = """
CREATE TRIGGER IF NOT EXISTS nightjar_one_claim_per_slot
BEFORE UPDATE OF run_id, step_key ON concurrency_slots
WHEN OLD.step_key IS NOT NULL AND NEW.step_key IS NOT NULL
     AND (NEW.run_id IS NOT OLD.run_id OR NEW.step_key IS NOT OLD.step_key)
BEGIN SELECT RAISE(IGNORE); END
"""


def prepare_instance(
    instance: dg.DagsterInstance | None = None, pools: Sequence[str] = POOLS, log: logging.Logger = LOG
) -> list[str]:
    """Create (or open) the instance's storage, apply the pool limits, guard SQLite claims and reap dead runs.

    Opens ``DagsterInstance.get()`` (``DAGSTER_HOME``) unless given an instance; safe to run again and from two
    processes at once (they take turns on a lock of the home's dagster.yaml). Returns the reaped run ids.
    """
    if instance is None:
        with _home_lock(), dg.DagsterInstance.get() as opened:
            return prepare_instance(opened, pools, log)
    storage = instance.event_log_storage
    instance.get_run_records(limit=1)  # all three storages exist from here on
    if storage.supports_global_concurrency_limits:
        for pool in pools:
            storage.initialize_concurrency_limit_to_default(pool)
    guarded = _guard_sqlite_claims(instance)
    reaped = reap_dead_runs(instance, log=log)
    limits = {limit.name: limit.limit for limit in storage.get_pool_limits()}
    log.info(
        "Dagster instance ready: pool limits %s, SQLite claim guard %s, reaped runs %s",
        limits,
        "on" if guarded else "not needed",
        reaped or "none",
    )
    return reaped


def reap_dead_runs(instance: dg.DagsterInstance, same_host: bool | None = None, log: logging.Logger = LOG) -> list[str]:
    """Fail in-progress runs whose processes are all gone and free their pool slots; free the slots that
    finished runs still hold. Returns the ids of the runs marked failed (or canceled, if they were canceling).

    ``same_host``: whether every run worker runs on this machine, in this pid namespace, so that a missing pid
    means a dead run. Default: only with SQLite storage, which cannot be shared across machines; with Postgres
    (deploy) the daemon's ``run_monitoring.max_runtime_seconds`` is the backstop unless you pass True.
    """
    if same_host is None:
        same_host = "sqlite" in type(instance.run_storage).__module__
    reaped = []
    if same_host:
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
            if _run_alive(instance, record.dagster_run.run_id):
                continue
            # Read again after finding the process gone: a run that ended on its own just before has its final
            # status stored by now (a process writes it before it exits), and must keep it.
            run = instance.get_run_by_id(record.dagster_run.run_id)
            if run is None or run.status not in IN_PROGRESS:
                continue
            held = _release(instance, run.run_id)
            message = (
                f"nightjar reaper: the process of this run is gone (killed or crashed) while it was "
                f"{run.status.value}; marked it finished and freed its pool slots {held or '(none held)'}."
            )
            if run.status == dg.DagsterRunStatus.CANCELING:
                instance.report_run_canceled(run, message)
            else:
                instance.report_run_failed(run, message)
            log.warning("run %s (%s): %s", run.run_id, run.job_name, message)
            reaped.append(run.run_id)
    _free_slots_of_finished_runs(instance, log)
    return reaped


def _run_alive(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether the run worker, or any of its step processes, is still running. A run with no RUN_START event
    yet (still starting) counts as alive: it holds no slot, and run monitoring's start timeout covers it."""
    starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    if not starts:
        return True
    worker = starts[-1]
    if _process_alive(worker.dagster_event.pid, worker.timestamp):
        return True
    steps = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return any(
        _process_alive(e.dagster_event.pid, e.timestamp)
        for e in steps
        if e.dagster_event.pid != worker.dagster_event.pid
    )


def _process_alive(pid: int | None, seen_at: float) -> bool:
    """Whether ``pid`` is a live process that already existed at ``seen_at`` (epoch seconds): a zombie is dead,
    and a process started after the event that recorded the pid is a newcomer that reused it."""
    if pid is None:
        return True  # unknown: never reap on a guess
    if pid == os.getpid():
        return True
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/stat").exists():  # Linux: state and start time
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if fields[0] in ("Z", "X"):
            return False
        started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        # Slack for whole-second btime and for the wall clock being stepped since: only a process that
        # started clearly after the event is a newcomer (when in doubt, alive: never reap on a guess).
        return started <= seen_at + 60.0
    try:  # elsewhere: existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def _release(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Free the run's claimed slots and queued claims; returns the ``pool:step`` slots it held."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    held = [
        f"{key}:{slot.step_key}"
        for key in storage.get_concurrency_keys()
        for slot in storage.get_concurrency_info(key).claimed_slots
        if slot.run_id == run_id
    ]
    storage.free_concurrency_slots_for_run(run_id)
    return held


def _free_slots_of_finished_runs(instance: dg.DagsterInstance, log: logging.Logger) -> None:
    """What the daemon does with ``free_slots_after_run_end_seconds``, for setups without a daemon (``make run``,
    tests): slots and queued claims of runs that ended (or were deleted) that long ago are freed."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    grace = instance.run_monitoring_settings.get("free_slots_after_run_end_seconds") or 0
    run_ids = list(storage.get_concurrency_run_ids())
    if not run_ids:
        return
    records = {r.dagster_run.run_id: r for r in instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids))}
    for run_id in run_ids:
        record = records.get(run_id)
        if record is not None and (
            record.dagster_run.status not in FINISHED or (record.end_time or 0) + grace > time.time()
        ):
            continue
        held = _release(instance, run_id)
        log.warning(
            "run %s is %s but still held pool slots %s: freed them",
            run_id,
            record.dagster_run.status.value if record else "deleted",
            held or "(queued claims only)",
        )


def _guard_sqlite_claims(instance: dg.DagsterInstance) -> bool:
    """Install the claim guard in a SQLite event log's index database; other databases lock rows already."""
    import sqlalchemy

    index_connection = getattr(instance.event_log_storage, "index_connection", None)
    if index_connection is None or not instance.event_log_storage.supports_global_concurrency_limits:
        return False
    with index_connection() as conn:
        if conn.dialect.name != "sqlite":
            return False
        conn.execute(sqlalchemy.text(_CLAIM_GUARD))
    return True


@contextmanager
def _home_lock() -> Iterator[None]:
    """Two preparations of one home (two `make run`s) take turns, by a lock on its dagster.yaml (no new file
    in the home); without that file or fcntl (Windows) they just run."""
    config = Path(os.environ.get("DAGSTER_HOME", "")) / "dagster.yaml"
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None or not config.is_file():
        yield
        return
    with open(config) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # not alembic's chatter
    LOG.setLevel(logging.INFO)
    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set: point it at the Dagster home to prepare (make sets it)")
    prepare_instance()


if __name__ == "__main__":
    main()
