"""What the benchmarks share: temp stores, measured child processes, step windows from Dagster events, tables.

Every measurement runs in a fresh child process started by the parent, which samples the resident memory of the
child's whole process tree (the child, dbt, multiprocess step workers: RSS summed over the processes) every
``SAMPLE_SECONDS``. A step's peak is the highest sample between its start and end (from Dagster's STEP_START /
STEP_SUCCESS event timestamps, or the child's own clock for the plain baselines); both sides use ``time.time()`` on
the same machine, so the windows line up. The child also reports its own ``ru_maxrss`` as an exact cross-check of
the process peak (sampling can miss a spike shorter than the interval).

Nothing here imports dagster at module level: the parent stays light and the children pay their own imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resources.settings import DBT_PROJECT_DIR, PROJECT_ROOT, stores_under

PYTHON = sys.executable
SAMPLE_SECONDS = 0.02
START_DATE = "2026-01-01"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
_PAGE = os.sysconf("SC_PAGE_SIZE")
# Settings the benchmarks pin or clear so that the caller's environment cannot change what is measured.
_CLEARED = (
    "NIGHTJAR_DRIFT_START",
    "NIGHTJAR_CONCEPT_DRIFT_START",
    "NIGHTJAR_DBT_TARGET",
    "NIGHTJAR_MODEL_SPECS_DIR",
    "NIGHTJAR_LANDING_DIR",
    "NIGHTJAR_REPORTS_DIR",
    "NIGHTJAR_REPORTS_BASE_URL",
    "NIGHTJAR_ALERT_WEBHOOK_URL",
)


def make_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"nightjar-bench-{prefix}-"))


def stores_env(root: Path, **overrides: str) -> dict[str, str]:
    """The environment of a child whose every store lives under ``root`` (resources.settings.stores_under).

    dbt's per-invocation target folders go under ``root`` too (DBT_TARGET_PATH, which dagster-dbt reads); the
    repo's ``partial_parse.msgpack`` is copied there first, because dagster-dbt copies it from the target folder to
    every invocation: with it, dbt parses as it does in ``make run``.
    """
    dbt_target = root / "dbt_target"
    dbt_target.mkdir(exist_ok=True)
    partial_parse = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    if partial_parse.exists():
        shutil.copy(partial_parse, dbt_target / partial_parse.name)
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(
        {
            **stores_under(root),
            "NIGHTJAR_START_DATE": START_DATE,
            "NIGHTJAR_TIMEZONE": "UTC",
            "DBT_TARGET_PATH": str(dbt_target),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(overrides)
    return env


# ---------------------------------------------------------------------------------------------------------------
# Child processes and their memory


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            pass
    return found


def tree_rss(pid: int, seen: list[tuple[int, int]] | None = None) -> int:
    """Resident bytes of ``pid`` and all its descendants (summed); (pid, bytes) of each is appended to ``seen``."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                rss = int(handle.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
        total += rss
        if seen is not None:
            seen.append((current, rss))
        stack.extend(_children(current))
    return total


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class Measured:
    command: list[str]
    started: float  # time.time() just before the child was started
    ended: float  # when it exited
    returncode: int
    samples: list[tuple[float, int]]  # (time.time(), tree RSS bytes)
    result: dict[str, Any] = field(default_factory=dict)  # what the child wrote to its --out file
    log: Path | None = None
    output: str = ""  # the child's stdout and stderr (the log file's text, read when it exited)
    # pid -> {"first", "last": first and last sample seeing it, "peak": its highest RSS in bytes, "cmd": command line}
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def lifetimes(self, contains: str) -> list[dict[str, Any]]:
        """The descendant processes whose command line contains ``contains``, in start order."""
        found = [p for pid, p in self.processes.items() if contains in p["cmd"]]
        return sorted(found, key=lambda p: p["first"])

    @property
    def wall(self) -> float:
        return self.ended - self.started

    def peak_mb(self, start: float | None = None, end: float | None = None) -> float:
        """Highest tree RSS sampled in [start, end] (the whole run by default), in MB."""
        lo = self.started if start is None else start
        hi = self.ended if end is None else end
        inside = [rss for t, rss in self.samples if lo - SAMPLE_SECONDS <= t <= hi + SAMPLE_SECONDS]
        return max(inside, default=0) / 2**20


