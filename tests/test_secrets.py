"""No secret is shown: a user:password in MLFLOW_TRACKING_URI reaches MLflow (through its credential variables)
and nothing else: not the settings, not the registry resource the UI's resource page shows, not a link, a message,
the metadata, the event log or a log line. And one call to MLflow has a bounded wait, whatever MLflow's defaults.

The last test is the operator's check: a training run of the real job (``dagster job execute``) against an MLflow
server started here, with a known password in the tracking URI, then a grep of everything the run wrote (the Dagster
home, the warehouse, the MLflow server's store, the run's output) for that password."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from assets.ml.provenance import dagster_run_url
from resources.registry import ModelRegistry, RegistryError, safe_uri
from resources.reports import MonitoringReports
from resources.settings import (
    MLFLOW_PASSWORD_VAR,
    MLFLOW_USERNAME_VAR,
    PROJECT_ROOT,
    MlflowHttpBudget,
    Settings,
    redact_url,
    split_credentials,
)
from tests.mlflow_server import running_mlflow_server
from tests.stores import point_stores_at

USER = "nightjar-bot"
PASSWORD = "Kn0wn@pa55:w0rd-7f3c9"  # an "@" and a ":" in it: the URI carries it percent-encoded
IN_URI = quote(PASSWORD, safe="")
SECRETS = (PASSWORD, IN_URI)
MODEL = "loan_default_risk"


@pytest.fixture
def no_mlflow_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither credential variable set, and both removed again after the test (settings export them)."""
    for name in (MLFLOW_USERNAME_VAR, MLFLOW_PASSWORD_VAR):
        monkeypatch.setenv(name, "unset")  # recorded as absent before the test: deleted again at teardown
        monkeypatch.delenv(name)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (f"http://{USER}:{IN_URI}@mlflow.internal:5000/prefix", "http://mlflow.internal:5000/prefix"),
        (f"https://{USER}@mlflow.internal/", "https://mlflow.internal/"),
        ("https://token-only:x-oauth@host/#/experiments/1", "https://host/#/experiments/1"),
        ("postgresql://mlflow:dbpass@db:5432/mlflow", "postgresql://db:5432/mlflow"),
        ("http://u:p@ss@host/x", "http://host/x"),  # an unencoded "@" in the password: removed whole
        ("https://bucket.s3/m.pkl?X-Amz-Signature=abc123&x=1", "https://bucket.s3/m.pkl?X-Amz-Signature=***&x=1"),
        ("http://host/api?token=abc&password=def", "http://host/api?token=***&password=***"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://host/path/user@example.com?q=a@b", "http://host/path/user@example.com?q=a@b"),  # no userinfo
        (
            "could not reach http://a:b@h1:1/x, then https://c:d@h2/y",
            "could not reach http://h1:1/x, then https://h2/y",
        ),
    ],
)
def test_redact_url_removes_userinfo_and_secret_query_values_from_any_url(shown, expected):
    assert redact_url(shown) == expected


def test_split_credentials_takes_the_userinfo_off_a_servers_uri_only():
    assert split_credentials(f"http://{USER}:{IN_URI}@h:5000/p?x=1") == ("http://h:5000/p?x=1", USER, PASSWORD)
    assert split_credentials("https://only-user@h") == ("https://h", "only-user", None)
    assert split_credentials("http://h:5000") == ("http://h:5000", None, None)
    # A database store needs its password to connect: it stays in the URI (shown only through redact_url).
    assert split_credentials("postgresql://u:p@db/mlflow") == ("postgresql://u:p@db/mlflow", None, None)


def _resource_pages(defs) -> str:
    """What the Dagster UI's resource pages show: every resource's configured fields (pydantic's dump of each
    ``ConfigurableResource``), as text."""
    return "\n".join(
        f"{name}: {resource.model_dump() if hasattr(resource, 'model_dump') else resource!r}"
        for name, resource in (defs.resources or {}).items()
    )


def test_settings_and_the_resource_page_hold_no_password_and_mlflow_gets_it(
    tmp_path, monkeypatch, no_mlflow_credentials
):
    from mlflow.utils.credentials import get_default_host_creds

    from definitions import build_definitions

    uri = f"http://{USER}:{IN_URI}@127.0.0.1:5999/mlflow"
    settings = point_stores_at(tmp_path, monkeypatch, MLFLOW_TRACKING_URI=uri, NIGHTJAR_MLFLOW_ARTIFACT_ROOT="")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5999/mlflow"
    assert not _leaks(repr(settings))
    assert (os.environ[MLFLOW_USERNAME_VAR], os.environ[MLFLOW_PASSWORD_VAR]) == (USER, PASSWORD)

    # What the Dagster UI shows of the resources: each one's configured fields.
    shown = _resource_pages(build_definitions(settings))
    assert "127.0.0.1:5999/mlflow" in shown  # the registry's tracking_uri is in it...
    assert not _leaks(shown)  # ...without the password

    # MLflow builds every request to the server from these: the credentials go with each, as basic auth.
    registry = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri)
    creds = get_default_host_creds(registry.connect_uri)
    assert (creds.host, creds.username, creds.password) == ("http://127.0.0.1:5999/mlflow", USER, PASSWORD)


