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
            "DBT_LOG_PATH": str(root / "dbt_logs"),  # dbt writes dbt.log under the project otherwise
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
    command: list[str],
    env: dict[str, str],
    log: Path,
    out: Path | None = None,
    check: bool = True,
    cwd: Path | None = None,
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
        process = subprocess.Popen(command, cwd=cwd or log.parent, env=env, stdout=log_file, stderr=subprocess.STDOUT)

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
        raise SystemExit(
            f"benchmark child failed ({returncode}): {' '.join(command)}\n--- last lines of {log} ---\n{tail}"
        )
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
            "end": run_bounds.get(
                "RUN_SUCCESS", run_bounds.get("RUN_FAILURE", run_bounds.get("PIPELINE_SUCCESS", 0.0))
            ),
        }
    return windows


DBT_STEP = "nightjar_dbt_models"


def dbt_node_summary(instance, run_id: str, step_key: str = DBT_STEP) -> dict[str, Any]:
    """dbt's node timings as dagster-dbt reports them ("Execution Duration" of each model's materialization and each
    test's check evaluation), and when the first node started (epoch seconds): everything before it in the dbt
    process is start-up and parsing."""
    summary: dict = {"models_s": 0.0, "tests_s": 0.0, "nodes": 0, "by_node": {}}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION":
            metadata, kind = event.event_specific_data.materialization.metadata, "models_s"
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            metadata, kind = event.event_specific_data.metadata, "tests_s"
        else:
            continue
        duration = metadata.get("Execution Duration")
        seconds = float(duration.value) if duration is not None else 0.0
        unique_id = metadata.get("unique_id")
        name = str(getattr(unique_id, "value", unique_id) or event.event_type_value).split(".")[
            -1 if kind == "models_s" else 2
        ]
        if name in summary["by_node"]:  # a range run reports each model once per partition: the node ran once
            continue
        summary[kind] += seconds
        summary["nodes"] += 1
        summary["by_node"][name] = seconds
        summary.setdefault("first_node_start", entry.timestamp - seconds)
        summary["last_node_event"] = entry.timestamp
    return summary


def dbt_step_split(measured: "Measured", window: dict[str, float], summary: dict[str, Any]) -> list[tuple[str, float]]:
    """Where a dagster-dbt step's seconds go: Dagster before the dbt process starts (dagster-dbt set-up), dbt's
    start-up and parse, its models and tests (node time), between nodes and exit, and Dagster after dbt exits. The
    dbt process's lifetime comes from the memory sampler; without it (missed), only the coarse split."""
    span = window["end"] - window["start"]
    processes = [p for p in measured.lifetimes("dbt build") if window["start"] - 1 <= p["first"] <= window["end"]]
    nodes = summary["models_s"] + summary["tests_s"]
    if not processes or "first_node_start" not in summary:
        return [
            ("models (dbt node time)", summary["models_s"]),
            ("tests (dbt node time)", summary["tests_s"]),
            ("dbt start-up, parse, Dagster events", span - nodes),
        ]
    proc = processes[0]
    parse = "full re-parse logged" if "Unable to do partial parsing" in measured.output else "no re-parse logged"
    return [
        ("Dagster before dbt starts (dagster-dbt set-up)", proc["first"] - window["start"]),
        (f"dbt start-up, imports, parse ({parse})", summary["first_node_start"] - proc["first"]),
        ("models (dbt node time)", summary["models_s"]),
        ("tests (dbt node time)", summary["tests_s"]),
        ("dbt between nodes, artifacts, exit", proc["last"] - summary["first_node_start"] - nodes),
        ("Dagster after dbt exits (events, checks)", window["end"] - proc["last"]),
    ]


# ---------------------------------------------------------------------------------------------------------------
# Printing


def machine_load() -> str:
    """The load average (/proc/loadavg) and core count: these machines are shared, and a busy neighbour slows every
    figure."""
    one, five, _ = load_average()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def load_average() -> tuple[float, float, float]:
    with open("/proc/loadavg") as handle:
        one, five, fifteen = (float(v) for v in handle.read().split()[:3])
    return one, five, fifteen


def machine() -> str:
    """Cores and memory of this machine, for the results table."""
    with open("/proc/meminfo") as handle:
        kib = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal:"))
    return f"{os.cpu_count()} cores (nproc), {kib / 2**20:.0f} GiB memory"


# ---------------------------------------------------------------------------------------------------------------
# Ratios and their goals

RATIOS_FILE_ENV = "NIGHTJAR_BENCH_RATIOS"  # bench/run.py collects every reported ratio through this file


def report_ratio(name: str, value: float | None, goal: str | None = None, note: str = "") -> None:
    """Print ``RATIO <name> = <value>`` next to its goal ("<= 1.5", ">= 0.9", or None: no goal set), and append it
    to the file named by $NIGHTJAR_BENCH_RATIOS when set, for `make bench`'s summary."""
    met = goal_met(value, goal)
    verdict = "no goal set" if goal is None else f"goal {goal}: {'met' if met else 'NOT met'}"
    shown = "-" if value is None else f"{value:.2f}"
    print(f"RATIO {name} = {shown}   ({verdict}){'; ' + note if note else ''}", flush=True)
    path = os.environ.get(RATIOS_FILE_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"name": name, "value": value, "goal": goal, "met": met, "note": note}) + "\n")


def goal_met(value: float | None, goal: str | None) -> bool | None:
    if goal is None or value is None:
        return None
    op, bound = goal.split()
    return value <= float(bound) if op == "<=" else value >= float(bound)


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
