"""A new domain added as files only runs the whole chain next to the loan example, as a past window.

The project is copied to a temp dir; the parcel domain of ``tests/foreign_domain/`` (three landing tables with the
day only in the file names, a composite key, a day without an outcomes file, a context table joined in dbt, a
model spec) is added as files, with landing files written here. Then, in the copy and through Dagster, on real
dbt, DuckDB, MLflow and Evidently: `dbt parse` (as `make setup` does) and `python -m jobs.bootstrap --all-history
--train-as-of DAY` (as `make run ARGS=...` does for a user's own past data) ingest the window, train as of an early
day, score every later day and check its drift and, where labels are in, its quality: one range run per step. No
Python file of the copy differs from the repo's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from resources.settings import PROJECT_ROOT, stores_under

pytestmark = pytest.mark.slow

DOMAIN = Path(__file__).parent / "foreign_domain"
FIRST, LAST = date(2026, 2, 1), date(2026, 3, 12)
SHIPMENTS_PER_DAY = 160
DEPOTS = ("north", "south", "east")
NO_DELIVERIES_DAY = date(2026, 2, 20)
LABEL_DELAY_DAYS = 3
TRAIN_AS_OF = date(2026, 3, 7)  # the days after it are scored; those up to LAST - LABEL_DELAY_DAYS have labels
SCORED = [TRAIN_AS_OF + timedelta(days=n) for n in range(1, (LAST - TRAIN_AS_OF).days + 1)]
LABELED = [day for day in SCORED if day <= LAST - timedelta(days=LABEL_DELAY_DAYS)]
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
        "NIGHTJAR_LABEL_DELAY_DAYS": str(LABEL_DELAY_DAYS),
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
        [sys.executable, "-m", "jobs.bootstrap", "--all-history", "--train-as-of", TRAIN_AS_OF.isoformat()],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(run.stdout)  # the summary a user reads (shown with -s, and on a failure)
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
            "SELECT ship_date, count(*), count(DISTINCT shipment_id), min(model_version), count(DISTINCT decision) "
            "FROM predictions.parcel_late GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [row[0] for row in scored] == SCORED  # every day after the training day, none before
        assert all(row[1] == row[2] == SHIPMENTS_PER_DAY and row[3] >= 1 for row in scored)  # no duplicates
        decisions = {r[0] for r in db.execute("SELECT DISTINCT decision FROM predictions.parcel_late").fetchall()}
        assert decisions <= {"on_time", "check", "likely_late"} and decisions
        loans = db.execute(
            "SELECT count(DISTINCT application_date), count(*) - count(DISTINCT application_id) "
            "FROM predictions.loan_default_risk"
        ).fetchone()
        assert loans == (len(SCORED), 0)  # the loans, beside

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the home is opened as Dagster's processes open it
    days = {day.isoformat() for day in SCORED}
    with dg.DagsterInstance.get() as instance:
        for model in ("parcel_late", "loan_default_risk"):
            assert instance.get_materialized_partitions(dg.AssetKey([model, "drift"])) == days, model
            quality = instance.get_materialized_partitions(dg.AssetKey([model, "quality"]))
            assert quality == {day.isoformat() for day in LABELED}, model
        event = instance.get_latest_materialization_event(dg.AssetKey(["parcel_late", "drift"]))
        assert "drift_share" in event.asset_materialization.metadata
        assert event.asset_materialization.partition == LAST.isoformat()
        # What the command promised: one run per step over its range, not one per day.
        runs = instance.get_runs()
        assert Counter(r.job_name for r in runs) == {
            "ingest": 1,
            "train_parcel_late": 1,
            "train_loan_default_risk": 1,
            "nightly": 1,
            "monitor_parcel_late": 2,  # drift over the scored days, quality over the labeled ones
            "monitor_loan_default_risk": 2,
        }
        ranges = {(r.job_name, r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG)) for r in runs}
        assert ("ingest", FIRST.isoformat(), LAST.isoformat()) in ranges
        assert ("nightly", SCORED[0].isoformat(), LAST.isoformat()) in ranges
        assert ("monitor_parcel_late", SCORED[0].isoformat(), LAST.isoformat()) in ranges
        assert ("monitor_parcel_late", LABELED[0].isoformat(), LABELED[-1].isoformat()) in ranges
        training = [r for r in runs if r.job_name == "train_parcel_late"][0]
        assert training.run_config["ops"]["parcel_late__training_set"]["config"]["as_of"] == TRAIN_AS_OF.isoformat()
    summary = run.stdout
    assert f"train as of {TRAIN_AS_OF}" in summary
    assert f"parcel_late drift: checked {len(SCORED)}" in summary  # each scored day checked, by status
    assert f"parcel_late quality: checked {len(LABELED)}" in summary
    assert f"predictions.parcel_late: {len(SCORED) * SHIPMENTS_PER_DAY} rows" in summary
    assert f"parcel_late drift report of {LAST}" in summary
    assert "parcel_late: champion = version 1" in summary
