"""The stored states the chain benchmarks start from, built untimed: history in the warehouse, a champion in MLflow.

A state is built under its root, then snapshotted. Every measurement first restores the snapshot *at the same
path*, so each side runs on its own copy of the same warehouse, MLflow store and Dagster home, and the warehouse's
absolute path does not change between the history runs and the measured one (it is a dbt var, and dbt re-parses
the whole project when its vars change: a moved copy would pay a re-parse the nightly run never pays).

The champion is trained once (``CHAMPION_DAYS`` x 2,000 rows, as bench/model.py sets up) and its MLflow store copied
into every state: scoring and drift read only the registry and the artifacts, never the training history.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench._harness import PROJECT_ROOT, START_DATE, child_command, run_measured, stores_env

LABEL_DELAY_DAYS = 3  # the measured day's outcomes are those of a stored day
SPEC_FILE = "loan_default.yaml"
CHAMPION_DAYS = 24
CHAMPION_ROWS = 2000
# The first stored day. Dagster's daily partitions end at yesterday whatever NIGHTJAR_END_DATE says, so 365 stored
# days and the measured day after them must lie in the past: a year before bench/model.py's START_DATE.
HISTORY_START = "2025-01-01"


def day(offset: int) -> str:
    """HISTORY_START + ``offset`` days, ISO."""
    return (date.fromisoformat(HISTORY_START) + timedelta(days=offset)).isoformat()


def spec_name() -> str:
    import yaml

    return yaml.safe_load((PROJECT_ROOT / "model_specs" / SPEC_FILE).read_text())["name"]


def bench_env(root: Path, rows: int, last_day: str, first_day: str = HISTORY_START, **overrides: str) -> dict[str, str]:
    """The stores under ``root``, ``rows`` a day, partitions ``first_day``..``last_day``, the one shipped spec
    (copied, so that a spec added to model_specs/ meanwhile changes nothing here)."""
    specs = root / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "model_specs" / SPEC_FILE, specs / SPEC_FILE)
    settings = {
        "NIGHTJAR_ROWS_PER_DAY": str(rows),
        "NIGHTJAR_LABEL_DELAY_DAYS": str(LABEL_DELAY_DAYS),
        "NIGHTJAR_START_DATE": first_day,
        "NIGHTJAR_END_DATE": last_day,
        "NIGHTJAR_MODEL_SPECS_DIR": str(specs),
    }
    return stores_env(root, **{**settings, **overrides})  # an override wins (another engine, label delay)


def prepare_instance(env: dict[str, str], logs: Path) -> None:
    """What `make setup` prepares before any run: the Dagster storage (`python -m resources.instance`) and dbt's
    parse state (`python -m resources.dbt_parse_state`); each skipped where its module does not exist (an older
    commit measured with this bench)."""
    for module in ("resources.instance", "resources.dbt_parse_state"):
        if (PROJECT_ROOT / (module.replace(".", "/") + ".py")).exists():
            run_measured(child_command(module), env, logs / f"prepare_{module.rpartition('.')[2]}.log")


def ingest_range(env: dict[str, str], first: str, last: str, logs: Path, name: str):
    """Days first..last through the ``ingest`` job as ONE single-run backfill (bench/data_half.py's child)."""
    out = logs / f"{name}.json"
    return run_measured(
        child_command("bench.data_half", "--child", "nightjar", "--first", first, "--day", last, "--out", str(out)),
        env,
        logs / f"{name}.log",
        out,
    )


def ensure_champion(directory: Path) -> Path:
    """A trained champion's MLflow store in ``directory`` (built there unless it already is one)."""
    if (directory / "champion.json").exists():  # written once the champion is registered
        return directory
    shutil.rmtree(directory, ignore_errors=True)  # what a failed attempt left
    directory.mkdir(parents=True)
    # bench/model.py's set-up stores CHAMPION_DAYS from its START_DATE
    last = (date.fromisoformat(START_DATE) + timedelta(days=CHAMPION_DAYS)).isoformat()
    env = bench_env(directory, CHAMPION_ROWS, last, first_day=START_DATE)
    prepare_instance(env, directory)
    out = directory / "champion.json"
    run_measured(
        child_command(
            "bench.model", "--child", "setup-history", "--history-days", str(CHAMPION_DAYS), "--out", str(out)
        ),
        env,
        directory / "champion.log",
        out,
    )
    return directory


@dataclass
class State:
    root: Path  # where the state lives and every measurement of it runs
    env: dict[str, str]
    logs: Path  # beside the root: restoring the root leaves them

    @property
    def snapshot(self) -> Path:
        return self.root.with_name(self.root.name + ".snapshot")

    def seal(self, champion: Path) -> State:
        """Install the champion's MLflow store, then snapshot the whole root."""
        shutil.copy(champion / "mlflow.db", self.root / "mlflow.db")
        shutil.rmtree(self.snapshot, ignore_errors=True)
        shutil.copytree(self.root, self.snapshot, symlinks=True)
        return self

    def restore(self) -> None:
        """A fresh copy of the snapshot at the root's path."""
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.copytree(self.snapshot, self.root, symlinks=True)


def history_state(parent: Path, name: str, rows: int, days: int, measured_day: str, **overrides: str) -> State:
    """``days`` days of ``rows`` stored from HISTORY_START (one untimed ingest run), partitions up to
    ``measured_day``; ``overrides``: more of the environment (another engine)."""
    root, logs = parent / name, parent / f"{name}.logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = bench_env(root, rows, measured_day, **overrides)
    prepare_instance(env, logs)
    ingest_range(env, day(0), day(days - 1), logs, "history")
    return State(root, env, logs)
