"""Where a checked day's Evidently report goes and how the UIs reach it, through the drift and quality assets on
real Evidently, DuckDB and MLflow (a SQLite store under tmp_path; a version registered on a run of its own).

Each test is standalone: its own warehouse, report folder and MLflow store (a copy of the empty store made once per
session, ``empty_mlflow_db`` of tests/ml_lab.py: creating one runs MLflow's migrations). Served days of a small
synthetic model: ``STABLE_DAY`` is like the days before it, on ``DRIFTED_DAY`` incomes double; the drift reference
is the trailing served days.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.ml.spec import ModelSpec
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from resources.registry import ModelRegistry, VersionInfo
from resources.reports import MonitoringReports
from resources.warehouse import DuckDBWarehouse
from tests.monitoring_lab import (
    PARTITIONS,
    check_evaluations,
    mart_keys,
    materialization_metadata,
    register_bare_version,
    run_monitoring,
    served_predictions,
    synthetic_spec,
)

MODEL = "report_risk"
SCORING_MART, TRAINING_MART = "fct_report_features", "fct_report_labeled"
FIRST_DAY = date(2025, 3, 1)
STABLE_DAY, DRIFTED_DAY = date(2025, 3, 6), date(2025, 3, 7)
ROWS_PER_DAY = 1000
BASE_URL = "http://127.0.0.1:8090"
MLFLOW_UI = "http://127.0.0.1:5000"
MARTS = mart_keys(SCORING_MART, TRAINING_MART)


def make_spec() -> ModelSpec:
    features = {"numeric": ["income"], "categorical": ["channel"]}
    monitoring = {"sample_rows": 2000, "reference_rows": 3000, "reference": {"trailing_days": 3}}
    return synthetic_spec(MODEL, SCORING_MART, TRAINING_MART, features, monitoring)


def day_rows(day: date) -> pd.DataFrame:
    """A day's applications with their score and (known later) outcome; incomes double from DRIFTED_DAY."""
    rng = np.random.default_rng([day.toordinal(), 3])
    income = rng.lognormal(10.9, 0.45, ROWS_PER_DAY) * (2.0 if day >= DRIFTED_DAY else 1.0)
    score = 1 / (1 + np.exp(2.0 + 0.8 * (np.log(income) - 10.9) + rng.normal(0, 0.3, ROWS_PER_DAY)))
    return pd.DataFrame(
        {
            "row_id": [f"{day:%Y%m%d}-{i:05d}" for i in range(ROWS_PER_DAY)],
            "applied_on": pd.Timestamp(day),
            "income": income,
            "channel": rng.choice(["web", "branch", "broker"], ROWS_PER_DAY, p=[0.6, 0.25, 0.15]),
            "score": score,
            "defaulted": rng.random(ROWS_PER_DAY) < score,
        }
    )


@pytest.fixture
def registry(tmp_path: Path, empty_mlflow_db: Path) -> ModelRegistry:
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=(tmp_path / "mlartifacts").as_uri(),
        ui_url=MLFLOW_UI,  # `make mlflow-ui`'s, as resources.build sets it
    )


@pytest.fixture
def version(registry: ModelRegistry) -> VersionInfo:
    """Version 1 of MODEL, registered on a run of its own (as training leaves one), validated at ROC AUC 0.7."""
    return register_bare_version(registry, MODEL)


@pytest.fixture
def warehouse(tmp_path: Path, version: VersionInfo) -> DuckDBWarehouse:
    """FIRST_DAY .. DRIFTED_DAY served by ``version``, every day labeled."""
    from assets.ml.inference import prediction_columns

    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    end = DRIFTED_DAY + timedelta(days=1)
    days = [FIRST_DAY + timedelta(days=i) for i in range((end - FIRST_DAY).days)]
    frame = pd.concat([day_rows(day) for day in days], ignore_index=True)
    warehouse.replace_window(
        f"marts.{SCORING_MART}", "applied_on", FIRST_DAY, end, [frame.drop(columns=["score", "defaulted"])]
    )
    predictions = served_predictions(frame, MODEL, version.version, scored_at="2025-03-08")
    warehouse.replace_window(
        f"predictions.{MODEL}", "applied_on", FIRST_DAY, end, [predictions], prediction_columns(make_spec())
    )
    labeled = frame.drop(columns=["score"]).assign(labeled_on=frame["applied_on"] + pd.Timedelta(days=3))
    warehouse.replace_window(f"marts.{TRAINING_MART}", "applied_on", FIRST_DAY, end, [labeled])
    return warehouse


