"""Fairness guardrails (the spec's ``fairness`` section): the gate refuses a version whose gap between segments is
above a limit, the first version too, and shows the gaps; the daily quality asset reports them per labeled day.

On real runs: the lab's training job (tests/ml_lab.py: the real Definitions, MLflow and warehouse, the fast
estimator) and the quality asset of a small synthetic model on real Evidently, DuckDB and MLflow.
"""

from __future__ import annotations

import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assets.ml.fairness import measure
from assets.ml.spec import Fairness, ModelSpec, SpecError, load_spec
from resources.registry import ModelRegistry, VersionInfo
from resources.reports import MonitoringReports
from resources.settings import MODEL_SPECS_DIR
from resources.warehouse import DuckDBWarehouse
from tests.ml_lab import CHAMPION_STEP, MODEL, WEAK, gate_evaluation
from tests.monitoring_lab import (
    LOW_BAND_BELOW,
    mart_keys,
    materialization_metadata,
    register_bare_version,
    run_monitoring,
    served_predictions,
)

# --- the section, checked when the spec loads ------------------------------------------------------------------------


def _spec_with(tmp_path: Path, fairness: dict) -> Path:
    spec = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    spec["fairness"] = fairness
    path = tmp_path / "loan_default.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("fairness", "message"),
    [
        ({"segments": ["zip_code"]}, "'zip_code' is not a feature of the spec"),
        ({"segments": ["age"]}, "'age' is numeric: give its bands"),
        ({"segments": [{"column": "state", "bins": [1]}]}, "'state' is categorical"),
        ({"segments": [{"column": "age", "bins": [45, 30]}]}, "strictly increasing"),
        ({"segments": ["state"], "approve_band": "accept"}, "approve_band: 'accept' is not one of"),
        ({"segments": ["state", "state"]}, "listed more than once"),
        ({"segments": ["state"], "max_auc_gap": 0}, "greater than 0"),
    ],
)
def test_a_wrong_fairness_section_names_the_spec_file_and_field(tmp_path, fairness, message):
    path = _spec_with(tmp_path, fairness)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value) and "field 'fairness" in str(caught.value)
    assert message in str(caught.value)


def test_the_shipped_spec_segments_by_state_and_age_band_approving_the_first_band():
    fairness = load_spec(MODEL_SPECS_DIR / "loan_default.yaml").fairness
    assert fairness.columns == ["state", "age"] and fairness.approve_band == "approve"
    assert fairness.segments[1].labels() == ["<30", "[30,45)", "[45,60)", ">=60"]
    assert fairness.max_approval_rate_gap is not None and fairness.max_auc_gap is not None


# --- the computation ---------------------------------------------------------------------------------------------------


def test_gaps_leave_out_small_segments_and_single_class_aucs():
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame(
        {
            "region": np.array(["north"] * 300 + ["south"] * 270 + ["tiny"] * 30, dtype=object),
            "age": np.r_[rng.integers(20, 70, 520), [np.nan] * 80],
        }
    )
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    y[520:] = 0  # the rows without an age hold a single class
    decisions = np.where(frame["region"] == "north", "approve", np.where(p < 0.5, "approve", "decline"))
    fairness = Fairness.model_validate(
        {
            "segments": ["region", {"column": "age", "bins": [40]}],
            "approve_band": "approve",
            "max_approval_rate_gap": 0.3,
            "max_auc_gap": 0.5,
            "min_segment_rows": 60,
        }
    )
    result = measure(frame, fairness, decisions, y, p)

    by = result.segments.set_index(["segment_column", "segment"])
    assert by.loc[("region", "north"), "approval_rate"] == 1.0
    south = by.loc[("region", "south"), "approval_rate"]
    assert south == pytest.approx((p[300:570] < 0.5).mean())
    tiny = by.loc[("region", "tiny")]
    assert not tiny["in_gaps"] and "fewer than min_segment_rows 60" in tiny["note"] and math.isnan(tiny["roc_auc"])
    assert list(by.loc["age"].index) == ["<40", ">=40", "(missing)"]  # bands in order, missing last
    assert by.loc[("age", "(missing)"), "note"] == "no ROC AUC: a single class"

    [region_rate, region_auc, age_rate, _] = result.gaps
    assert (region_rate.high, region_rate.low) == ("north", "south")
    assert region_rate.gap == pytest.approx(1.0 - south) and region_rate.broken  # above 0.3
    assert region_rate.describe().endswith("is above max_approval_rate_gap 0.3")
    assert not region_auc.broken and region_auc.gap < 0.5
    assert [(g.column, g.metric) for g in result.breaches] == [("region", "approval_rate"), ("age", "approval_rate")]
    assert age_rate.low == "(missing)"  # a missing value is a segment of its own
    assert result.refusal().startswith("fairness: approval rate gap over region")
    assert result.figures()["fairness_approval_rate_gap"] == pytest.approx(1.0 - south)


