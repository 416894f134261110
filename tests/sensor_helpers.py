"""Test helpers for alerts and sensors: a local webhook that records what it receives, a Dagster instance of the
test's own, the sensors built for throwaway models on a fake clock, and one sensor tick.

The fixtures (``webhook``, ``sensor_env``, ``dagster_instance``) are registered for every test module by
``pytest_plugins`` in conftest.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from resources.alerts import AlertsResource

RETRAIN_COOLDOWN_ENV = "NIGHTJAR_RETRAIN_COOLDOWN_HOURS"
PREDICTIONS_DUE_HOUR_ENV = "NIGHTJAR_PREDICTIONS_DUE_HOUR"
DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01")


class Webhook:
    """A local HTTP server recording every POSTed JSON body; paths containing /fail answer 500."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failing = "/fail" in self.path
                if not failing:
                    received.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.base}/hooks/T000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def alerts(self) -> AlertsResource:
        return AlertsResource(webhook_url=self.url, timeout_seconds=5)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A running :class:`Webhook`, shut down after the test."""
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def sensor_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Sensor settings at their defaults (UTC, due at 06:00, 24 h cool-down) unless a test sets them."""
    for name in (RETRAIN_COOLDOWN_ENV, PREDICTIONS_DUE_HOUR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NIGHTJAR_TIMEZONE", "UTC")
    yield monkeypatch


@pytest.fixture
def dagster_instance(tmp_path: Path, sensor_env: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance of the test's own, in tmp_path (the sensor settings at their defaults)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        yield instance


class FakeClock:
    """The sensors' clock: a test moves ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def demo_spec(name: str = "demo_model"):
    """The shipped loan spec under another model name."""
    from assets.ml.spec import load_spec
    from resources.settings import MODEL_SPECS_DIR

    return load_spec(MODEL_SPECS_DIR / "loan_default.yaml").model_copy(update={"name": name})


def training_job(name: str) -> dg.JobDefinition:
    """A do-nothing ``train_<name>`` job for the sensors to target."""

    @dg.op(name=f"noop_{name}")
    def noop() -> None:
        pass

    @dg.job(name=f"train_{name}")
    def train() -> None:
        noop()

    return train


def sensors_for(names: list[str], clock: Callable[[], datetime]) -> dict[str, dg.SensorDefinition]:
    """The real sensors, by name, for throwaway models ``names`` with do-nothing training jobs, on ``clock``."""
    from jobs.sensors import build_sensors
    from resources.settings import Settings

    specs = [demo_spec(n) for n in names]
    built = build_sensors(specs, {n: training_job(n) for n in names}, Settings.from_env(), clock=clock)
    return {s.name: s for s in built}


def checked_asset(
    path: list[str],
    check_name: str,
    severity: dg.AssetCheckSeverity,
    passed: bool = False,
    description: str = "columns drifted: credit_score",
) -> dg.AssetsDefinition:
    """A daily asset with one check that reports ``passed`` at ``severity``."""
    key = dg.AssetKey(path)

    @dg.asset(key=key, partitions_def=DAILY, check_specs=[dg.AssetCheckSpec(check_name, asset=key)])
    def _asset():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name=check_name, passed=passed, severity=severity, description=description)

    return _asset


def failed_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A run of job ``fragile`` in ``instance``, failed: its one step ``explode`` raised ValueError("disk full")."""

    @dg.op
    def explode() -> None:
        raise ValueError("disk full")

    @dg.job
    def fragile() -> None:
        explode()

    result = fragile.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, alerts: AlertsResource, cursor: str | None):
    """Evaluate a sensor once, as the daemon would; returns (result, cursor to pass to the next tick)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts})
    result = sensor(context)
    new_cursor = result.cursor if isinstance(result, dg.SensorResult) and result.cursor else cursor
    return result, new_cursor