@pytest.fixture
def reports(tmp_path: Path) -> MonitoringReports:
    return MonitoringReports(directory=str(tmp_path / "reports"), retention_days=30, base_url=BASE_URL)


def _materialize(asset: str, day: date, warehouse, registry, reports) -> dg.ExecuteInProcessResult:
    return run_monitoring(
        asset, make_spec(), MARTS, day, {"warehouse": warehouse, "registry": registry, "reports": reports}
    )


def _run_page(registry: ModelRegistry, version: VersionInfo) -> str:
    experiment_id = registry.client().get_run(version.run_id).info.experiment_id
    return f"{MLFLOW_UI}/#/experiments/{experiment_id}/runs/{version.run_id}?workflowType=machine_learning"


def test_a_checked_days_report_is_stored_once_compactly_and_linked(warehouse, registry, reports, version):
    result = _materialize("drift", STABLE_DAY, warehouse, registry, reports)
    assert result.success
    meta = materialization_metadata(result, MODEL, "drift")
    assert meta["status"] == "checked" and meta["day"] == STABLE_DAY.isoformat()
    assert meta["model_version"] == version.version

    # One file per model, kind and day: Evidently's snapshot, well under the 0.2 MB a model-day may take.
    stored = Path(meta["report_path"])
    assert stored == Path(reports.directory) / MODEL / "drift" / f"{STABLE_DAY}.json.gz"
    assert 1_000 < stored.stat().st_size < 200_000
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary file left beside it
    # No copy on the version's MLflow run (one that could never be pruned); the run is linked for its figures.
    assert registry.client().list_artifacts(version.run_id, "monitoring") == []
    assert meta["mlflow_run"] == _run_page(registry, version)
    # The link opens the page the reports server renders from it (`make dev`, `make reports`).
    assert meta["report"] == f"{BASE_URL}/{MODEL}/drift/{STABLE_DAY}.html"
    for check in check_evaluations(result).values():
        assert check.passed, check.description
        assert check.metadata["report"].value == meta["report"]
        assert check.metadata["day"].value == STABLE_DAY.isoformat()
    assert meta["report"] in check_evaluations(result)["data_drift"].description

    # Checked again, the day's report is replaced: still one file.
    assert _materialize("drift", STABLE_DAY, warehouse, registry, reports).success
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]


def test_a_failed_drift_check_names_the_day_and_links_the_report(warehouse, registry, reports, version):
    result = _materialize("drift", DRIFTED_DAY, warehouse, registry, reports)
    assert result.success  # a failed check is not a failed run
    meta = materialization_metadata(result, MODEL, "drift")
    check = check_evaluations(result)["data_drift"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "income" in check.description
    assert DRIFTED_DAY.isoformat() in check.description
    assert meta["report"] in check.description
    assert check.metadata["day"].value == DRIFTED_DAY.isoformat()
    for link in ("report", "report_path", "mlflow_run"):
        assert check.metadata[link].value == meta[link]


def _served(reports: MonitoringReports, path: str) -> tuple[int, str]:
    """GET ``path`` from the reports server over ``reports.directory`` (a free port, in this process)."""
    import threading
    import urllib.error
    import urllib.request
    from functools import partial
    from http.server import ThreadingHTTPServer

    from resources.report_server import ReportsHandler

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(ReportsHandler, directory=reports.directory))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}{path}", timeout=60) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, ""
    finally:
        server.shutdown()
        server.server_close()


def test_the_report_page_names_the_model_version_day_and_reference(warehouse, registry, reports, version):
    result = _materialize("drift", DRIFTED_DAY, warehouse, registry, reports)
    meta = materialization_metadata(result, MODEL, "drift")
    title = f"Drift of {MODEL} version {version.version} on {DRIFTED_DAY}"
    status, page = _served(reports, meta["report"].removeprefix(BASE_URL))
    assert status == 200
    head, body = page.split("<body>", 1)
    assert f"<title>{title}</title>" in head
    header = body.split("</header>", 1)[0]
    assert "<h1" in header and title in header
    for fact in (
        f"<dt>model</dt><dd>{MODEL}</dd>",
        f"<dt>version</dt><dd>{version.version}</dd>",
        f"<dt>day</dt><dd>{DRIFTED_DAY}</dd>",
        f"<dt>reference</dt><dd>{meta['reference']}</dd>",
    ):
        assert fact in header
    assert meta["reference"].startswith("trailing_days 3")
    assert "drawDashboard" in body and "income" in body  # Evidently's dashboard follows, the column in it

    # The folder lists the day's page; nothing outside the folder is served.
    status, listing = _served(reports, f"/{MODEL}/drift/")
    assert status == 200 and f'href="{DRIFTED_DAY}.html"' in listing
    assert _served(reports, f"/{MODEL}/drift/2020-01-01.html")[0] == 404
    assert _served(reports, "/../../etc/passwd")[0] == 404


