"""The Dagster instance made ready before runs, and its record of crashed runs set right.

Nothing here guards correctness: the warehouse's exclusive writer is an OS lock that dies with its holder
(``resources.warehouse.writer_lock``), and the storage's first-time creation is serialised by the storage classes
themselves (``nightjar_instance.storage``). A run killed with ``kill -9`` therefore blocks nothing; what it leaves
is a record that says STARTED for ever. ``reap_dead_runs`` sets that record right:

- a run is dead once the process that started it (the pid on its RUN_START event, read through the public
  ``fetch_run_status_changes``) is gone; a pid reused by a process that started later does not count as alive;
- it is then marked failed (or canceled, if it was canceling) with a message saying why, so the UI, the
  run-failure alert and run-level tag limits (the daemon's queue) see it ended.

It runs the next time anything touches the instance: at the start of every warehouse step of any run (however
started: ``dagster job execute``, ``execute_in_process``, the UI, a schedule; ``assets/warehouse_step.py``), in the
``run_reaper_sensor`` under the daemon, and in ``python -m resources.instance`` (``make setup``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

LOG = logging.getLogger("nightjar.instance")

IN_PROGRESS = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def prepare_instance(instance: dg.DagsterInstance | None = None, log: logging.Logger = LOG) -> list[str]:
    """Create (or open) the instance's storage and set right the runs a crash left in progress.

    Opens ``DagsterInstance.get()`` (``DAGSTER_HOME``) unless given an instance. Safe to run again and from several
    processes at once. Returns the ids of the runs it marked finished.
    """
    if instance is None:
        with _home_lock(), dg.DagsterInstance.get() as opened:
            return prepare_instance(opened, log)
    instance.get_run_records(limit=1)  # all three storages exist from here on
    reaped = reap_dead_runs(instance, log=log)
    log.info("Dagster instance ready; runs found dead and marked failed: %s", reaped or "none")
    return reaped


def reap_dead_runs(
    instance: dg.DagsterInstance, same_host: bool | None = None, log: logging.Logger | None = None
) -> list[str]:
    """Mark failed (or canceled) the in-progress runs whose process is gone. Returns their ids.

    ``same_host``: whether every run worker runs on this machine, in this pid namespace, so that a missing pid
    means a dead run. Default: only with SQLite storage, which cannot be shared across machines; with Postgres
    (deploy) the daemon's run monitoring (``max_runtime_seconds``) is the backstop unless you pass True.
    """
    log = log or LOG
    if same_host is None:
        same_host = _sqlite(instance.run_storage)
    if not same_host:
        return []
    reaped = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        started = _run_start(instance, record)
        if started is None or _process_alive(started.dagster_event.pid, started.timestamp):
            continue
        # Read again after finding the process gone: a run that ended on its own just before has its final
        # status stored by now (a process writes it before it exits), and must keep it.
        run = instance.get_run_by_id(record.dagster_run.run_id)
        if run is None or run.status not in IN_PROGRESS:
            continue
        message = (
            f"nightjar: the process of this run (pid {started.dagster_event.pid}) is gone (killed or crashed) while "
            f"it was {run.status.value}; marked it finished. Nothing it wrote was published half-way: re-run its "
            "partitions."
        )
        # No public API marks a run failed without a run launcher's health check; register in ARCHITECTURE.md.
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        log.warning(f"run {run.run_id} ({run.job_name}): {message}")
        reaped.append(run.run_id)
    return reaped


def _sqlite(storage: object) -> bool:
    """Whether the run storage is SQLite (Dagster's class or a subclass of it, as nightjar_instance's)."""
    return any("sqlite" in f"{cls.__module__}.{cls.__name__}".lower() for cls in type(storage).__mro__)


def _run_start(instance: dg.DagsterInstance, record) -> dg.EventLogEntry | None:
    """The run's RUN_START event (it carries the run worker's pid), found through the public run-status-change
    query around the run's start time. None while the run is still starting (it holds nothing yet; run
    monitoring's start timeout covers a run that never starts)."""
    if record.start_time is None:
        return None
    found = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(
            dg.DagsterEventType.RUN_START,
            after_timestamp=record.start_time - 5.0,
            before_timestamp=record.start_time + 5.0,
        ),
        limit=1000,
    )
    for event_record in found.records:
        if event_record.run_id == record.dagster_run.run_id:
            return event_record.event_log_entry
    return None


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
