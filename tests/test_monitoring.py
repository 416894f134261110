"""Monitoring end to end on real Evidently, MLflow, dbt and DuckDB, through the synthetic drift scenario:
stable days pass, the first drifted day fails with ERROR naming the drifted columns, and the later change in
how features relate to default shows in the quality check once that day's labels arrive; a day whose labels are
not in yet waits, and a served-days reference reads the real marts."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from resources.registry import CHAMPION, ModelRegistry
from resources.source.synthetic_draws import DRIFTED_COLUMNS
from tests.chain import run_days, scalar
from tests.sensor_helpers import Webhook, tick
from tests.stores import point_stores_at

pytestmark = pytest.mark.slow

MODEL = "loan_default_risk"
HISTORY = (date(2026, 1, 20), date(2026, 2, 15))
TRAINED_AS_OF = "2026-02-08"  # labels up to here are known before the scenario starts
DRIFT_START, CONCEPT_DRIFT_START = date(2026, 2, 11), date(2026, 2, 12)
STABLE_DAY = date(2026, 2, 10)
ROWS_PER_DAY = 5000  # single-day drift scores are noisy on a few hundred rows; a real day has thousands


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_stores_at(
            root,
            monkeypatch,
            NIGHTJAR_ROWS_PER_DAY=str(ROWS_PER_DAY),
            NIGHTJAR_DRIFT_START=DRIFT_START.isoformat(),
            NIGHTJAR_CONCEPT_DRIFT_START=CONCEPT_DRIFT_START.isoformat(),
        )
        from definitions import build_definitions

        defs = build_definitions(settings)
        instance = dg.DagsterInstance.get()  # one history: scoring finds when each day's raw data was published
        assert run_days(defs, "ingest", *HISTORY, instance=instance).success
        trained = defs.resolve_job_def(f"train_{MODEL}").execute_in_process(
            run_config={"ops": {f"{MODEL}__training_set": {"config": {"as_of": TRAINED_AS_OF}}}}, instance=instance
        )
        assert trained.success
        predictions = dg.AssetKey([MODEL, "predictions"])
        scored = run_days(
            defs, "nightly", STABLE_DAY, CONCEPT_DRIFT_START, asset_selection=[predictions], instance=instance
        )
        assert scored.success
        yield {"settings": settings, "defs": defs, "scored": scored}


def _monitor(defs, asset: str, day: date) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(f"monitor_{MODEL}").execute_in_process(
        partition_key=day.isoformat(), asset_selection=[dg.AssetKey([MODEL, asset])], raise_on_error=False
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_a_stable_day_passes_every_drift_check_and_is_plotted(scenario):
    result = _monitor(scenario["defs"], "drift", STABLE_DAY)
    assert result.success
    checks = _checks(result)
    assert checks["data_drift"].passed and checks["score_drift"].passed, {k: c.description for k, c in checks.items()}
    meta = result.asset_materializations_for_node(f"{MODEL}__drift")[0].metadata
    assert meta["drift_share"].value == 0.0
    # The chain's end-to-end latency (raw published -> scores written) of the days scored so far, and its cost.
    assert 0 < meta["latency_p50_seconds"].value <= meta["latency_p95_seconds"].value
    assert meta["latency_days"].value == 1  # the scenario scored three days; one is on or before STABLE_DAY
    assert meta["cpu_seconds"].value > 0 and meta["wall_seconds"].value > 0
    scored = scenario["scored"].asset_materializations_for_node(f"{MODEL}__predictions")[0].metadata
    assert scored["latency_seconds"].value > 0 and "raw/applications" in scored["data_in"].value
    assert scored["cpu_seconds_per_1000_predictions"].value > 0
    assert meta["sample_rows"].value == ROWS_PER_DAY
    assert isinstance(meta["drift_credit_score"].value, float)  # numeric: Dagster plots it over days
    # The day's report is stored once, compactly (Evidently's snapshot), and the check links the serving version's run.
    report = Path(meta["report_path"].value)
    assert report.name == f"{STABLE_DAY}.json.gz" and 10_000 < report.stat().st_size < 200_000
    settings = scenario["settings"]
    champion = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri).by_alias(MODEL, CHAMPION)
    assert meta["mlflow_run"].value.endswith(f"/runs/{champion.run_id}?workflowType=machine_learning")


def test_the_first_drifted_day_fails_with_error_naming_the_columns(scenario):
    result = _monitor(scenario["defs"], "drift", DRIFT_START)
    check = _checks(result)["data_drift"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    for column in ("credit_score", "loan_amount", "debt_to_income"):
        assert column in DRIFTED_COLUMNS and column in check.description
    assert "annual_income" not in check.description  # a stable column is not named
    meta = result.asset_materializations_for_node(f"{MODEL}__drift")[0].metadata
    assert DRIFT_START.isoformat() in check.description and meta["report_path"].value in check.description

    # The day's figures also land on the serving version's MLflow run, one step per day.
    settings = scenario["settings"]
    registry = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root)
    champion = registry.by_alias(MODEL, CHAMPION)
    history = registry.client().get_metric_history(champion.run_id, "monitoring.drift_share")
    assert {m.step for m in history} >= {DRIFT_START.toordinal()}
    assert scalar(settings, f"SELECT count(*) FROM monitoring.{MODEL}_drift WHERE drifted") >= 3


def test_quality_holds_on_a_stable_day_and_fails_after_the_concept_change(scenario):
    defs = scenario["defs"]
    stable = _monitor(defs, "quality", STABLE_DAY)
    assert stable.success
    assert _checks(stable)["auc_drop"].passed, _checks(stable)["auc_drop"].description
    # Named for the target, not the shipped domain: the observed positive rate (target == 1) of the day.
    meta = stable.asset_materializations_for_node(f"{MODEL}__quality")[0].metadata
    assert 0.0 < meta["positive_rate"].value < 1.0 and "default_rate" not in meta
    assert "observed positive rate" in _checks(stable)["calibration"].description
    settings = scenario["settings"]
    stored = scalar(settings, f"SELECT positive_rate FROM monitoring.{MODEL}_quality WHERE day = DATE '{STABLE_DAY}'")
    assert stored == meta["positive_rate"].value

    changed = _checks(_monitor(defs, "quality", CONCEPT_DRIFT_START))
    assert not changed["auc_drop"].passed, changed["auc_drop"].description
    assert changed["auc_drop"].severity == dg.AssetCheckSeverity.ERROR


def test_the_drift_error_alerts_by_webhook_and_launches_one_retraining(scenario):
    """The real scenario's ERROR check reaches the sensor through the Dagster instance, as under the daemon."""
    defs = scenario["defs"]
    sensor = defs.resolve_sensor_def("monitoring_checks_sensor")
    hook = Webhook()
    hook.thread.start()
    try:
        with dg.DagsterInstance.get() as instance:
            drifted = defs.resolve_job_def(f"monitor_{MODEL}").execute_in_process(
                partition_key=DRIFT_START.isoformat(),
                asset_selection=[dg.AssetKey([MODEL, "drift"])],
                instance=instance,
                raise_on_error=False,
            )
            assert not _checks(drifted)["data_drift"].passed
            result, cursor = tick(sensor, instance, hook.alerts(), None)  # first tick: looks back one day
            assert [r.job_name for r in result.run_requests] == [f"train_{MODEL}"]
            again, _ = tick(sensor, instance, hook.alerts(), cursor)
            assert not getattr(again, "run_requests", None)  # nothing new since
    finally:
        hook.server.shutdown()
        hook.server.server_close()
    alerted = [p for p in hook.posts if "data_drift" in json.dumps(p)]
    assert alerted and "credit_score" in json.dumps(alerted[0])


