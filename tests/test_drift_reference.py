"""Monitoring configured per spec, on real Evidently and DuckDB, through the drift and quality assets themselves.

A synthetic model whose scoring mart has a column constant within a day (the day's temperature, following the
seasons, plus the day's weather) and one constant within a weekday, next to ordinary per-row columns. Each test is
standalone: its own warehouse and report folder under tmp_path, no MLflow (a stand-in registry; the training
reference is handed to the asset as MLflow would hand it). Dates are fixed and far from today, so the wall clock
only matters where the test is about it (report retention), and there only by whole days of margin.
"""

from __future__ import annotations

import math
import os
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.ml.spec import ModelSpec
from resources.reports import MonitoringReports
from resources.warehouse import DuckDBWarehouse
from tests.monitoring_lab import (
    check_evaluations,
    mart_keys,
    materialization_metadata,
    run_monitoring,
    served_predictions,
    synthetic_spec,
)
from tests.stand_in_registry import EveryVersionRegistry

MODEL = "weather_risk"
SCORING_MART, TRAINING_MART = "fct_weather_features", "fct_weather_labeled"
DAY = date(2025, 5, 20)  # spring: the temperature climbs about 0.17 degrees a day
HISTORY_DAYS = 35  # served days before DAY
TRAINING_HOLDOUT = (date(2025, 1, 6), date(2025, 1, 20))  # what the version was validated on: winter
ROWS_PER_DAY = 2000
LABEL_LAG_DAYS = 7
VERSION = 3
MARTS = mart_keys(SCORING_MART, TRAINING_MART)


def temperature(day: date) -> float:
    """The day's temperature: the seasons (about 2 degrees in January, 22 in July) plus the day's weather."""
    seasonal = 12.0 - 10.0 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.0)
    weather = np.random.default_rng([day.toordinal(), 1]).normal(0.0, 1.0)
    return round(seasonal + weather, 1)


def day_rows(day: date) -> pd.DataFrame:
    """A day of scoring rows and their scores: temperature and weekday constant within the day, the rest per row
    and drawn the same way every day."""
    rng = np.random.default_rng([day.toordinal(), 2])
    income = rng.lognormal(10.9, 0.45, ROWS_PER_DAY)
    return pd.DataFrame(
        {
            "row_id": [f"{day:%Y%m%d}-{i:05d}" for i in range(ROWS_PER_DAY)],
            "applied_on": pd.Timestamp(day),
            "temperature": temperature(day),
            "weekday": day.strftime("%a"),
            "income": income,
            "channel": rng.choice(["web", "branch", "broker"], ROWS_PER_DAY, p=[0.6, 0.25, 0.15]),
            "score": 1 / (1 + np.exp(2.0 + 0.8 * (np.log(income) - 10.9) + rng.normal(0, 0.3, ROWS_PER_DAY))),
        }
    )


def make_spec(**monitoring) -> ModelSpec:
    features = {"numeric": ["temperature", "income"], "categorical": ["weekday", "channel"]}
    monitoring = {"sample_rows": 2000, "reference_rows": 5000, **monitoring}
    return synthetic_spec(MODEL, SCORING_MART, TRAINING_MART, features, monitoring)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    """Served days DAY - HISTORY_DAYS .. DAY, scored by VERSION; labels up to LABEL_LAG_DAYS before the newest."""
    from assets.ml.inference import prediction_columns

    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    spec = make_spec()
    start = DAY - timedelta(days=HISTORY_DAYS)
    frame = pd.concat([day_rows(start + timedelta(days=i)) for i in range(HISTORY_DAYS + 1)], ignore_index=True)
    end = DAY + timedelta(days=1)
    warehouse.replace_window(f"marts.{SCORING_MART}", "applied_on", start, end, [frame.drop(columns=["score"])])
    predictions = served_predictions(frame, MODEL, VERSION, scored_at="2025-06-01")
    warehouse.replace_window(f"predictions.{MODEL}", "applied_on", start, end, [predictions], prediction_columns(spec))
    # Labels arrive LABEL_LAG_DAYS after the application day: the newest label day is DAY - 1.
    labeled = frame[frame["applied_on"] <= pd.Timestamp(DAY - timedelta(days=1 + LABEL_LAG_DAYS))].drop(
        columns=["score"]
    )
    labeled = labeled.assign(
        labeled_on=labeled["applied_on"] + pd.Timedelta(days=LABEL_LAG_DAYS),
        defaulted=np.random.default_rng(5).random(len(labeled)) < 0.1,
    )
    warehouse.replace_window(f"marts.{TRAINING_MART}", "labeled_on", start, end, [labeled])
    return warehouse


