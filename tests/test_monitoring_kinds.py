"""Monitoring of a regressor and a multi-class classifier, through the drift and quality assets themselves, on real
Evidently, DuckDB and MLflow (a SQLite store under tmp_path: the version's holdout figure is its ``metric.<name>``
tag, its training reference the parquet artifact training logs).

Each test builds its model's served days directly in its own warehouse: the scoring mart, the predictions table as
scoring writes it (``score``; multiclass also ``predicted_class``) and the labeled mart. A normal day passes; a day
whose predicted values shift (regression) or whose class mix changes (multiclass) fails score drift while the
features hold; a day whose predictions are shuffled among its rows (the same mix of predictions, now unrelated to the
outcome) passes drift and fails ``rmse`` / ``macro_f1_drop``. The fairness gaps are checked by hand on a few rows.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.ml.fairness import measure
from assets.ml.spec import Fairness, ModelSpec
from resources.registry import ModelRegistry
from resources.reports import MonitoringReports
from resources.warehouse import DuckDBWarehouse
from tests.monitoring_lab import check_evaluations, mart_keys, materialization_metadata, run_monitoring

SCORING_MART, TRAINING_MART = "fct_kind_features", "fct_kind_labeled"
MARTS = mart_keys(SCORING_MART, TRAINING_MART)
FIRST_DAY = date(2025, 6, 2)
NORMAL, CHANGED, WORSE = FIRST_DAY + timedelta(days=3), FIRST_DAY + timedelta(days=4), FIRST_DAY + timedelta(days=5)
ROWS = 2000
CHANNELS = (["web", "branch", "broker"], [0.6, 0.25, 0.15])
CLASSES = ["car", "home", "small_business"]


def _spec(name: str, task: str, target: str, monitoring: dict, **extra) -> ModelSpec:
    base = {
        "name": name,
        "task": task,
        "training_mart": TRAINING_MART,
        "scoring_mart": SCORING_MART,
        "entity_id": "row_id",
        "timestamp": "applied_on",
        "label_date": "labeled_on",
        "target": target,
        "features": {"numeric": ["income"], "categorical": ["channel"]},
        "monitoring": {"quality_min_rows": 1000, "sample_rows": 2000, "reference_rows": 3000, **monitoring},
    }
    return ModelSpec.model_validate({**base, **extra})


def regression_spec() -> ModelSpec:
    return _spec(
        "rate_pricing",
        "regression",
        "rate",
        {},
        estimator={"class": "sklearn.linear_model.Ridge"},
        promotion={"min_primary": 5.0},
        fairness={"segments": ["channel"], "max_error_gap": 0.5, "min_segment_rows": 100},
    )


def multiclass_spec(**monitoring) -> ModelSpec:
    return _spec(
        "purpose_mix",
        "multiclass",
        "purpose",
        monitoring,
        estimator={"class": "sklearn.linear_model.LogisticRegression"},
        promotion={"min_primary": 0.3},
        class_decisions={"small_business": "business_desk"},
        fairness={"segments": ["channel"], "max_recall_gap": 0.3, "min_segment_rows": 100},
    )


def _features(day: date, seed: int) -> pd.DataFrame:
    """A day's applications: the same draws of income and channel every day."""
    rng = np.random.default_rng([day.toordinal(), seed])
    return pd.DataFrame(
        {
            "row_id": [f"{day:%Y%m%d}-{i:05d}" for i in range(ROWS)],
            "applied_on": pd.Timestamp(day),
            "income": rng.lognormal(10.9, 0.45, ROWS),
            "channel": rng.choice(CHANNELS[0], ROWS, p=CHANNELS[1]),
        }
    )


def regression_day(day: date, kind: str = "normal") -> pd.DataFrame:
    """The rate each application got (``rate``) and the one predicted (``score``, off by about 1 point); ``shifted``:
    every prediction 3 points higher; ``shuffled``: the day's predictions dealt to other rows."""
    rows = _features(day, 1)
    rng = np.random.default_rng([day.toordinal(), 2])
    z = (np.log(rows["income"]) - 10.9) / 0.45
    expected = 12.0 - 2.0 * z
    rows["rate"] = expected + rng.normal(0.0, 1.0, ROWS)
    rows["score"] = expected + rng.normal(0.0, 0.3, ROWS)
    if kind == "shifted":
        rows["score"] += 3.0
    elif kind == "shuffled":
        rows["score"] = rng.permutation(rows["score"].to_numpy())
    return rows


