"""Timers around the functions the chain's steps call, installed in a measuring child process only.

Each call of a wrapped function leaves (label, start, end) in ``RECORDS`` (time.time(), as Dagster's event stamps),
so the parent can say where a step's seconds went: the rest of the step is Dagster and whatever is not wrapped. The
wrappers change no behaviour; functions that the assets import inside their bodies are wrapped on their module, so
the assets pick up the wrapper at call time. ``import evidently`` (lazy, inside ``run_drift``) is timed apart.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from typing import Any

RECORDS: list[tuple[str, float, float]] = []

# (module, attribute, label); "Class.method" wraps a method on the class.
TARGETS = (
    ("resources.registry", "ModelRegistry.by_alias", "MLflow: resolve alias (first call opens the store)"),
    ("resources.registry", "ModelRegistry.version", "MLflow: read the version"),
    ("resources.registry", "ModelRegistry.load", "MLflow: load the champion (pyfunc)"),
    ("assets.ml.evaluation", "score", "score (model input + predict_proba)"),
    ("assets.ml.mlflow_logging", "load_reference", "MLflow: download the reference sample"),
    ("assets.monitoring.drift", "run_drift", "Evidently: drift report + HTML"),
    ("assets.monitoring.drift_assets", "log_to_mlflow", "MLflow: log the day's drift metrics"),
    ("assets.raw.audit", "audit_staged", "raw: audit the staged window"),
    ("resources.warehouse", "DuckDBWarehouse.replace_window", "warehouse: replace_window (pulls the rows in)"),
    ("resources.warehouse", "DuckDBWarehouse.replace_window_from", "warehouse: replace_window_from (publish)"),
    ("resources.warehouse", "DuckDBWarehouse.read_window", "warehouse: read_window"),
    # Every Dagster event (step start, each partition's planned and done materialization, check results, logs) is
    # one write to the SQLite event log of the local instance.
    (
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage.store_event",
        "Dagster: write an event to the SQLite event log",
    ),
    (
        "nightjar_instance.event_log",
        "BatchedSqliteEventLogStorage.store_event_batch",
        "Dagster: write a batch of events to the SQLite event log",
    ),
)
EVIDENTLY_IMPORT = "import evidently (lazy, first drift)"


def _timed(label: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if fn.__name__ == "run_drift" and "evidently" not in sys.modules:
            started = time.time()
            import evidently.metrics  # noqa: F401
            import evidently.presets  # noqa: F401

            RECORDS.append((EVIDENTLY_IMPORT, started, time.time()))
        started = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            RECORDS.append((label, started, time.time()))

    return wrapper


def install() -> list[str]:
    """Wrap every target that exists; returns the ones missing (renamed in the code: reported, not fatal)."""
    missing = []
    for module_name, attribute, label in TARGETS:
        try:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, name, _timed(label, getattr(owner, name)))
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{attribute}")
    return missing


def within(window: dict[str, float], records: list) -> list[tuple[str, float, float]]:
    """The records that started inside ``window`` (a step's start and end)."""
    return [tuple(r) for r in records if window["start"] - 0.001 <= r[1] <= window["end"] + 0.001]


def covered(records: list) -> float:
    """Seconds covered by the union of the records' intervals (nested calls counted once)."""
    total, reach = 0.0, None
    for _, start, end in sorted(records, key=lambda r: r[1]):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def step_rows(window: dict[str, float], records: list) -> list[tuple[str, float]]:
    """(label, seconds) of the timed calls inside a step, summed by label ("(xN)" when called N times), then the rest
    of the step: Dagster and untimed code. Empty when nothing was timed there."""
    inside = within(window, records)
    by_label: dict[str, list[float]] = {}
    for label, start, end in inside:
        by_label.setdefault(label, []).append(end - start)
    rows = [(label + (f" (x{len(v)})" if len(v) > 1 else ""), sum(v)) for label, v in by_label.items()]
    if inside:
        rows.append(
            (
                "rest of the step: Dagster, context, metadata, code not timed",
                window["end"] - window["start"] - covered(inside),
            )
        )
    return rows


def outside_rows(span: dict[str, float], steps: list[dict[str, float]], records: list) -> list[tuple[str, float]]:
    """(label, seconds) of the timed calls inside ``span`` (a run) but in none of its ``steps``, summed by label."""
    inside = [r for r in within(span, records) if not any(within(w, [r]) for w in steps)]
    by_label: dict[str, list[float]] = {}
    for label, start, end in inside:
        by_label.setdefault(label, []).append(end - start)
    return [(label + (f" (x{len(v)})" if len(v) > 1 else ""), sum(v)) for label, v in by_label.items()]