# --- the gate ----------------------------------------------------------------------------------------------------------


def test_a_challenger_breaking_a_fairness_limit_is_refused_and_the_champion_stays(lab):
    first = lab.run_training()
    assert first.success and lab.champion() == 1
    meta = {k: v.value for k, v in gate_evaluation(first).metadata.items()}
    limits = load_spec(lab.specs / "loan_default.yaml").fairness
    assert 0 < meta["fairness_state_approval_rate_gap"] <= limits.max_approval_rate_gap
    assert 0 < meta["fairness_age_roc_auc_gap"] <= limits.max_auc_gap
    assert meta["fairness_within_limits"] is True and "| state" in meta["fairness_segments"]

    # A challenger that decides by state: good enough on the metrics for this lowered bar, yet its approval rate
    # differs by state far beyond the limit.
    lenient = {"min_primary": 0.3, "tolerance": 1.0, "guardrails": {}}
    refused = lab.run_training(lenient, features=WEAK["features"], evaluation=WEAK["evaluation"])
    assert not refused.success
    judged = gate_evaluation(refused)
    assert not judged.passed
    gap = judged.metadata["fairness_state_approval_rate_gap"].value
    assert gap > limits.max_approval_rate_gap
    assert judged.metadata["fairness_within_limits"].value is False
    assert judged.description.startswith("fairness: approval rate gap over state ")
    assert f"{gap:.4f} between '" in judged.description
    assert f"is above max_approval_rate_gap {limits.max_approval_rate_gap}" in judged.description
    assert refused.asset_materializations_for_node(CHAMPION_STEP) == []
    assert lab.champion() == 1
    tags = lab.registry.version(MODEL, 2).tags
    assert tags["gate.passed"] == "false" and float(tags["gate.fairness.approval_rate_gap"]) == pytest.approx(gap)

    # Every judgement's segments are in the warehouse, by version.
    stored = lab.warehouse.query(
        f"SELECT model_version, passed, max(approval_rate) - min(approval_rate) AS gap FROM ml.{MODEL}_gate_fairness "
        "WHERE segment_column = 'state' AND in_gaps GROUP BY model_version, passed ORDER BY model_version"
    )
    assert stored["model_version"].tolist() == [1, 2] and stored["passed"].tolist() == [True, False]
    assert stored["gap"].iloc[-1] == pytest.approx(gap)
    # The champion each was judged against, as a person reads it by SQL: none (NULL) for the first, then 1.
    against = lab.warehouse.query(
        f"SELECT DISTINCT model_version, champion_version FROM ml.{MODEL}_gate_fairness ORDER BY model_version"
    )
    assert against["champion_version"].isna().tolist() == [True, False] and against["champion_version"].iloc[1] == 1


def test_the_first_version_is_refused_too_when_it_breaks_a_limit(lab):
    refused = lab.run_training(fairness={"max_auc_gap": 0.01})
    judged = gate_evaluation(refused)
    assert not refused.success and not judged.passed
    assert judged.description.startswith("fairness: ROC AUC gap over state ")  # refused for the limit ...
    assert "on the metrics alone: roc_auc" in judged.description and "there is no champion yet" in judged.description
    assert "is above max_auc_gap 0.01" in judged.description
    assert judged.metadata["fairness_roc_auc_gap"].value > 0.01
    assert lab.champion() is None


# --- monitoring: the gaps of a labeled day ------------------------------------------------------------------------------

SYNTHETIC = "fair_risk"
SCORING_MART, TRAINING_MART = "fct_fair_features", "fct_fair_labeled"
DAY = date(2025, 4, 2)
ROWS = 2000