def multiclass_day(day: date, kind: str = "normal") -> pd.DataFrame:
    """Each application's purpose (``purpose``: about 50% car, 30% home, 20% small business) and the class predicted,
    right 85% of the time; ``changed``: 70% of the predictions of car become small business (the class mix moves);
    ``shuffled``: the day's predictions dealt to other rows."""
    rows = _features(day, 3)
    rng = np.random.default_rng([day.toordinal(), 4])
    purpose = rng.choice(CLASSES, ROWS, p=[0.5, 0.3, 0.2])
    predicted = np.where(rng.random(ROWS) < 0.85, purpose, rng.choice(CLASSES, ROWS, p=[0.5, 0.3, 0.2]))
    if kind == "changed":
        predicted = np.where((predicted == "car") & (rng.random(ROWS) < 0.7), "small_business", predicted)
    elif kind == "shuffled":
        predicted = rng.permutation(predicted)
    probability = rng.uniform(0.5, 0.95, ROWS)
    rest = (1 - probability) / 2
    rows["purpose"] = purpose
    rows["predicted_class"] = predicted
    rows["score"] = probability
    rows["class_probabilities"] = [
        json.dumps({c: float(p if c == k else r) for c in CLASSES})
        for k, p, r in zip(predicted, probability, rest, strict=True)
    ]
    return rows


