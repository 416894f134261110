"""A new domain added as files only runs the whole chain next to the loan example.

The project is copied to a temp dir; the parcel domain of ``tests/foreign_domain/`` (three landing tables with the
day only in the file names, a composite key, a day without an outcomes file, a context table joined in dbt, a
model spec) is added as files, with landing files written here. Then, in the copy and through Dagster, on real
dbt, DuckDB, MLflow and Evidently: `dbt parse` (as `make setup` does) and `python -m jobs.bootstrap` (as
`make run` does) ingest, train, score and check drift. No Python file of the copy differs from the repo's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from resources.settings import PROJECT_ROOT, stores_under

pytestmark = pytest.mark.slow

DOMAIN = Path(__file__).parent / "foreign_domain"
FIRST, LAST = date(2026, 2, 1), date(2026, 3, 12)
SHIPMENTS_PER_DAY = 160
DEPOTS = ("north", "south", "east")
NO_DELIVERIES_DAY = date(2026, 2, 20)
COPY_IGNORED = (
    ".venv",
    ".git",
    "data",
    "mlruns",
    "__pycache__",
    ".pytest_cache",
    "target",
    "logs",
    "*.duckdb",
    "mlflow.db",
    "artifacts",
    "storage",
    "history",
    "schedules",
    ".ruff_cache",
)


def _python_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*.py")
        if not set(p.relative_to(root).parts) & {".venv", "__pycache__", ".git"}
    }


def _write_landing(landing: Path) -> None:
    """Three daily tables; a shipment is late more often when it is far, heavy and it rains at its depot."""
    rng = np.random.default_rng(3)
    folder = landing / "parcels"
    for sub in ("shipments", "deliveries", "weather"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    day = FIRST
    while day <= LAST:
        hours = np.arange(24)
        weather = pd.DataFrame([(d, h) for d in DEPOTS for h in hours], columns=["depot", "hour"]).assign(
            temperature_c=lambda f: np.round(8 + 6 * np.sin(f["hour"] / 24 * 2 * np.pi) + rng.normal(0, 2, len(f)), 1),
            rain_mm=lambda f: np.round(np.where(rng.random(len(f)) < 0.3, rng.exponential(3, len(f)), 0.0), 1),
        )
        weather.to_csv(folder / "weather" / f"{day}.csv", index=False)
        n = SHIPMENTS_PER_DAY
        shipments = pd.DataFrame(
            {
                "shipment_id": [f"P{day:%Y%m%d}{i:05d}" for i in range(n)],
                "depot": rng.choice(DEPOTS, n),
                "hour": rng.integers(0, 24, n),
                "weight_kg": np.round(rng.gamma(2.0, 3.0, n), 2),
                "distance_km": np.round(rng.gamma(2.0, 20.0, n), 1),
                "express": rng.random(n) < 0.2,
            }
        )
        shipments.to_csv(folder / "shipments" / f"shipments_{day}.csv", index=False)
        rain = shipments.merge(weather, on=["depot", "hour"])["rain_mm"].to_numpy()
        logit = -2.2 + 0.03 * shipments["distance_km"] + 0.05 * shipments["weight_kg"] + 0.35 * rain
        late = rng.random(n) < 1 / (1 + np.exp(-logit))
        outcome_day = day + timedelta(days=1)
        if outcome_day != NO_DELIVERIES_DAY and outcome_day <= LAST:
            pd.DataFrame({"shipment_id": shipments["shipment_id"], "late": late}).to_csv(
                folder / "deliveries" / f"{outcome_day}.csv", index=False
            )
        day += timedelta(days=1)
    # Delivered an hour ago: complete by the tables' default completeness rule (unchanged for 60 s).
    an_hour_ago = time.time() - 3600
    for path in folder.rglob("*.csv"):
        os.utime(path, (an_hour_ago, an_hour_ago))


@pytest.fixture
def project_copy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The copy, and the hashes of the repo's Python files as copied."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, copy, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    python_files = _python_files(copy)
    shutil.copytree(DOMAIN / "dbt" / "staging", copy / "dbt_project" / "models" / "staging" / "parcels")
    shutil.copytree(DOMAIN / "dbt" / "marts", copy / "dbt_project" / "models" / "marts" / "parcels")
    shutil.copy(DOMAIN / "parcel_late.yaml", copy / "model_specs" / "parcel_late.yaml")
    return copy, python_files


def test_a_domain_added_as_files_runs_the_whole_chain_beside_the_loans(project_copy, tmp_path: Path, monkeypatch):
    project_copy, python_files = project_copy
    landing = tmp_path / "landing"
    _write_landing(landing)
    env = {
        **os.environ,
        **stores_under(tmp_path / "stores"),
        "NIGHTJAR_LANDING_DIR": str(landing),
        "NIGHTJAR_START_DATE": FIRST.isoformat(),
        "NIGHTJAR_END_DATE": LAST.isoformat(),
        "NIGHTJAR_ROWS_PER_DAY": "300",
        "NIGHTJAR_LABEL_DELAY_DAYS": "3",
        "NIGHTJAR_CODE_VERSION": "test",
    }
    for name in (
        "NIGHTJAR_MODEL_SPECS_DIR",
        "NIGHTJAR_DBT_PROJECT_DIR",
        "NIGHTJAR_BOOTSTRAP_DAYS",
        "NIGHTJAR_DRIFT_START",
        "NIGHTJAR_CONCEPT_DRIFT_START",
    ):
        env.pop(name, None)
    bin_dir = Path(sys.executable).parent
    dbt_dir = project_copy / "dbt_project"
    subprocess.run(
        [str(bin_dir / "dbt"), "parse", "--quiet", "--profiles-dir", ".", "--project-dir", "."],
        cwd=dbt_dir,
        env=env,
        check=True,
    )
    run = subprocess.run(
        [sys.executable, "-m", "jobs.bootstrap", "--scored-days", "2"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    assert _python_files(project_copy) == python_files  # not one Python file was added or changed

    import duckdb

    with duckdb.connect(env["NIGHTJAR_WAREHOUSE_PATH"], read_only=True) as db:
        days = (LAST - FIRST).days + 1
        assert db.execute("SELECT count(*) FROM raw_parcels.shipments").fetchone()[0] == days * SHIPMENTS_PER_DAY
        assert db.execute("SELECT count(*) FROM raw_parcels.weather").fetchone()[0] == days * len(DEPOTS) * 24
        by_day = dict(db.execute("SELECT delivered_date, count(*) FROM raw_parcels.deliveries GROUP BY 1").fetchall())
        assert NO_DELIVERIES_DAY not in by_day and len(by_day) == days - 2  # no file that day; none on the first
        joined = db.execute("SELECT count(*), count(rain_mm) FROM marts.fct_parcel_features").fetchone()
        assert joined[0] == days * SHIPMENTS_PER_DAY and joined[1] == joined[0]  # weather joined on depot + hour
        scored = db.execute(
            "SELECT ship_date, count(*), min(model_version), count(DISTINCT decision) FROM predictions.parcel_late "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [row[0] for row in scored] == [LAST - timedelta(days=1), LAST]
        assert all(row[1] == SHIPMENTS_PER_DAY and row[2] >= 1 for row in scored)
        decisions = {r[0] for r in db.execute("SELECT DISTINCT decision FROM predictions.parcel_late").fetchall()}
        assert decisions <= {"on_time", "check", "likely_late"} and decisions
        assert db.execute("SELECT count(*) FROM predictions.loan_default_risk").fetchone()[0] > 0  # the loans, beside

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the home is opened as Dagster's processes open it
    with dg.DagsterInstance.get() as instance:
        drifted = instance.get_materialized_partitions(dg.AssetKey(["parcel_late", "drift"]))
        assert drifted == {(LAST - timedelta(days=1)).isoformat(), LAST.isoformat()}
        event = instance.get_latest_materialization_event(dg.AssetKey(["parcel_late", "drift"]))
        assert "drift_share" in event.asset_materialization.metadata
    assert "parcel_late: champion = version 1" in run.stdout