@pytest.fixture
def training_reference(monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The version's reference sample as MLflow returns it: holdout rows of the winter it was trained in."""
    import assets.ml.mlflow_logging

    first, last = TRAINING_HOLDOUT
    rows = pd.concat([day_rows(first + timedelta(days=i)) for i in range((last - first).days + 1)], ignore_index=True)
    reference = rows.sample(n=5000, random_state=0).drop(columns=["row_id", "applied_on"]).reset_index(drop=True)
    monkeypatch.setattr(assets.ml.mlflow_logging, "load_reference", lambda registry, run_id: reference)
    return reference


def _materialize(
    asset: str, spec: ModelSpec, warehouse: DuckDBWarehouse, reports: MonitoringReports, day: date = DAY
) -> dg.ExecuteInProcessResult:
    # never opened: nothing of MLflow is reached (a file under the reports' tmp folder if it were)
    registry = EveryVersionRegistry(tracking_uri=f"sqlite:///{Path(reports.directory).parent / 'mlflow.db'}")
    return run_monitoring(asset, spec, MARTS, day, {"warehouse": warehouse, "reports": reports, "registry": registry})


def _column_rows(meta: dict) -> dict[str, tuple[str, str]]:
    """The `columns` table of a drift materialization: each checked column's method and threshold, as shown."""
    rows = [line.strip("|").split("|") for line in meta["columns"].splitlines()[2:]]
    return {cells[0].strip(): (cells[1].strip(), cells[2].strip()) for cells in rows}


@pytest.fixture
def reports(tmp_path: Path) -> MonitoringReports:
    return MonitoringReports(directory=str(tmp_path / "reports"), retention_days=30)


# A column constant within a day, measured in the reference's spread: today's temperature against the last two
# weeks' is within about 2 of their standard deviations; against a winter holdout it is many.
SEASONAL = {"exclude": ["weekday"], "column_thresholds": {"temperature": 3.0}}


def test_a_seasonal_column_passes_against_trailing_days_and_alarms_against_training(
    warehouse, reports, training_reference
):
    trailing = _materialize("drift", make_spec(reference={"trailing_days": 14}, **SEASONAL), warehouse, reports)
    assert trailing.success
    meta = materialization_metadata(trailing, MODEL, "drift")
    checks = check_evaluations(trailing)
    assert checks["data_drift"].passed and checks["score_drift"].passed, {k: c.description for k, c in checks.items()}
    assert meta["drifted_columns"] == "none"
    assert meta["drift_temperature"] < 3.0
    assert meta["reference_days"] == 14 and meta["reference"].startswith("trailing_days 14")
    assert meta["reference_rows"] == 14 * math.ceil(5000 / 14)  # the same share of every served day
    assert meta["reference_versions"] == str(VERSION)

    training = _materialize("drift", make_spec(**SEASONAL), warehouse, reports)  # reference: training (default)
    meta = materialization_metadata(training, MODEL, "drift")
    check = check_evaluations(training)["data_drift"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert meta["drifted_columns"] == "temperature" and "temperature" in check.description
    assert meta["drift_temperature"] > 6.0
    assert meta["reference"].startswith(f"training: version {VERSION}'s reference sample")


def test_excluded_columns_are_not_checked_and_per_column_methods_show_in_the_metadata(warehouse, reports):
    spec = make_spec(reference={"same_weekday": 4}, exclude=["temperature"], column_methods={"income": "psi"})
    result = _materialize("drift", spec, warehouse, reports)
    assert result.success
    meta = materialization_metadata(result, MODEL, "drift")
    assert _column_rows(meta) == {
        "income": ("psi", "0.1"),
        "weekday": ("jensenshannon", "0.1"),
        "channel": ("jensenshannon", "0.1"),
    }
    assert "drift_temperature" not in meta and "temperature" not in meta["columns"]
    assert meta["excluded_columns"] == "temperature" and meta["checked_columns"] == 3
    assert "| income | psi | 0.1 |" in meta["columns"]
    # The weekday is the same as on the reference days (the same weekday of the last 4 weeks): no drift at all.
    assert meta["drift_weekday"] == pytest.approx(0.0, abs=1e-9)
    assert meta["reference_days"] == 4
    assert check_evaluations(result)["data_drift"].passed
    stored = warehouse.query(f"SELECT column_name, method, reference FROM monitoring.{MODEL}_drift ORDER BY 1")
    assert stored.to_dict("records") == [
        {"column_name": "channel", "method": "jensenshannon", "reference": "same_weekday"},
        {"column_name": "income", "method": "psi", "reference": "same_weekday"},
        {"column_name": "weekday", "method": "jensenshannon", "reference": "same_weekday"},
    ]


def test_the_weekday_column_would_alarm_against_trailing_days(warehouse, reports):
    """Why the spec must choose: the same weekday column, checked against the last 7 days, always drifts."""
    spec = make_spec(reference={"trailing_days": 7}, columns=["weekday", "channel"])
    result = _materialize("drift", spec, warehouse, reports)
    meta = materialization_metadata(result, MODEL, "drift")
    assert meta["drifted_columns"] == "weekday"
    assert set(_column_rows(meta)) == {"weekday", "channel"}


def test_a_served_days_reference_with_no_served_day_before_waits(warehouse, reports):
    spec = make_spec(reference={"trailing_days": 14})
    first = DAY - timedelta(days=HISTORY_DAYS)
    result = _materialize("drift", spec, warehouse, reports, day=first)
    assert result.success
    meta = materialization_metadata(result, MODEL, "drift")
    assert meta["status"] == "no_reference" and f"no served day before {first}" in meta["reason"]
    checks = check_evaluations(result)
    assert set(checks) == {"data_drift", "score_drift", "empty_inputs"}
    assert all(c.passed and c.description.startswith("not checked: no served day") for c in checks.values())


def test_quality_of_a_day_without_labels_waits_with_the_due_date(warehouse, reports):
    result = _materialize("quality", make_spec(), warehouse, reports)
    assert result.success
    meta = materialization_metadata(result, MODEL, "quality")
    due = DAY + timedelta(days=LABEL_LAG_DAYS)
    assert meta["status"] == "waiting"
    assert meta["labels"] == f"labels due on {due.isoformat()}"
    assert meta["labels_due"] == due.isoformat() and meta["label_lag_days"] == LABEL_LAG_DAYS
    assert meta["labels_overdue"] is False
    checks = check_evaluations(result)  # nothing fails, nothing alerts: the checks say they were not checked, and why
    assert set(checks) == {"auc_drop", "calibration"}
    for check in checks.values():
        assert check.passed and check.description == f"not checked: labels due on {due} in {TRAINING_MART}"
        assert check.metadata["level"].value == "not_checked"
    assert not any(e.event_type_value == "STEP_FAILURE" for e in result.all_events)
    assert not (Path(reports.directory) / MODEL / "quality").exists() or not any(
        (Path(reports.directory) / MODEL / "quality").iterdir()
    )


def test_quality_before_any_label_says_labels_are_not_in(warehouse, reports):
    warehouse.query(f"DELETE FROM marts.{TRAINING_MART}")
    result = _materialize("quality", make_spec(), warehouse, reports)
    assert result.success
    meta = materialization_metadata(result, MODEL, "quality")
    assert meta["status"] == "waiting" and meta["labels_due"] == "unknown"
    assert meta["labels"].startswith("labels not in yet")


def test_checking_an_old_day_keeps_newer_reports_and_prunes_by_the_wall_clock(warehouse, reports):
    """Retention counts from today (the wall clock), never from the day checked."""
    folder = Path(reports.directory) / MODEL / "drift"
    folder.mkdir(parents=True)
    today = date.today()
    newer = [folder / f"{today - timedelta(days=1)}.json.gz", folder / f"{DAY + timedelta(days=1)}.json.gz"]
    expired = folder / f"{today - timedelta(days=60)}.json.gz"
    for path in [*newer, expired]:
        path.write_bytes(b"")
    long_ago = time.time() - 60 * 86_400
    os.utime(expired, (long_ago, long_ago))  # written 60 days ago, about a day 60 days ago: past 30 days' retention
    os.utime(newer[1], (long_ago, long_ago))  # an old day's report written long ago: gone too, it is past both

    spec = make_spec(reference={"trailing_days": 7})
    result = _materialize("drift", spec, warehouse, reports, day=DAY)  # DAY is long before today
    assert result.success
    assert newer[0].exists()
    assert not expired.exists() and not newer[1].exists()
    report = Path(materialization_metadata(result, MODEL, "drift")["report_path"])
    assert report == folder / f"{DAY}.json.gz" and report.exists()  # written now: kept for the run that links it


def test_prune_counts_from_today_not_from_the_day_checked(tmp_path):
    """Two days of margin either side of the cut-off: the test holds across a midnight."""
    reports = MonitoringReports(directory=str(tmp_path), retention_days=30)
    folder = tmp_path / MODEL / "drift"
    folder.mkdir(parents=True)
    today = date.today()
    long_ago = time.time() - 400 * 86_400
    kept = {today: None, today - timedelta(days=28): long_ago, date(2025, 5, 21): None}  # in the window, or new
    gone = {today - timedelta(days=32): long_ago}
    for day, written in {**kept, **gone}.items():
        path = folder / f"{day}.json.gz"
        path.write_bytes(b"x")
        if written is not None:
            os.utime(path, (written, written))
    # An HTML report an earlier version wrote goes alike; a file that is not a day's report stays.
    legacy = folder / f"{today - timedelta(days=40)}.html"
    legacy.write_text("<html></html>")
    os.utime(legacy, (long_ago, long_ago))
    (folder / "notes.html").write_text("not a day")
    assert reports.prune(MODEL, "drift") == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(f"{d}.json.gz" for d in kept), "notes.html"])


