"""A test's own stores: the environment that points every store (warehouse, MLflow, Dagster home, reports) under a
folder of the test, with small days and a short label delay so that the chain runs in seconds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from resources.settings import Settings, stores_under

TEST_ROWS_PER_DAY = 300
TEST_LABEL_DELAY_DAYS = 3


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
        "NIGHTJAR_DAGSTER_URL",  # `make` exports the UIs' addresses from its port variables
        "NIGHTJAR_MLFLOW_UI_URL",
    ):
        if name not in overrides:
            monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


def move_store_paths(sqlite_db: Path, old: str, new: str) -> None:
    """Every text value of the SQLite store that names a path under ``old`` (artifact locations, model sources)
    names the same path under ``new``."""
    with closing(sqlite3.connect(sqlite_db)) as conn, conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in conn.execute(f'PRAGMA table_info("{table}")').fetchall():
                name, kind = column[1], column[2].upper()
                if "CHAR" in kind or "TEXT" in kind:
                    conn.execute(
                        f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) WHERE instr("{name}", ?) > 0',
                        (old, new, old),
                    )
        (moved,) = conn.execute(
            "SELECT count(*) FROM experiments WHERE instr(artifact_location, ?) > 0", (new,)
        ).fetchone()
        assert moved > 0, "the trained store's artifact location was not moved"