def test_a_spark_connect_token_is_handed_to_pyspark_and_shown_nowhere(tmp_path, monkeypatch):
    """A token in NIGHTJAR_SPARK_REMOTE (``sc://host:port/;token=...``, as Databricks and others give it) goes to
    pyspark's SPARK_CONNECT_AUTHENTICATE_TOKEN, which every Spark Connect session reads (dbt-spark's too); the
    settings, the warehouse's description, the resource page and dbt's resource keep the address without it."""
    from pyspark.sql.connect.client import DefaultChannelBuilder

    from definitions import build_definitions
    from resources.build import build_warehouse
    from resources.settings import SPARK_TOKEN_VAR, split_spark_token

    monkeypatch.setenv(SPARK_TOKEN_VAR, "unset")  # recorded as absent before the test: deleted again at teardown
    monkeypatch.delenv(SPARK_TOKEN_VAR)
    remote = f"sc://spark.internal:15002/;use_ssl=true;token={PASSWORD};x-secret-key=k;user_id=ana"
    assert split_spark_token(remote) == ("sc://spark.internal:15002/;use_ssl=true;user_id=ana", PASSWORD)
    assert split_spark_token("sc://127.0.0.1:15002") == ("sc://127.0.0.1:15002", None)
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_ENGINE="spark", NIGHTJAR_SPARK_REMOTE=remote)
    assert settings.spark_remote == "sc://spark.internal:15002/;use_ssl=true;user_id=ana"
    assert os.environ[SPARK_TOKEN_VAR] == PASSWORD
    assert not _leaks(repr(settings)) and not _leaks(build_warehouse(settings).describe())
    # pyspark's client sends the token from the environment with the address as shown.
    channel = DefaultChannelBuilder(settings.spark_remote)
    assert (channel.token, channel.host, channel.secure) == (PASSWORD, "spark.internal", True)

    shown = _resource_pages(build_definitions(settings))
    assert "spark.internal:15002" in shown and not _leaks(shown)


def test_credentials_the_user_set_win_over_those_in_the_uri(tmp_path, monkeypatch, no_mlflow_credentials):
    monkeypatch.setenv(MLFLOW_PASSWORD_VAR, "their-own")
    uri = f"http://{USER}:{IN_URI}@127.0.0.1:5999"
    settings = point_stores_at(tmp_path, monkeypatch, MLFLOW_TRACKING_URI=uri, NIGHTJAR_MLFLOW_ARTIFACT_ROOT="")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5999"
    assert os.environ[MLFLOW_PASSWORD_VAR] == "their-own" and os.environ[MLFLOW_USERNAME_VAR] == USER


def test_a_registry_given_a_password_anyway_shows_it_nowhere(tmp_path, no_mlflow_credentials):
    registry = ModelRegistry(tracking_uri=f"http://{USER}:{IN_URI}@127.0.0.1:9/mlflow")  # port 9: nothing answers
    assert registry.connect_uri == "http://127.0.0.1:9/mlflow"  # what MLflow is given (it prints it)
    assert os.environ[MLFLOW_PASSWORD_VAR] == PASSWORD  # and the credentials go where MLflow reads them
    shown = [
        registry.shown_uri,
        registry.ui_link("run1", "7"),
        safe_uri(registry.tracking_uri),
        dagster_run_url(f"http://{USER}:{IN_URI}@dagster.internal:3000/", "run1"),  # into MLflow run descriptions
        MonitoringReports(directory=str(tmp_path), base_url=f"https://{USER}:{IN_URI}@reports/x").served_url(
            tmp_path / "m" / "drift" / "2026-01-01.json.gz"
        ),
    ]
    assert (
        registry.ui_link("run1", "7")
        == "http://127.0.0.1:9/mlflow/#/experiments/7/runs/run1?workflowType=machine_learning"
    )
    assert not [s for s in shown if _leaks(s or "")], shown
    # A database URI keeps its password to connect, and shows none.
    database = ModelRegistry(tracking_uri="postgresql://mlflow:dbpass@db:5432/mlflow")
    assert "dbpass" not in safe_uri(database.tracking_uri) + database.shown_uri + database.ui_link("r", "1")


def test_a_registry_error_names_the_server_without_the_password(monkeypatch, no_mlflow_credentials):
    for name, value in MlflowHttpBudget(max_retries=0, timeout=1).environment().items():
        monkeypatch.setenv(name, value)
    registry = ModelRegistry(tracking_uri=f"http://{USER}:{IN_URI}@127.0.0.1:9/mlflow")
    with pytest.raises(RegistryError) as raised:
        registry.versions(MODEL)
    assert "MLflow registry at http://127.0.0.1:9: could not list the versions" in str(raised.value)
    assert not _leaks(str(raised.value))


