"""The same code against an MLflow tracking server, by configuration alone: MLFLOW_TRACKING_URI points at a
server started here on 127.0.0.1, which stores artifacts itself (proxied), as a shared server would."""

from __future__ import annotations

from datetime import date

import pytest

from resources.registry import CHAMPION, ModelRegistry
from tests.chain import run_days, scalar
from tests.mlflow_server import running_mlflow_server
from tests.stores import TEST_ROWS_PER_DAY, point_stores_at

pytestmark = pytest.mark.slow

MODEL = "loan_default_risk"


@pytest.fixture
def tracking_server(tmp_path):
    artifacts = tmp_path / "server_artifacts"
    with running_mlflow_server(tmp_path, artifacts, tmp_path / "server.log", timeout=90) as url:
        yield url, artifacts


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