def test_a_stored_report_renders_to_a_page_without_a_server(tmp_path, warehouse, registry, reports, version):
    from resources.report_server import main

    meta = materialization_metadata(_materialize("drift", STABLE_DAY, warehouse, registry, reports), MODEL, "drift")
    main(["render", meta["report_path"], "-o", str(tmp_path / "page.html")])
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert f"<title>Drift of {MODEL} version {version.version} on {STABLE_DAY}</title>" in page
    with pytest.raises(SystemExit, match="not a stored report"):
        main(["render", str(tmp_path / "page.html")])


def test_the_quality_report_is_stored_and_named_alike(warehouse, registry, reports, version):
    result = _materialize("quality", STABLE_DAY, warehouse, registry, reports)
    assert result.success
    meta = materialization_metadata(result, MODEL, "quality")
    assert meta["status"] == "checked"
    assert meta["report"] == f"{BASE_URL}/{MODEL}/quality/{STABLE_DAY}.html"
    assert Path(meta["report_path"]).stat().st_size < 200_000
    status, page = _served(reports, meta["report"].removeprefix(BASE_URL))
    assert status == 200 and f"<title>Quality of {MODEL} version {version.version} on {STABLE_DAY}</title>" in page
    for check in check_evaluations(result).values():
        assert STABLE_DAY.isoformat() in check.description and meta["report"] in check.description


def test_without_a_base_url_no_file_link_is_made(warehouse, registry, tmp_path, version):
    """A browser will not open a file:// link from the Dagster UI: without a served folder there is no `report`
    link; the stored file is metadata of its own, and the check says how to open it."""
    reports = MonitoringReports(directory=str(tmp_path / "unserved"))
    result = _materialize("drift", STABLE_DAY, warehouse, registry, reports)
    meta = materialization_metadata(result, MODEL, "drift")
    assert "report" not in meta
    assert Path(meta["report_path"]).is_file()
    check = check_evaluations(result)["data_drift"]
    assert meta["report_path"] in check.description and "resources.report_server render" in check.description


def test_bootstrap_prints_not_checked_as_not_checked(warehouse, registry, reports):
    """`make run`'s summary says "all checks passed" only for checks that were judged."""
    from jobs.bootstrap import check_statuses

    warehouse.query(f"DELETE FROM marts.{TRAINING_MART} WHERE applied_on >= DATE '{STABLE_DAY}'")
    waiting = _materialize("quality", STABLE_DAY, warehouse, registry, reports)
    assert waiting.success and materialization_metadata(waiting, MODEL, "quality")["status"] == "waiting"
    line = check_statuses(waiting.get_asset_check_evaluations())
    assert "all checks passed" not in line
    assert line.startswith("auc_drop not checked (labels due on") and "calibration not checked (" in line

    judged = _materialize("drift", STABLE_DAY, warehouse, registry, reports)
    assert check_statuses(judged.get_asset_check_evaluations()) == "all checks passed"
    drifted = _materialize("drift", DRIFTED_DAY, warehouse, registry, reports)
    assert "data_drift failed (ERROR)" in check_statuses(drifted.get_asset_check_evaluations())