def test_a_day_with_an_empty_feature_gets_a_verdict_naming_it(warehouse, reports):
    """A day whose temperature is all NULL (its weather file declared missing_day: empty): Evidently cannot compare
    an empty column. The drift asset still checks the other features and fails `empty_inputs` naming the column."""
    day_frame = day_rows(DAY).drop(columns=["score"]).assign(temperature=np.nan)
    warehouse.replace_window(f"marts.{SCORING_MART}", "applied_on", DAY, DAY + timedelta(days=1), [day_frame])
    spec = make_spec(reference={"trailing_days": 7})
    result = _materialize("drift", spec, warehouse, reports)
    assert result.success
    checks = check_evaluations(result)
    empty = checks["empty_inputs"]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN
    assert "'temperature': no value in any of the day's" in empty.description
    meta = materialization_metadata(result, MODEL, "drift")
    assert meta["empty_columns"] == "temperature"
    assert "temperature" not in _column_rows(meta) and {"income", "channel"} <= set(_column_rows(meta))
    assert checks["data_drift"].description.startswith(f"{DAY}: ")  # judged on the features that have values
    # An ordinary day: the check passes.
    ordinary = _materialize("drift", spec, warehouse, reports, day=DAY - timedelta(days=1))
    assert check_evaluations(ordinary)["empty_inputs"].passed


def test_the_drift_metadata_a_person_reads_is_tables_words_and_numbers(warehouse, reports):
    """No JSON blob on a drift materialization: each column's method and threshold are rows of the `columns` table,
    figures are numbers (Dagster plots them over partitions), the rest words or links."""
    spec = make_spec(reference={"same_weekday": 4}, column_methods={"income": "psi"})
    result = _materialize("drift", spec, warehouse, reports)
    [materialization] = result.asset_materializations_for_node(f"{MODEL}__drift")
    blobs = {k for k, v in materialization.metadata.items() if isinstance(v, dg.JsonMetadataValue)}
    assert blobs == set()  # no entry is machine-read: none is exempt
    assert "column_methods" not in materialization.metadata and "column_thresholds" not in materialization.metadata
    assert isinstance(materialization.metadata["columns"], dg.MarkdownMetadataValue)
    columns = _column_rows(materialization_metadata(result, MODEL, "drift"))
    assert columns["income"] == ("psi", "0.1")
    figures = ["drift_share", "score_drift", "reference_rows", "rows", *(f"drift_{c}" for c in columns)]
    assert all(isinstance(materialization.metadata[k], dg.FloatMetadataValue | dg.IntMetadataValue) for k in figures)
