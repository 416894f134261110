"""Every test gets its own stores under tmp_path: warehouse, MLflow, Dagster home, reports. Nothing is written
into the repo. The dbt manifest is prepared once per session (as `make setup` does) if it is missing.

Helpers the tests share live in modules of their own beside this file (stores.py, chain.py, dbt_marts.py,
ml_lab.py, monitoring_lab.py, sensor_helpers.py, stand_in_registry.py, run_launch.py, postgres_server.py,
spark_server.py); test
files import them from there, never from this conftest. Fixtures defined in those modules are registered below."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import DBT_PROJECT_DIR, Settings
from tests.stores import point_stores_at

# Tests work on fixed dates, whatever today is.
os.environ.setdefault("NIGHTJAR_START_DATE", "2026-01-01")
os.environ.setdefault("NIGHTJAR_TIMEZONE", "UTC")

# Fixtures every test may ask for by name, defined beside the helpers they wrap.
pytest_plugins = ["tests.ml_lab", "tests.sensor_helpers", "tests.spark_server"]


# The slowest modules (minutes each) are collected first: `make test` hands whole modules to its workers
# (pytest-xdist `--dist loadfile --no-loadscope-reorder`) in this order, so these start at once instead of ending the
# run alone on one worker while the other idles. Order only: every test still owns its state.
SLOWEST_MODULES = (
    "test_ui_live.py",
    "test_spark_chain.py",
    "test_crash_recovery.py",
    "test_foreign_domain.py",
    "test_model_kinds.py",
    "test_warehouse_concurrency.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        dbt = Path(sys.executable).parent / "dbt"
        subprocess.run(
            [str(dbt), "parse", "--quiet", "--profiles-dir", ".", "--project-dir", "."], cwd=DBT_PROJECT_DIR, check=True
        )
    return manifest


@pytest.fixture
def nightjar_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield point_stores_at(tmp_path, monkeypatch)


@pytest.fixture
def defs(nightjar_env: Settings) -> dg.Definitions:
    from definitions import build_definitions

    return build_definitions(nightjar_env)


@pytest.fixture
def instance(nightjar_env: Settings) -> Iterator[dg.DagsterInstance]:
    """A persistent instance in the test's Dagster home (with the repo's pool limits), prepared as `make setup`
    prepares one: storage created, pool limits applied and SQLite claims guarded before any run starts."""
    from resources.instance import prepare_instance

    with dg.DagsterInstance.get() as inst:
        prepare_instance(inst)
        yield inst
