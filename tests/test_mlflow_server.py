"""The same code against an MLflow tracking server, by configuration alone: MLFLOW_TRACKING_URI points at a
server started here on 127.0.0.1, which stores artifacts itself (proxied), as a shared server would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from resources.registry import CHAMPION, ModelRegistry
from tests.chain import run_days, scalar
from tests.stores import TEST_ROWS_PER_DAY, point_stores_at

pytestmark = pytest.mark.slow

MODEL = "loan_default_risk"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_server(tmp_path):
    port = _free_port()
    artifacts = tmp_path / "server_artifacts"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url, artifacts
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_training_and_scoring_against_a_tracking_server(tmp_path, monkeypatch, tracking_server):
    url, server_artifacts = tracking_server
    settings = point_stores_at(
        tmp_path / "client", monkeypatch, MLFLOW_TRACKING_URI=url, NIGHTJAR_MLFLOW_ARTIFACT_ROOT=""
    )
    assert settings.mlflow_tracking_uri == url and settings.mlflow_artifact_root is None
    from definitions import build_definitions

    defs = build_definitions(settings)
    assert run_days(defs, "ingest", date(2026, 1, 1), date(2026, 1, 30)).success
    assert defs.resolve_job_def(f"train_{MODEL}").execute_in_process().success
    day = date(2026, 1, 31)
    assert run_days(defs, "nightly", day, day).success

    champion = ModelRegistry(tracking_uri=url).by_alias(MODEL, CHAMPION)
    assert champion is not None and champion.version == 1
    assert scalar(settings, f"SELECT count(*) FROM predictions.{MODEL} WHERE model_version = 1") == TEST_ROWS_PER_DAY
    # The model and the run's artifacts live on the server's side, not in the client's folders.
    stored = {p.name for p in server_artifacts.rglob("*")}
    assert {"MLmodel", "reference.parquet", "roc_curve.png"} <= stored
    assert not (tmp_path / "client" / "mlartifacts").exists()
