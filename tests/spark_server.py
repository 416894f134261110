"""A real Spark Connect server for the Spark tests, started once per test module on a free 127.0.0.1 port, with
its metastore and tables in a temp folder; stopped when the module ends. Skipped, saying why, where no Java is."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from resources.spark_server import LocalSparkServer
from tests.mlflow_server import free_port


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSparkServer]:
    if shutil.which("java") is None:
        pytest.skip("no Java on this machine: .ci/run installs Debian's openjdk-17-jre-headless")
    server = LocalSparkServer(folder=tmp_path_factory.mktemp("spark"), port=free_port(), cores=2)
    server.start()
    try:
        yield server
    finally:
        _stop_sessions()
        # After a module's jobs the JVM can sit in its shutdown hooks past a minute (60 s of each Spark module's
        # teardown in CI); its state is a temp folder, so it gets 5 s before SIGKILL.
        server.stop(timeout=5.0)


def _stop_sessions() -> None:
    """Stop the sessions this process still has on the server: a session left active after its server is gone
    would stall whatever asks for the active session (MLflow does, on every run it starts, and retries for
    minutes)."""
    from pyspark.sql import SparkSession

    while (session := SparkSession.getActiveSession()) is not None:
        session.stop()
