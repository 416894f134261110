"""Every test gets its own stores under tmp_path: warehouse, MLflow, Dagster home, reports. Nothing is written
into the repo. The dbt manifest is prepared once per session (as `make setup` does) if it is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import DBT_PROJECT_DIR, Settings, stores_under

# Tests work on fixed dates, whatever today is.
os.environ.setdefault("NIGHTJAR_START_DATE", "2026-01-01")
os.environ.setdefault("NIGHTJAR_TIMEZONE", "UTC")

TEST_ROWS_PER_DAY = 300
TEST_LABEL_DELAY_DAYS = 3


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        dbt = Path(sys.executable).parent / "dbt"
        subprocess.run(
            [str(dbt), "parse", "--quiet", "--profiles-dir", ".", "--project-dir", "."], cwd=DBT_PROJECT_DIR, check=True
        )
    return manifest


def point_stores_at(root: Path, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> Settings:
    """Settings whose every store lives under ``root``; small days and a short label delay keep tests quick."""
    env = {
        **stores_under(root),
        "NIGHTJAR_ROWS_PER_DAY": str(TEST_ROWS_PER_DAY),
        "NIGHTJAR_LABEL_DELAY_DAYS": str(TEST_LABEL_DELAY_DAYS),
        **overrides,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "NIGHTJAR_DRIFT_START",
        "NIGHTJAR_CONCEPT_DRIFT_START",
        "NIGHTJAR_DBT_TARGET",
        "NIGHTJAR_MODEL_SPECS_DIR",
    ):
        if name not in overrides:
            monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


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
