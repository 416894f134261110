"""The warehouse's exclusive writer: an OS file lock held for a whole warehouse step, that dies with its holder.

DuckDB allows one writer process per file. Steps that write it (raw ingest, dbt's subprocess, scoring, monitoring)
take turns on ``<warehouse>.writer.lock`` with ``flock``: the kernel releases the lock the moment its holder exits,
however it exits (kill -9, out of memory), so no crash can leave a claim that blocks the next run, and no daemon or
reaper is needed to free it. This replaces a one-slot Dagster pool, whose claims outlive a killed run.

The holder writes who it is into the file (run, step, pid, since), so a waiting step says what it waits for, with
the real time waited, in its log. A lock held by a live process is never stale: the default wait is long, and a
step that gives up names the holder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

_LOG = logging.getLogger("nightjar.warehouse")

# How often a waiting step repeats what it waits for (seconds): each line is an event Dagster stores.
REPORT_EVERY_SECONDS = 60.0


# Lock files this process holds, and how many blocks hold each: a second ``flock`` from the same process on another
# descriptor would wait for itself.
_HELD: dict[str, int] = {}


class WriterLockTimeout(TimeoutError):
    """Another process held the warehouse's writer lock for longer than the step would wait."""


def lock_path_for(database: str | Path) -> Path:
    """The writer lock of a warehouse file: beside it, so every process that opens the file finds it."""
    path = Path(database)
    return path.with_name(f"{path.name}.writer.lock")


def read_holder(lock_path: Path) -> dict:
    """Who holds (or last held) the lock, as its holder wrote it; {} if unknown."""
    try:
        text = lock_path.read_text()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "an unknown process (it wrote nothing into the lock file yet)"
    run = holder.get("run_id") or "no Dagster run"
    what = f" ({holder['step']})" if holder.get("step") else ""
    return f"run {run}{what}, pid {holder.get('pid')}, since {holder.get('since')}"


@contextmanager
def exclusive_writer(
    lock_path: Path,
    *,
    run_id: str | None = None,
    step: str | None = None,  # what the holder does (a job, a step), for whoever waits
    wait_seconds: float | None = None,
    log: logging.Logger | logging.LoggerAdapter | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[dict]:
    """Hold the writer lock at ``lock_path`` for the block; yields what it wrote as holder.

    Waits for another holder with a short poll (the kernel would block us without a way to report or give up),
    saying in ``log`` who holds it and since when, first at once and then every ``REPORT_EVERY_SECONDS``.
    ``wait_seconds``: None waits as long as the holder lives; a number raises :class:`WriterLockTimeout` after
    that many seconds, naming the holder. On a platform without ``fcntl`` (Windows) the block runs unguarded.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield {}
        return
    log = log or _LOG
    key = str(lock_path.resolve())
    if _HELD.get(key):  # this process holds it already (a resource and a step both asked): flock is per open file
        _HELD[key] += 1
        try:
            yield read_holder(lock_path)
        finally:
            _HELD[key] -= 1
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        reported = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                holder = describe_holder(read_holder(lock_path))
                if wait_seconds is not None and waited >= wait_seconds:
                    raise WriterLockTimeout(
                        f"the warehouse writer lock {lock_path} is still held by {holder} after {waited:.0f} s "
                        f"(this step waits at most {wait_seconds:.0f} s): that process is alive and writing; "
                        f"wait for it to end, or stop it"
                    ) from None
                if reported is None or waited - reported >= REPORT_EVERY_SECONDS:
                    log.info(
                        f"waiting for the warehouse writer lock {lock_path}: held by {holder}; waited {waited:.0f} s"
                    )
                    reported = waited
                time.sleep(poll_seconds)
        waited = time.monotonic() - started
        if reported is not None:
            log.info(f"got the warehouse writer lock {lock_path} after waiting {waited:.1f} s")
        holder = {
            "run_id": run_id,
            "step": step,
            "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        _HELD[key] = 1
        try:
            yield holder
        finally:
            _HELD.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