def run_measured(
    command: list[str], env: dict[str, str], log: Path, out: Path | None = None, check: bool = True, cwd: Path | None = None
) -> Measured:
    """Run ``command`` (stdout and stderr to ``log``) while sampling its process tree's memory.

    The child runs in ``cwd``, by default the folder of ``log`` (a temp dir): a library that writes relative to
    the working directory (MLflow's default ``./mlruns``, say) then writes there, never into the repo. The
    project is importable through PYTHONPATH (``stores_env``)."""
    samples: list[tuple[float, int]] = []
    processes: dict[int, dict[str, Any]] = {}
    done = threading.Event()
    with open(log, "w") as log_file:
        started = time.time()
        process = subprocess.Popen(
            command, cwd=cwd or log.parent, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )

        def sample() -> None:
            while not done.is_set():
                seen: list[tuple[int, int]] = []
                now, total = time.time(), tree_rss(process.pid, seen)
                samples.append((now, total))
                for pid, rss in seen:
                    # Re-read the command line while the process lives: a child seen between fork and exec still
                    # shows its parent's.
                    cmd = _cmdline(pid)
                    if pid in processes:
                        known = processes[pid]
                        known["last"] = now
                        known["peak"] = max(known["peak"], rss)
                        known["cmd"] = cmd or known["cmd"]
                    else:
                        processes[pid] = {"first": now, "last": now, "peak": rss, "cmd": cmd}
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = process.wait()
        ended = time.time()
        done.set()
        sampler.join()
    if check and returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise SystemExit(f"benchmark child failed ({returncode}): {' '.join(command)}\n--- last lines of {log} ---\n{tail}")
    result = json.loads(out.read_text()) if out is not None and out.exists() else {}
    output = log.read_text(errors="replace")
    return Measured(command, started, ended, returncode, samples, result, log, output, processes)


def child_command(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def child_peaks() -> dict[str, float]:
    """Inside a child: its own peak RSS and the largest peak among its waited-for children, in MB."""
    import resource

    return {
        "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=str))


# ---------------------------------------------------------------------------------------------------------------
# Dagster events


STEP_EVENTS = ("STEP_WORKER_STARTING", "STEP_START", "STEP_SUCCESS", "STEP_FAILURE")


def step_windows(instance, run_id: str) -> dict[str, dict[str, float]]:
    """step key -> {"start", "end"[, "worker_starting"]} from the run's event log (time.time() seconds)."""
    windows: dict[str, dict[str, float]] = {}
    run_bounds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind in ("RUN_START", "RUN_SUCCESS", "RUN_FAILURE", "PIPELINE_START", "PIPELINE_SUCCESS"):
            run_bounds[kind] = entry.timestamp
        if kind not in STEP_EVENTS or not event.step_key:
            continue
        window = windows.setdefault(event.step_key, {})
        if kind == "STEP_WORKER_STARTING":
            window.setdefault("worker_starting", entry.timestamp)
        elif kind == "STEP_START":
            window.setdefault("start", entry.timestamp)
        else:
            window["end"] = entry.timestamp
            window["failed"] = kind == "STEP_FAILURE"
    if run_bounds:
        windows["__run__"] = {
            "start": run_bounds.get("RUN_START", run_bounds.get("PIPELINE_START", 0.0)),
            "end": run_bounds.get("RUN_SUCCESS", run_bounds.get("RUN_FAILURE", run_bounds.get("PIPELINE_SUCCESS", 0.0))),
        }
    return windows


# ---------------------------------------------------------------------------------------------------------------
# Printing


def machine_load() -> str:
    """The load average and core count: these machines are shared, and a busy neighbour slows every figure."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def fmt(value: float | None, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.2f}"


def print_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    if title:
        print(title)
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    print(flush=True)