def test_the_model_links_its_mlflow_run_in_the_local_ui(tmp_path, monkeypatch):
    """The model asset's `mlflow_run` is a link the Dagster UI opens: the tracking server's page, or the local
    store's UI (NIGHTJAR_MLFLOW_UI_URL), never the store's file path as text."""
    from resources.build import build_resources
    from resources.registry import ModelRegistry
    from tests.stores import point_stores_at

    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_MLFLOW_UI_URL="http://127.0.0.1:5100")
    registry = build_resources(settings)["registry"]
    assert (
        registry.ui_link("abc", "3") == "http://127.0.0.1:5100/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    server = ModelRegistry(tracking_uri="http://mlflow.internal:5000", ui_url="http://127.0.0.1:5100")
    assert server.ui_link("abc", "3") == (
        "http://mlflow.internal:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    assert ModelRegistry(tracking_uri="sqlite:///m.db").ui_link("abc", "3") == "sqlite:///m.db experiment 3 run abc"


# --- many days in one run (a backfill launched as one run) ----------------------------------------------------------


def _range_run(asset: str, first: date, last: date, resources: dict) -> dg.ExecuteInProcessResult:
    from assets.monitoring.drift_assets import build_drift_asset
    from assets.monitoring.quality_assets import build_quality_asset

    build = {"drift": build_drift_asset, "quality": build_quality_asset}[asset]
    return dg.materialize(
        [build(make_spec(), MARTS, PARTITIONS)],
        resources=resources,
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        raise_on_error=False,
    )


def _by_partition(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    return {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(f"{MODEL}__{asset}")
    }


def test_a_range_run_records_each_day_as_a_day_run_does_and_names_the_failed_days(warehouse, registry, reports):
    """Each day's materialization carries its own figures (the plots over partitions stay true), the monitoring
    table gets the rows one run per day gives, and a check fails at the worst day's severity naming the days."""
    resources = {"warehouse": warehouse, "registry": registry, "reports": reports}
    result = _range_run("drift", STABLE_DAY, DRIFTED_DAY, resources)
    assert result.success
    days = _by_partition(result, "drift")
    assert sorted(days) == [STABLE_DAY.isoformat(), DRIFTED_DAY.isoformat()]
    stable, drifted = days[STABLE_DAY.isoformat()], days[DRIFTED_DAY.isoformat()]
    assert stable["day"] == STABLE_DAY.isoformat() and drifted["day"] == DRIFTED_DAY.isoformat()
    assert stable["drifted_columns"] == "none" and "income" in drifted["drifted_columns"]
    check = check_evaluations(result)["data_drift"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith("1 of 2 days failed: ") and str(DRIFTED_DAY) in check.description
    assert check.metadata["failed_days"].value == DRIFTED_DAY.isoformat()
    ranged = warehouse.query(f"SELECT * FROM monitoring.{MODEL}_drift ORDER BY day, column_name")

    for day in (STABLE_DAY, DRIFTED_DAY):  # the same days, one run each
        single = _range_run("drift", day, day, resources)
        assert single.success and set(_by_partition(single, "drift")) == {day.isoformat()}
    one_by_one = warehouse.query(f"SELECT * FROM monitoring.{MODEL}_drift ORDER BY day, column_name")
    assert ranged.equals(one_by_one) and len(ranged) > 2


def test_a_day_not_scored_yet_is_left_unmaterialized_not_a_failed_range_run(warehouse, registry, reports):
    resources = {"warehouse": warehouse, "registry": registry, "reports": reports}
    after = DRIFTED_DAY + timedelta(days=1)  # no predictions that day
    result = _range_run("quality", DRIFTED_DAY, after, resources)
    assert result.success and set(_by_partition(result, "quality")) == {DRIFTED_DAY.isoformat()}
    for check in check_evaluations(result).values():  # the unscored day is not a failed day
        assert check.metadata["days"].value == 2 and str(after) not in check.metadata["failed_days"].value
    # Only unscored days: the run fails.
    assert not _range_run("quality", after, after + timedelta(days=1), resources).success


def test_a_range_spread_over_processes_gives_what_one_process_gives(warehouse, registry, reports, monkeypatch):
    """Evidently's part of each day runs in a pool of processes (assets/monitoring/day_pool.py); the days' figures,
    verdicts, table rows and reports are those of the same range run in one process, an unscored day included."""
    resources = {"warehouse": warehouse, "registry": registry, "reports": reports}
    first, last = STABLE_DAY, DRIFTED_DAY + timedelta(days=1)  # the last day is not scored

    def ranged(workers: str) -> tuple[dict, pd.DataFrame, dict]:
        monkeypatch.setenv("NIGHTJAR_MONITORING_WORKERS", workers)
        result = _range_run("drift", first, last, resources)
        assert result.success
        table = warehouse.query(f"SELECT * FROM monitoring.{MODEL}_drift ORDER BY day, column_name")
        checks = {name: (c.passed, c.metadata["failed_days"].value) for name, c in check_evaluations(result).items()}
        return _by_partition(result, "drift"), table, checks

    pooled_days, pooled_table, pooled_checks = ranged("2")
    alone_days, alone_table, alone_checks = ranged("0")
    assert sorted(pooled_days) == sorted(alone_days) and last.isoformat() not in pooled_days
    for day, figures in pooled_days.items():
        for name in ("status", "drift_share", "drifted_columns", "score_drift", "sample_rows", "report_path"):
            assert figures.get(name) == alone_days[day].get(name), (day, name)
    assert pooled_checks == alone_checks and not pooled_checks["data_drift"][0]
    pd.testing.assert_frame_equal(pooled_table, alone_table)