def _day_rows() -> pd.DataFrame:
    """Brokers' applications score higher: fewer are approved (band "low", below LOW_BAND_BELOW)."""
    rng = np.random.default_rng(21)
    channel = rng.choice(["web", "branch", "broker"], ROWS, p=[0.6, 0.25, 0.15])
    score = 1 / (1 + np.exp(2.0 - 1.2 * (channel == "broker") + rng.normal(0, 0.8, ROWS)))
    return pd.DataFrame(
        {
            "row_id": [f"{DAY:%Y%m%d}-{i:05d}" for i in range(ROWS)],
            "applied_on": pd.Timestamp(DAY),
            "income": rng.lognormal(10.9, 0.45, ROWS),
            "channel": channel,
            "score": score,
            "defaulted": (rng.random(ROWS) < score).astype(int),
            "labeled_on": pd.Timestamp(DAY + timedelta(days=3)),
        }
    )


def _synthetic_spec() -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": SYNTHETIC,
            "training_mart": TRAINING_MART,
            "scoring_mart": SCORING_MART,
            "entity_id": "row_id",
            "timestamp": "applied_on",
            "label_date": "labeled_on",
            "target": "defaulted",
            "features": {"numeric": ["income"], "categorical": ["channel"]},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
            "promotion": {"min_primary": 0.5},
            "decision_bands": [{"name": "low", "below": LOW_BAND_BELOW}, {"name": "high"}],
            "fairness": {"segments": ["channel"], "max_approval_rate_gap": 0.1, "min_segment_rows": 100},
        }
    )


@pytest.fixture
def served_version(tmp_path: Path, empty_mlflow_db: Path) -> tuple[ModelRegistry, VersionInfo]:
    """Version 1 of the synthetic model, registered on a run of its own, validated at ROC AUC 0.7."""
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    registry = ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "mlartifacts").as_uri()
    )
    return registry, register_bare_version(registry, SYNTHETIC)


def test_a_labeled_days_quality_reports_the_gaps_and_stores_each_segment(tmp_path, served_version):
    from assets.ml.inference import prediction_columns

    registry, version = served_version
    spec = _synthetic_spec()
    rows = _day_rows()
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    window = (DAY, DAY + timedelta(days=1))
    warehouse.replace_window(
        f"marts.{SCORING_MART}", "applied_on", *window, [rows.drop(columns=["score", "defaulted", "labeled_on"])]
    )
    predictions = served_predictions(rows, SYNTHETIC, version.version, scored_at="2025-04-03")
    warehouse.replace_window(f"predictions.{SYNTHETIC}", "applied_on", *window, [predictions], prediction_columns(spec))
    warehouse.replace_window(f"marts.{TRAINING_MART}", "applied_on", *window, [rows.drop(columns=["score"])])
    reports = MonitoringReports(directory=str(tmp_path / "reports"), retention_days=30)

    resources = {"warehouse": warehouse, "registry": registry, "reports": reports}
    result = run_monitoring("quality", spec, mart_keys(SCORING_MART, TRAINING_MART), DAY, resources)
    assert result.success
    meta = materialization_metadata(result, SYNTHETIC, "quality")

    approved = (rows["score"] < LOW_BAND_BELOW).groupby(rows["channel"]).mean()
    expected = approved.max() - approved.min()
    assert approved.idxmin() == "broker"
    assert meta["fairness_approval_rate_gap"] == pytest.approx(expected)
    assert meta["fairness_channel_approval_rate_gap"] == pytest.approx(expected)
    assert expected > 0.1 and meta["fairness_within_limits"] is False  # reported; the day is not failed
    assert 0 < meta["fairness_roc_auc_gap"] < 1
    assert "approval rate gap over channel" in meta["fairness"] and "'broker'" in meta["fairness"]

    stored = warehouse.query(
        f"SELECT segment, rows, approval_rate, model_version FROM monitoring.{SYNTHETIC}_fairness "
        f"WHERE day = DATE '{DAY}' ORDER BY segment"
    )
    assert stored["segment"].tolist() == ["branch", "broker", "web"]
    assert stored["rows"].sum() == ROWS and set(stored["model_version"]) == {1}
    assert stored.set_index("segment")["approval_rate"].to_dict() == pytest.approx(approved.to_dict())
    logged = registry.client().get_metric_history(version.run_id, "monitoring.fairness_approval_rate_gap")
    assert [m.value for m in logged] == pytest.approx([expected])

    # Checked again, the day's rows are replaced, not added.
    assert run_monitoring("quality", spec, mart_keys(SCORING_MART, TRAINING_MART), DAY, resources).success
    assert warehouse.query(f"SELECT count(*) AS n FROM monitoring.{SYNTHETIC}_fairness")["n"].iloc[0] == 3