def _served(spec: ModelSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The predictions table's rows for ``rows``, as version 1 of ``spec`` left them."""
    out = pd.DataFrame({"row_id": rows["row_id"], "applied_on": rows["applied_on"], "score": rows["score"]})
    if spec.task == "multiclass":
        out["decision"] = [spec.class_decisions.get(c, c) for c in rows["predicted_class"]]
        out["predicted_class"] = rows["predicted_class"]
        out["class_probabilities"] = rows["class_probabilities"]
    else:
        out["decision"] = None  # a regression spec without bands decides nothing
    return out.assign(
        model_name=spec.name, model_version=1, dagster_run_id="test", scored_at=pd.Timestamp("2025-06-20")
    )


def _prediction_columns(spec: ModelSpec):
    from assets.ml.inference import prediction_columns
    from resources.source.schema import Column

    columns = prediction_columns(spec)
    names = {c.name for c in columns}
    if spec.task == "multiclass":
        columns += [Column(c, "VARCHAR") for c in ("predicted_class", "class_probabilities") if c not in names]
    return columns


def _reference(spec: ModelSpec, make_day) -> pd.DataFrame:
    """The version's reference sample as training logs it: holdout rows (ten days before FIRST_DAY) with their
    features, ``score``, the target, each row's day and, for multiclass, the predicted class."""
    days = [FIRST_DAY - timedelta(days=20 - i) for i in range(10)]
    rows = pd.concat([make_day(day) for day in days], ignore_index=True).sample(n=3000, random_state=0)
    kept = ["income", "channel", "score", spec.target]
    if spec.task == "multiclass":
        kept.append("predicted_class")
    reference = rows[kept].reset_index(drop=True)
    reference["nightjar_day"] = rows["applied_on"].dt.strftime("%Y-%m-%d").to_numpy()
    return reference


def _holdout(spec: ModelSpec, reference: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import f1_score

    if spec.task == "regression":
        return {"metric.rmse": float(np.sqrt(((reference["score"] - reference["rate"]) ** 2).mean()))}
    return {"metric.macro_f1": float(f1_score(reference["purpose"], reference["predicted_class"], average="macro"))}


def _stores(tmp_path: Path, empty_mlflow_db: Path, spec: ModelSpec, days: dict[date, pd.DataFrame]) -> dict:
    """Version 1 of ``spec`` registered with its holdout figure and reference sample; ``days`` served by it and
    labeled the next day."""
    from assets.ml.run_artifacts import REFERENCE_PATH

    make_day = regression_day if spec.task == "regression" else multiclass_day
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    registry = ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=(tmp_path / "mlartifacts").as_uri()
    )
    client = registry.client()
    run = client.create_run(registry.experiment_id(spec.name))
    reference = _reference(spec, make_day)
    local = tmp_path / "logged" / REFERENCE_PATH
    local.parent.mkdir(parents=True)
    reference.to_parquet(local, index=False)
    client.log_artifact(run.info.run_id, str(local), artifact_path=str(Path(REFERENCE_PATH).parent))
    client.set_terminated(run.info.run_id)
    client.create_registered_model(spec.name)
    client.create_model_version(spec.name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    registry.set_version_tags(spec.name, 1, _holdout(spec, reference))

    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    frame = pd.concat(list(days.values()), ignore_index=True)
    start, end = min(days), max(days) + timedelta(days=1)
    features = frame[["row_id", "applied_on", "income", "channel"]]
    warehouse.replace_window(f"marts.{SCORING_MART}", "applied_on", start, end, [features])
    warehouse.replace_window(
        f"predictions.{spec.name}", "applied_on", start, end, [_served(spec, frame)], _prediction_columns(spec)
    )
    labeled = features.assign(
        **{spec.target: frame[spec.target], "labeled_on": frame["applied_on"] + pd.Timedelta(days=1)}
    )
    warehouse.replace_window(f"marts.{TRAINING_MART}", "applied_on", start, end, [labeled])
    reports = MonitoringReports(directory=str(tmp_path / "reports"), retention_days=100_000)
    return {"warehouse": warehouse, "registry": registry, "reports": reports}


def _checked(asset: str, spec: ModelSpec, day: date, resources: dict) -> tuple[dict, dict]:
    result = run_monitoring(asset, spec, MARTS, day, resources)
    assert result.success
    return materialization_metadata(result, spec.name, asset), check_evaluations(result)


def _describe(checks: dict) -> dict[str, str]:
    return {name: check.description for name, check in checks.items()}


# --- regression ------------------------------------------------------------------------------------------------------


@pytest.fixture
def regression(tmp_path, empty_mlflow_db) -> tuple[ModelSpec, dict]:
    spec = regression_spec()
    days = {NORMAL: regression_day(NORMAL), CHANGED: regression_day(CHANGED, "shifted")}
    days[WORSE] = regression_day(WORSE, "shuffled")
    return spec, _stores(tmp_path, empty_mlflow_db, spec, days)


def test_a_regressors_predicted_value_drifts_when_its_predictions_shift(regression):
    spec, resources = regression
    meta, checks = _checked("drift", spec, NORMAL, resources)
    assert checks["data_drift"].passed and checks["score_drift"].passed, _describe(checks)
    assert meta["score_drift"] < 0.1
    assert "predicted value drift" in checks["score_drift"].description

    meta, checks = _checked("drift", spec, CHANGED, resources)
    assert checks["data_drift"].passed, _describe(checks)  # the applications are as ever: the predictions moved
    assert not checks["score_drift"].passed and checks["score_drift"].severity == dg.AssetCheckSeverity.ERROR
    assert meta["score_drift"] > 1.0  # 3 points against predictions spread by about 2


def test_a_regressors_rmse_is_judged_against_its_holdout_rmse(regression):
    spec, resources = regression
    holdout = float(resources["registry"].version(spec.name, 1).tags["metric.rmse"])
    meta, checks = _checked("quality", spec, NORMAL, resources)
    assert set(checks) == {"rmse"}  # a regressor has no ROC AUC to drop nor a positive rate to calibrate
    day = regression_day(NORMAL)
    rmse = float(np.sqrt(((day["score"] - day["rate"]) ** 2).mean()))
    assert meta["rmse"] == pytest.approx(rmse) and meta["holdout_rmse"] == pytest.approx(holdout)
    assert meta["rmse_ratio"] == pytest.approx(rmse / holdout) and 0.9 < meta["rmse_ratio"] < 1.1
    assert meta["mae"] == pytest.approx(float(np.abs(day["score"] - day["rate"]).mean()))
    assert checks["rmse"].passed, checks["rmse"].description

    # The gaps in mean absolute error between channels, as the day's rows give them.
    error = (day["score"] - day["rate"]).abs().groupby(day["channel"]).mean()
    assert meta["fairness_mae_gap"] == pytest.approx(error.max() - error.min())
    assert "fairness_approval_rate_gap" not in meta  # no bands: no decision approves
    stored = resources["warehouse"].query(f"SELECT segment, mae FROM monitoring.{spec.name}_fairness ORDER BY 1")
    assert stored.set_index("segment")["mae"].to_dict() == pytest.approx(error.to_dict())

    meta, checks = _checked("quality", spec, WORSE, resources)
    assert meta["rmse_ratio"] > 1.5
    assert not checks["rmse"].passed and checks["rmse"].severity == dg.AssetCheckSeverity.ERROR
    assert f"x the holdout's {holdout:.4f}" in checks["rmse"].description
    table = resources["warehouse"].query(f"SELECT rmse_ratio FROM monitoring.{spec.name}_quality ORDER BY day")
    assert table["rmse_ratio"].tolist() == pytest.approx([rmse / holdout, meta["rmse_ratio"]])
    assert Path(meta["report_path"]).exists()  # Evidently's regression report, stored for the day
    drift_meta, drift_checks = _checked("drift", spec, WORSE, resources)
    assert drift_checks["score_drift"].passed, _describe(drift_checks)  # the same predictions, dealt to other rows


# --- multiclass -------------------------------------------------------------------------------------------------------


@pytest.fixture
def multiclass(tmp_path, empty_mlflow_db) -> tuple[ModelSpec, dict]:
    spec = multiclass_spec()
    days = {NORMAL: multiclass_day(NORMAL), CHANGED: multiclass_day(CHANGED, "changed")}
    days[WORSE] = multiclass_day(WORSE, "shuffled")
    return spec, _stores(tmp_path, empty_mlflow_db, spec, days)


def test_a_multiclass_models_class_mix_drifts_when_it_changes(multiclass):
    spec, resources = multiclass
    meta, checks = _checked("drift", spec, NORMAL, resources)
    assert checks["data_drift"].passed and checks["score_drift"].passed, _describe(checks)
    assert "class mix drift" in checks["score_drift"].description

    meta, checks = _checked("drift", spec, CHANGED, resources)
    assert checks["data_drift"].passed, _describe(checks)
    assert not checks["score_drift"].passed and checks["score_drift"].severity == dg.AssetCheckSeverity.ERROR
    assert "Jensen-Shannon" in checks["score_drift"].description and meta["score_drift"] > 0.2


def test_a_multiclass_models_class_mix_against_served_days(tmp_path, empty_mlflow_db):
    """A served-days reference reads the predicted classes of the days before from the predictions table."""
    spec = multiclass_spec(reference={"trailing_days": 3})
    days = {FIRST_DAY + timedelta(days=i): multiclass_day(FIRST_DAY + timedelta(days=i)) for i in range(4)}
    days[CHANGED] = multiclass_day(CHANGED, "changed")
    resources = _stores(tmp_path, empty_mlflow_db, spec, days)
    meta, checks = _checked("drift", spec, NORMAL, resources)
    assert meta["reference_days"] == 3 and checks["score_drift"].passed, _describe(checks)
    meta, checks = _checked("drift", spec, CHANGED, resources)
    assert not checks["score_drift"].passed and meta["score_drift"] > 0.2, _describe(checks)


def test_a_multiclass_models_macro_f1_is_judged_against_its_holdout(multiclass):
    from sklearn.metrics import f1_score, recall_score

    spec, resources = multiclass
    holdout = float(resources["registry"].version(spec.name, 1).tags["metric.macro_f1"])
    meta, checks = _checked("quality", spec, NORMAL, resources)
    assert set(checks) == {"macro_f1_drop"}
    day = multiclass_day(NORMAL)
    macro_f1 = f1_score(day["purpose"], day["predicted_class"], average="macro")
    assert meta["macro_f1"] == pytest.approx(macro_f1) and meta["holdout_macro_f1"] == pytest.approx(holdout)
    assert meta["macro_f1_drop"] == pytest.approx(holdout - macro_f1) and abs(meta["macro_f1_drop"]) < 0.05
    recall = recall_score(day["purpose"], day["predicted_class"], average=None, labels=CLASSES)
    assert [meta[f"recall_{c}"] for c in CLASSES] == pytest.approx(list(recall))
    assert "| small_business |" in meta["classes"]
    assert checks["macro_f1_drop"].passed, checks["macro_f1_drop"].description

    # Macro recall (balanced accuracy) by channel, and the decisions the classes mapped to.
    by_channel = {
        channel: recall_score(part["purpose"], part["predicted_class"], average="macro")
        for channel, part in day.groupby("channel")
    }
    assert meta["fairness_macro_recall_gap"] == pytest.approx(max(by_channel.values()) - min(by_channel.values()))

    meta, checks = _checked("quality", spec, WORSE, resources)
    assert meta["macro_f1_drop"] > 0.1
    assert not checks["macro_f1_drop"].passed
    assert checks["macro_f1_drop"].severity == dg.AssetCheckSeverity.ERROR
    table = resources["warehouse"].query(f"SELECT day, macro_f1_drop FROM monitoring.{spec.name}_quality ORDER BY day")
    assert table["macro_f1_drop"].tolist() == pytest.approx([holdout - macro_f1, meta["macro_f1_drop"]])
    drift_meta, drift_checks = _checked("drift", spec, WORSE, resources)
    assert drift_checks["score_drift"].passed, _describe(drift_checks)  # the same mix, dealt to other rows


def test_a_version_without_its_holdout_tag_is_judged_against_its_reference_sample(multiclass):
    from sklearn.metrics import f1_score

    spec, resources = multiclass
    registry = resources["registry"]
    registry.client().delete_model_version_tag(spec.name, "1", "metric.macro_f1")
    meta, checks = _checked("quality", spec, NORMAL, resources)
    reference = _reference(spec, multiclass_day)
    expected = f1_score(reference["purpose"], reference["predicted_class"], average="macro")
    assert meta["holdout_macro_f1"] == pytest.approx(expected)
    assert meta["holdout_source"] == "the reference sample's 3000 holdout rows"


# --- fairness by hand --------------------------------------------------------------------------------------------------


def test_regression_fairness_is_the_gap_in_mean_absolute_error():
    frame = pd.DataFrame({"region": ["a", "a", "a", "b", "b"]})
    actual = np.array([10.0, 10.0, 10.0, 5.0, 5.0])
    predicted = np.array([11.0, 9.0, 12.0, 5.5, 4.5])  # errors: a 1, 1, 2 (MAE 4/3); b 0.5, 0.5 (MAE 0.5)
    fairness = Fairness.model_validate({"segments": ["region"], "max_error_gap": 0.5, "min_segment_rows": 2})
    result = measure(frame, fairness, [None] * 5, actual, predicted, task="regression")
    [gap] = result.gaps  # no approve band: no approval-rate gap
    assert (gap.metric, gap.high, gap.low) == ("mae", "a", "b")
    assert gap.gap == pytest.approx(4 / 3 - 0.5) and gap.broken
    assert gap.describe().endswith("is above max_error_gap 0.5")
    assert result.segments.set_index("segment")["mae"].to_dict() == pytest.approx({"a": 4 / 3, "b": 0.5})
    assert "approval_rate" not in result.segments  # no decision approves
    assert result.tags() == {"gate.fairness.error_gap": repr(gap.gap)}
    assert result.figures() == {
        "fairness_mae_gap": pytest.approx(5 / 6),
        "fairness_region_mae_gap": pytest.approx(5 / 6),
    }


def test_multiclass_fairness_is_the_gap_in_macro_recall_and_approval_where_a_decision_approves():
    frame = pd.DataFrame({"region": ["a"] * 4 + ["b"] * 2})
    actual = np.array(["x", "x", "y", "y", "x", "y"], dtype=object)
    predicted = np.array(["x", "y", "y", "y", "x", "y"], dtype=object)  # a: recall x 1/2, y 1 -> 0.75; b: 1.0
    decisions = np.where(predicted == "x", "approve", "refer")
    fairness = Fairness.model_validate(
        {"segments": ["region"], "max_recall_gap": 0.2, "approve_band": "approve", "min_segment_rows": 2}
    )
    result = measure(frame, fairness, decisions, actual, np.full(6, 0.9), task="multiclass", predicted=predicted)
    rate, recall = result.gaps
    assert (recall.metric, recall.high, recall.low) == ("macro_recall", "b", "a")
    assert recall.gap == pytest.approx(0.25) and recall.broken
    assert (rate.metric, rate.gap) == ("approval_rate", pytest.approx(0.5 - 0.25))  # b approves 1 of 2, a 1 of 4
    assert result.refusal().startswith("fairness: macro recall gap over region 0.2500 between 'b' (1.0000)")
    assert set(result.tags()) == {"gate.fairness.approval_rate_gap", "gate.fairness.recall_gap"}
    with pytest.raises(ValueError, match="multiclass needs the predicted classes"):
        measure(frame, fairness, decisions, actual, np.full(6, 0.9), task="multiclass")
    assert math.isnan(
        measure(
            frame.iloc[:4],
            fairness,
            decisions[:4],
            actual[:4],
            np.full(4, 0.9),
            task="multiclass",
            predicted=predicted[:4],
        )
        .gaps[1]
        .gap
    )  # one segment left: nothing to compare
