"""The quality checks judge enough labeled rows: a day of few labels is pooled with the days before it that the
same version scored (up to ``quality_window_days``), and a drop or gap the rows cannot tell from noise passes.

Real Evidently, DuckDB and MLflow (a SQLite store under tmp_path); a small synthetic model whose score is the true
probability of its label, 400 labeled rows a day, version 1 validated at the day's own ROC AUC.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from resources.registry import ModelRegistry
from resources.reports import MonitoringReports
from resources.warehouse import DuckDBWarehouse
from tests.monitoring_lab import (
    check_evaluations,
    mart_keys,
    materialization_metadata,
    register_bare_version,
    run_monitoring,
    served_predictions,
    synthetic_spec,
)

MODEL = "pooled_risk"
SCORING_MART, TRAINING_MART = "fct_pooled_features", "fct_pooled_labeled"
FIRST_DAY, CHECKED_DAY = date(2025, 4, 1), date(2025, 4, 8)
ROWS_PER_DAY = 400
MARTS = mart_keys(SCORING_MART, TRAINING_MART)


def _spec(min_rows: int, window_days: int):
    features = {"numeric": ["income"], "categorical": ["channel"]}
    monitoring = {"quality_min_rows": min_rows, "quality_window_days": window_days}
    return synthetic_spec(MODEL, SCORING_MART, TRAINING_MART, features, monitoring)


def _day_rows(day: date) -> pd.DataFrame:
    rng = np.random.default_rng([day.toordinal(), 9])
    income = rng.lognormal(10.9, 0.45, ROWS_PER_DAY)
    score = 1 / (1 + np.exp(1.5 + 1.5 * (np.log(income) - 10.9) / 0.45))
    return pd.DataFrame(
        {
            "row_id": [f"{day:%Y%m%d}-{i:04d}" for i in range(ROWS_PER_DAY)],
            "applied_on": pd.Timestamp(day),
            "income": income,
            "channel": rng.choice(["web", "branch"], ROWS_PER_DAY),
            "score": score,
            "defaulted": (rng.random(ROWS_PER_DAY) < score).astype(int),
        }
    )


@pytest.fixture
def resources(tmp_path: Path, empty_mlflow_db: Path) -> dict:
    """FIRST_DAY .. CHECKED_DAY served and labeled; version 2 scored the first two days, version 1 the others."""
    from assets.ml.inference import prediction_columns

    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    registry = ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "mlartifacts").as_uri()
    )
    register_bare_version(registry, MODEL, roc_auc=0.80)
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    end = CHECKED_DAY + timedelta(days=1)
    days = [FIRST_DAY + timedelta(days=i) for i in range((end - FIRST_DAY).days)]
    frame = pd.concat([_day_rows(day) for day in days], ignore_index=True)
    warehouse.replace_window(
        f"marts.{SCORING_MART}", "applied_on", FIRST_DAY, end, [frame.drop(columns=["score", "defaulted"])]
    )
    versions = np.where(frame["applied_on"] < pd.Timestamp(FIRST_DAY + timedelta(days=2)), 2, 1)
    predictions = served_predictions(frame, MODEL, 1, scored_at="2025-04-09").assign(model_version=versions)
    warehouse.replace_window(
        f"predictions.{MODEL}", "applied_on", FIRST_DAY, end, [predictions], prediction_columns(_spec(1000, 7))
    )
    labeled = frame.drop(columns=["score"]).assign(labeled_on=frame["applied_on"] + pd.Timedelta(days=1))
    warehouse.replace_window(f"marts.{TRAINING_MART}", "applied_on", FIRST_DAY, end, [labeled])
    reports = MonitoringReports(directory=str(tmp_path / "reports"), retention_days=30)
    return {"warehouse": warehouse, "registry": registry, "reports": reports}


def test_a_day_of_few_labels_is_pooled_with_the_days_before_it_until_min_rows(resources):
    result = run_monitoring("quality", _spec(min_rows=1000, window_days=7), MARTS, CHECKED_DAY, resources)
    assert result.success
    metadata = materialization_metadata(result, MODEL, "quality")
    # 400 a day: the checked day and the two before it reach 1,000 rows.
    assert (metadata["pooled_days"], metadata["pooled_from"]) == (3, (CHECKED_DAY - timedelta(days=2)).isoformat())
    assert (metadata["labeled_rows"], metadata["day_labeled_rows"]) == (3 * ROWS_PER_DAY, ROWS_PER_DAY)
    assert metadata["roc_auc_low"] < metadata["roc_auc"] < metadata["roc_auc_high"]
    checks = check_evaluations(result)
    assert "3 days pooled" in checks["auc_drop"].description


def test_pooling_stops_at_the_window_and_never_takes_another_versions_days(resources):
    # Asking for more rows than the window holds: the 7 days back reach the first two days, scored by version 2.
    result = run_monitoring("quality", _spec(min_rows=100_000, window_days=8), MARTS, CHECKED_DAY, resources)
    metadata = materialization_metadata(result, MODEL, "quality")
    assert metadata["pooled_days"] == 8 and metadata["labeled_rows"] == 6 * ROWS_PER_DAY  # version 1's days only


def test_a_drop_the_rows_cannot_tell_from_noise_passes_and_a_real_one_is_graded(resources):
    """One day of 400 rows: a measured drop of 0.035 (a WARN by size) is inside its interval and passes, saying
    so; a drop of 0.15 is outside it and fails at ERROR."""
    from sklearn.metrics import roc_auc_score

    day = _day_rows(CHECKED_DAY)
    measured = roc_auc_score(day["defaulted"], day["score"])
    spec = _spec(min_rows=100, window_days=1)
    for drop, passed in ((0.035, True), (0.15, False)):
        resources["registry"].set_version_tags(MODEL, 1, {"metric.roc_auc": measured + drop})
        result = run_monitoring("quality", spec, MARTS, CHECKED_DAY, resources)
        metadata = materialization_metadata(result, MODEL, "quality")
        auc_drop = check_evaluations(result)["auc_drop"]
        assert metadata["pooled_days"] == 1 and metadata["auc_drop"] == pytest.approx(drop, abs=1e-9)
        assert metadata["roc_auc_high"] - metadata["roc_auc_low"] > 0.07  # 400 rows: not sure to a few points
        assert auc_drop.passed is passed, auc_drop.description
        if passed:
            assert "no drop the rows can tell from noise" in auc_drop.description
        else:
            assert auc_drop.severity == dg.AssetCheckSeverity.ERROR