def test_one_mlflow_call_waits_at_most_a_bounded_time_and_values_the_user_set_are_kept(
    tmp_path, monkeypatch, empty_mlflow_db
):
    for name in MlflowHttpBudget.VARIABLES.values():
        monkeypatch.setenv(name, "0")  # recorded, so that teardown puts back what was there
        monkeypatch.delenv(name)
    default = MlflowHttpBudget.from_env()
    assert default == MlflowHttpBudget(max_retries=3, backoff_factor=2, backoff_jitter=1.0, timeout=10)
    assert default.backoff_seconds() == 14 and default.worst_case_seconds() == 54 < 60
    # MLflow's own defaults: 7 retries, factor 2, 120 s timeout: about 4 minutes of sleeps alone.
    assert MlflowHttpBudget(7, 2, 1.0, 120).backoff_seconds() == 249

    import shutil

    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    ModelRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").client()
    assert {n: os.environ[n] for n in MlflowHttpBudget.VARIABLES.values()} == default.environment()

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # the user's own value wins
    settings = point_stores_at(tmp_path / "stores", monkeypatch)
    assert settings.mlflow_http.timeout == 30 and settings.mlflow_http.max_retries == 3
    ModelRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").client()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "11")
    with pytest.raises(ValueError, match=r"MLFLOW_HTTP_REQUEST_MAX_RETRIES=11 must be at most 10"):
        Settings.from_env()


# The operator's check, end to end.


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """An MLflow tracking server on 127.0.0.1 (SQLite store, artifacts proxied to a folder of its own): the URL and
    the folder holding everything it stores. Without an auth app, it ignores the basic-auth credentials it gets."""
    store = tmp_path_factory.mktemp("mlflow_server")
    log = store.parent / f"{store.name}.log"  # outside the store: it is grepped, the server's log is not ours
    with running_mlflow_server(store, store / "artifacts", log) as url:
        yield url, store


def _files_holding(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s!r}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow  # an MLflow server, the labeled mart (an ingest run, once per process) and a `dagster job execute`
def test_no_known_password_anywhere_after_a_training_run(
    mlflow_server, tmp_path, monkeypatch, empty_mlflow_db, no_mlflow_credentials
):
    from tests.ml_lab import Lab

    url, server_store = mlflow_server
    lab = Lab(tmp_path, monkeypatch, empty_mlflow_db)  # the labeled mart in the warehouse, the fast spec
    uri = url.replace("http://", f"http://{USER}:{IN_URI}@")
    point_stores_at(
        tmp_path,
        monkeypatch,
        MLFLOW_TRACKING_URI=uri,
        NIGHTJAR_MLFLOW_ARTIFACT_ROOT="",
        NIGHTJAR_MODEL_SPECS_DIR=str(lab.specs),
    )
    (tmp_path / "mlflow.db").unlink()  # the lab's SQLite store: unused here
    with dg.DagsterInstance.get():  # the Dagster home's storage, created before the run
        pass
    # The run's process reads the URI (with the password) itself: only MLFLOW_TRACKING_URI carries it.
    env = {k: v for k, v in os.environ.items() if k not in (MLFLOW_USERNAME_VAR, MLFLOW_PASSWORD_VAR)}
    dagster = Path(sys.executable).parent / "dagster"
    output = tmp_path / "run_output.log"
    with output.open("w") as out:
        done = subprocess.run(
            [str(dagster), "job", "execute", "-f", "definitions.py", "-d", str(PROJECT_ROOT), "-j", f"train_{MODEL}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    printed = output.read_text()
    assert done.returncode == 0, printed[-4000:]

    # The run did talk to the server, and MLflow printed its "View run ... at <tracking URI>" line.
    assert f"View run {MODEL}-" in printed and f"{url}/#/experiments/" in printed, printed[-4000:]
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey([MODEL, "model"]))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["mlflow_run"].startswith(f"{url}/#/experiments/"), metadata["mlflow_run"]
    assert ModelRegistry(tracking_uri=url).by_alias(MODEL, "champion").version == metadata["model_version"]

    # Nowhere: the Dagster home (event log, run storage, compute logs), the warehouse and reports, the MLflow
    # server's store (runs, tags, params, artifacts), the run's output.
    assert not _files_holding(tmp_path / "dagster_home", SECRETS)
    assert not _files_holding(tmp_path / "data", SECRETS)
    assert not _files_holding(server_store, SECRETS)
    assert not _leaks(printed)
    assert list((tmp_path / "dagster_home").rglob("*")) and list(server_store.rglob("MLmodel"))  # what was grepped
