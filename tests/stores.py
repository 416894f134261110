"""A test's own stores: the environment that points every store (warehouse, MLflow, Dagster home, reports) under a
folder of the test, with small days and a short label delay so that the chain runs in seconds."""

from __future__ import annotations

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