def test_quality_waits_for_labels_and_served_days_are_read_from_the_real_marts(scenario):
    """On the dbt-built marts: a scored day whose labels are due after the history waits (nothing fails), and a
    trailing reference reads the served days before it, every row scored by the serving version."""
    from assets.ml.spec import load_spec
    from assets.monitoring.reference import served_days, served_reference
    from resources.build import open_warehouse

    defs, settings = scenario["defs"], scenario["settings"]
    day = CONCEPT_DRIFT_START + timedelta(days=1)  # its labels arrive after HISTORY's last day
    assert run_days(defs, "nightly", day, day, asset_selection=[dg.AssetKey([MODEL, "predictions"])]).success
    result = _monitor(defs, "quality", day)
    assert result.success
    meta = result.asset_materializations_for_node(f"{MODEL}__quality")[0].metadata
    due = day + timedelta(days=int(settings.label_delay_days))
    assert meta["status"].value == "waiting" and meta["labels"].value == f"labels due on {due}"
    assert all(c.passed and c.description.startswith("not checked: labels due") for c in _checks(result).values())

    [spec_path] = sorted(settings.model_specs_dir.glob("*.yaml"))
    spec = load_spec(spec_path)
    spec = spec.model_copy(
        update={
            "monitoring": spec.monitoring.model_copy(
                update={"reference": type(spec.monitoring.reference)(kind="trailing_days", days=2)}
            )
        }
    )
    warehouse = open_warehouse(settings)
    days = served_days(warehouse, spec, day)
    assert days == [CONCEPT_DRIFT_START, DRIFT_START]
    champion = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri).by_alias(MODEL, CHAMPION)
    served = served_reference(warehouse, spec, days, champion.version, spec.features.all)
    assert len(served.frame) == 2 * ROWS_PER_DAY and served.scored_by_version == 2 * ROWS_PER_DAY
    assert list(served.frame.columns) == [*spec.features.all, "score"]
