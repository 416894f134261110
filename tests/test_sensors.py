"""The alerting sensors against a real Dagster instance (in tmp_path) and a real webhook (a local HTTP server).

Events come from materializing small throwaway assets and running a failing job; the sensors are evaluated the way
Dagster's testing API allows (``build_sensor_context`` / ``build_run_status_sensor_context``). Time is a fake clock
passed to ``build_sensors``.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from jobs.sensors import build_sensors
from resources.alerts import AlertDeliveryError, AlertsResource, build_payload
from resources.settings import Settings
from tests.sensor_helpers import (
    DAILY,
    PREDICTIONS_DUE_HOUR_ENV,
    RETRAIN_COOLDOWN_ENV,
    FakeClock,
    checked_asset,
    demo_spec,
    failed_run,
    sensors_for,
    tick,
)


def materialize(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, day: str) -> None:
    assert dg.materialize([asset], instance=instance, partition_key=day).success


START = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


# --- the factory -----------------------------------------------------------------------------------------------------


def test_sensors_are_named_running_and_target_the_training_jobs(sensor_env):
    sensors = sensors_for(["demo_model"], FakeClock(START))
    assert set(sensors) == {"alert_on_run_failure", "monitoring_checks_sensor", "missing_predictions_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert [j.name for j in sensors["monitoring_checks_sensor"].jobs] == ["train_demo_model"]
    assert all("alerts" in s.required_resource_keys for s in sensors.values())


def test_factory_rejects_a_model_without_training_job(sensor_env):
    with pytest.raises(ValueError, match=r"no training job for model\(s\) \['demo_model'\]"):
        build_sensors([demo_spec()], {}, Settings.from_env())


def test_settings_from_environment_are_validated(sensor_env):
    settings = Settings.from_env()
    assert settings.retrain_cooldown_hours == 24 and settings.predictions_due_hour == 6
    sensor_env.setenv(RETRAIN_COOLDOWN_ENV, "soon")
    with pytest.raises(ValueError, match=f"{RETRAIN_COOLDOWN_ENV}='soon' is not a number"):
        Settings.from_env()
    sensor_env.setenv(RETRAIN_COOLDOWN_ENV, "2")
    sensor_env.setenv(PREDICTIONS_DUE_HOUR_ENV, "24")
    with pytest.raises(ValueError, match=f"{PREDICTIONS_DUE_HOUR_ENV}=24 must be an hour from 0 to 23"):
        Settings.from_env()


# --- a. failed runs --------------------------------------------------------------------------------------------------


def test_failed_run_alerts_with_job_run_step_and_error(sensor_env, webhook, dagster_instance):
    result = failed_run(dagster_instance)
    sensor = sensors_for(["demo_model"], FakeClock(START))["alert_on_run_failure"]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=dagster_instance,
        dagster_run=result.dagster_run,
        resources={"alerts": webhook.alerts()},
    )
    sensor(context)

    [alert] = webhook.posts
    assert alert["severity"] == "error" and alert["source"] == "nightjar"
    assert alert["title"] == "Run failed: fragile"
    assert result.run_id in alert["message"]
    assert "step explode: ValueError: disk full" in alert["message"]
    assert alert["text"].startswith("[ERROR] Run failed: fragile\n")  # what Slack shows
    assert alert["details"]["failed_steps"] == {"explode": "ValueError: disk full"}
    assert alert["details"]["run_id"] == result.run_id


# --- b. failed checks and retraining -------------------------------------------------------------------------------


def test_error_drift_requests_one_training_then_respects_the_cooldown(sensor_env, webhook, dagster_instance):
    clock = FakeClock(START)
    sensor = sensors_for(["demo_model"], clock)["monitoring_checks_sensor"]
    alerts = webhook.alerts()
    drift = checked_asset(["demo_model", "drift"], "data_drift", dg.AssetCheckSeverity.ERROR)

    # The first tick on an empty instance: nothing to see.
    result, cursor = tick(sensor, dagster_instance, alerts, None)
    assert not result.run_requests

    materialize(dagster_instance, drift, "2026-03-08")
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    [request] = result.run_requests
    assert request.job_name == "train_demo_model"
    [alert] = webhook.posts
    assert alert["severity"] == "error"
    assert alert["details"] | {"run_id": None, "job_name": None} == {
        "asset_key": "demo_model/drift",
        "check_name": "data_drift",
        "severity": "ERROR",
        "description": "columns drifted: credit_score",
        "partition": "2026-03-08",
        "run_id": None,
        "job_name": None,
        "retraining": "requested train_demo_model",
    }
    assert "demo_model/drift data_drift (partition 2026-03-08)" in alert["title"]

    # Nothing new: skip, no alert.
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert not result.run_requests and "no run finished" in result.skip_reason.skip_message
    assert len(webhook.posts) == 1

    # A second ERROR inside the cool-down: alerted, but no second training.
    clock.now = START + timedelta(hours=5)
    materialize(dagster_instance, drift, "2026-03-09")
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert result.run_requests == []
    assert len(webhook.posts) == 2
    assert "cool-down until" in webhook.posts[-1]["details"]["retraining"]

    # After the cool-down: one training again.
    clock.now = START + timedelta(hours=24)
    materialize(dagster_instance, drift, "2026-03-10")
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    [again] = result.run_requests
    assert again.job_name == "train_demo_model" and again.run_key != request.run_key
    assert len(webhook.posts) == 3
    assert json.loads(cursor)["last_retrain"] == {"demo_model": clock.now.isoformat()}


def test_first_tick_looks_back_one_day_and_no_further(sensor_env, webhook, dagster_instance):
    """Turned on after a failure (e.g. `dagster dev` after `make run`), the sensor still acts on last night's
    checks; turned on long after, it does not replay old history."""
    drift = checked_asset(["demo_model", "drift"], "data_drift", dg.AssetCheckSeverity.ERROR)
    materialize(dagster_instance, drift, "2026-03-08")
    ended = datetime.now(UTC)

    late = sensors_for(["demo_model"], FakeClock(ended + timedelta(hours=25)))["monitoring_checks_sensor"]
    result, _ = tick(late, dagster_instance, webhook.alerts(), None)
    assert not result.run_requests and webhook.posts == []

    soon = sensors_for(["demo_model"], FakeClock(ended + timedelta(hours=1)))["monitoring_checks_sensor"]
    result, _ = tick(soon, dagster_instance, webhook.alerts(), None)
    assert [r.job_name for r in result.run_requests] == ["train_demo_model"]
    assert len(webhook.posts) == 1


def test_cooldown_hours_come_from_the_environment(sensor_env, webhook, dagster_instance):
    sensor_env.setenv(RETRAIN_COOLDOWN_ENV, "2")
    clock = FakeClock(START)
    sensor = sensors_for(["demo_model"], clock)["monitoring_checks_sensor"]
    quality = checked_asset(["demo_model", "quality"], "auc_drop", dg.AssetCheckSeverity.ERROR, description="auc -0.09")
    _, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)

    counts = []
    for hours in (0, 1, 3):
        clock.now = START + timedelta(hours=hours)
        materialize(dagster_instance, quality, "2026-03-09")
        result, cursor = tick(sensor, dagster_instance, webhook.alerts(), cursor)
        counts.append(len(result.run_requests))
    assert counts == [1, 0, 1]


def test_one_training_per_model_and_tick_even_without_cooldown(sensor_env, webhook, dagster_instance):
    sensor_env.setenv(RETRAIN_COOLDOWN_ENV, "0")
    sensor = sensors_for(["demo_model"], FakeClock(START))["monitoring_checks_sensor"]
    _, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)
    key = dg.AssetKey(["demo_model", "drift"])

    checks = [dg.AssetCheckSpec("data_drift", asset=key), dg.AssetCheckSpec("score_drift", asset=key)]

    @dg.asset(key=key, check_specs=checks)
    def drift():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="data_drift", passed=False, description="features drifted")
        yield dg.AssetCheckResult(check_name="score_drift", passed=False, description="score drifted")

    counts = []
    for _ in range(2):
        assert dg.materialize([drift], instance=dagster_instance).success
        result, cursor = tick(sensor, dagster_instance, webhook.alerts(), cursor)
        counts.append(len(result.run_requests))
    assert counts == [1, 1]  # no cool-down: every run may retrain, but once
    assert len(webhook.posts) == 4


def test_a_cursor_the_sensor_did_not_write_is_a_clear_error(sensor_env, webhook, dagster_instance):
    sensor = sensors_for(["demo_model"], FakeClock(START))["monitoring_checks_sensor"]
    with pytest.raises(ValueError, match="clear it in the UI"):
        tick(sensor, dagster_instance, webhook.alerts(), "12345")


def test_warn_failures_and_other_checks_alert_without_training(sensor_env, webhook, dagster_instance):
    sensor = sensors_for(["demo_model"], FakeClock(START))["monitoring_checks_sensor"]
    _, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)

    materialize(
        dagster_instance,
        checked_asset(
            ["demo_model", "drift"], "score_drift", dg.AssetCheckSeverity.WARN, description="score drift 0.12"
        ),
        "2026-03-09",
    )
    # Any check alerts, not only monitoring ones; but only monitoring checks retrain.
    materialize(
        dagster_instance,
        checked_asset(["orders"], "row_count", dg.AssetCheckSeverity.ERROR, description="0 rows"),
        "2026-03-09",
    )
    materialize(
        dagster_instance,
        checked_asset(
            ["demo_model", "quality"], "calibration", dg.AssetCheckSeverity.ERROR, passed=True, description="fine"
        ),
        "2026-03-09",
    )
    result, cursor = tick(sensor, dagster_instance, webhook.alerts(), cursor)

    assert result.run_requests == []
    by_check = {p["details"]["check_name"]: p for p in webhook.posts}
    assert set(by_check) == {"score_drift", "row_count"}  # the passing check is not alerted
    assert by_check["score_drift"]["severity"] == "warning"
    assert by_check["score_drift"]["details"]["retraining"] == "warning only: no retraining"
    assert by_check["row_count"]["severity"] == "error"
    assert by_check["row_count"]["details"]["retraining"] is None
    assert by_check["row_count"]["details"]["asset_key"] == "orders"


def test_checks_of_a_failed_run_are_still_read(sensor_env, webhook, dagster_instance):
    sensor = sensors_for(["demo_model"], FakeClock(START))["monitoring_checks_sensor"]
    _, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)
    key = dg.AssetKey(["demo_model", "drift"])

    @dg.asset(key=key, check_specs=[dg.AssetCheckSpec("data_drift", asset=key)])
    def drift():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="data_drift", passed=False, description="drifted")

    @dg.asset(deps=[drift])
    def downstream() -> None:
        raise RuntimeError("later step broke")

    assert not dg.materialize([drift, downstream], instance=dagster_instance, raise_on_error=False).success
    result, _ = tick(sensor, dagster_instance, webhook.alerts(), cursor)
    assert [r.job_name for r in result.run_requests] == ["train_demo_model"]
    assert [p["details"]["check_name"] for p in webhook.posts] == ["data_drift"]


# --- c. missing predictions ---------------------------------------------------------------------------------------


def predictions_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(key=dg.AssetKey([name, "predictions"]), partitions_def=DAILY)
    def _predictions() -> None:
        pass

    return _predictions


def test_missing_predictions_alert_once_after_the_due_hour(sensor_env, webhook, dagster_instance):
    clock = FakeClock(datetime(2026, 3, 10, 5, 59, tzinfo=UTC))
    sensor = sensors_for(["demo_model", "other_model"], clock)["missing_predictions_sensor"]
    materialize(dagster_instance, predictions_asset("other_model"), "2026-03-09")
    alerts = webhook.alerts()

    result, cursor = tick(sensor, dagster_instance, alerts, None)
    assert isinstance(result, dg.SkipReason) and "before the due hour 06:00" in result.skip_message
    assert webhook.posts == []

    clock.now = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    [alert] = webhook.posts  # other_model's partition exists
    assert alert["severity"] == "error"
    assert alert["details"] | {"timezone": None} == {
        "model": "demo_model",
        "asset_key": "demo_model/predictions",
        "partition": "2026-03-09",
        "due_hour": 6,
        "timezone": None,
    }
    assert "2026-03-09" in alert["message"] and "06:00" in alert["message"]

    clock.now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert len(webhook.posts) == 1  # alerted once per model and day

    # The next day is a new day; a partition materialized late is not alerted.
    materialize(dagster_instance, predictions_asset("demo_model"), "2026-03-10")
    clock.now = datetime(2026, 3, 11, 6, 30, tzinfo=UTC)
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert [(p["details"]["model"], p["details"]["partition"]) for p in webhook.posts[1:]] == [
        ("other_model", "2026-03-10")
    ]


def test_due_hour_and_yesterday_are_in_the_configured_timezone(sensor_env, webhook, dagster_instance):
    sensor_env.setenv("NIGHTJAR_TIMEZONE", "America/New_York")  # UTC-4 in March 2026 (after the DST switch)
    sensor_env.setenv(PREDICTIONS_DUE_HOUR_ENV, "7")
    clock = FakeClock(datetime(2026, 3, 10, 10, 30, tzinfo=UTC))  # 06:30 in New York
    sensor = sensors_for(["demo_model"], clock)["missing_predictions_sensor"]

    result, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)
    assert isinstance(result, dg.SkipReason) and webhook.posts == []

    clock.now = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)  # 22:00 on March 10 in New York
    tick(sensor, dagster_instance, webhook.alerts(), cursor)
    [alert] = webhook.posts
    assert alert["details"]["partition"] == "2026-03-09"
    assert "07:00 America/New_York" in alert["message"]


# --- the alerts resource ------------------------------------------------------------------------------------------


def test_webhook_error_names_host_and_status_but_not_the_token(webhook):
    alerts = AlertsResource(webhook_url=f"{webhook.base}/fail/T000/secret-token", retry_delay_seconds=0)
    with pytest.raises(AlertDeliveryError) as raised:
        alerts.deliver(build_payload("t", "error", "x", None))
    message = str(raised.value)
    assert f"127.0.0.1:{webhook.server.server_port}" in message and "500" in message
    assert "secret-token" not in message and "/fail" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_webhook_that_stays_down_is_retried_then_logged_never_raised(caplog):
    alerts = AlertsResource(
        webhook_url="http://127.0.0.1:9/hooks/secret-token", timeout_seconds=2, retry_delay_seconds=0
    )
    with caplog.at_level(logging.WARNING, logger="nightjar.alerts"):
        assert alerts.send("t", "warning", "x") is False
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "could not reach alert webhook at 127.0.0.1:9" in messages[-1] and caplog.records[-1].levelno == logging.ERROR
    )
    assert not any("secret-token" in m for m in messages)


@pytest.fixture
def scripted_webhook():
    """A local webhook answering each POST with the next status of ``statuses`` (then 200); ``codes`` records them."""
    hook = type("Scripted", (), {"statuses": [], "codes": []})()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            code = hook.statuses.pop(0) if hook.statuses else 200
            hook.codes.append(code)
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_port}/hooks/secret-token"
    yield hook
    server.shutdown()
    server.server_close()


def test_a_webhook_that_answers_503_then_200_gets_the_alert_and_a_404_is_not_retried(scripted_webhook, caplog):
    alerts = AlertsResource(webhook_url=scripted_webhook.url, retry_delay_seconds=0, max_attempts=3)
    scripted_webhook.statuses = [503, 429]
    with caplog.at_level(logging.WARNING, logger="nightjar.alerts"):
        assert alerts.send("t", "error", "x") is True
    assert scripted_webhook.codes == [503, 429, 200]
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and "HTTP 503" in retries[0] and "(attempt 1 of 3); retrying in 0.0 s" in retries[0]

    scripted_webhook.codes.clear()
    scripted_webhook.statuses = [404]
    assert alerts.send("t", "error", "x") is False  # a wrong URL stays wrong: one attempt
    assert scripted_webhook.codes == [404]


def test_after_a_webhook_stayed_down_the_same_resource_tries_each_alert_once(scripted_webhook):
    alerts = AlertsResource(webhook_url=scripted_webhook.url, retry_delay_seconds=0, max_attempts=2)
    scripted_webhook.statuses = [500, 500, 500]
    assert alerts.send("first", "error", "x") is False
    assert scripted_webhook.codes == [500, 500]
    assert alerts.send("second", "error", "x") is False  # one attempt: a dead webhook cannot stall a tick
    assert scripted_webhook.codes == [500, 500, 500]
    assert alerts.send("third", "error", "x") is True  # it answers again: back to normal
    assert scripted_webhook.codes == [500, 500, 500, 200]


def test_without_webhook_alerts_are_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="nightjar.alerts"):
        AlertsResource().send("Check failed", "WARN", "score drift 0.12")
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "Check failed: score drift 0.12"
    with pytest.raises(ValueError, match="severity 'info'"):
        AlertsResource().send("t", "info", "x")


def test_no_predictions_are_due_after_the_partitions_end(sensor_env, webhook, dagster_instance):
    """A deployment over a past window (NIGHTJAR_END_DATE): yesterday has no partition, so nothing is missing."""
    sensor_env.setenv("NIGHTJAR_END_DATE", "2026-03-01")
    clock = FakeClock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC))
    sensor = sensors_for(["demo_model"], clock)["missing_predictions_sensor"]
    result, _ = tick(sensor, dagster_instance, webhook.alerts(), None)
    assert isinstance(result, dg.SkipReason) and "the partitions end on 2026-03-01" in result.skip_message
    assert webhook.posts == []
