"""A running nightjar, as `make run` then `make dev` leave it, for the live UI test and the screenshots.

:func:`live_stack` does in a folder of its own what a user does on a fresh clone: prepares a Dagster home (a copy of
the repo's ``dagster_home/dagster.yaml``, ``python -m resources.instance``), serves the reports folder over HTTP as
`make dev` does (``python -m resources.report_server``, with ``NIGHTJAR_REPORTS_BASE_URL`` pointing at it), runs a small
bootstrap (``python -m jobs.bootstrap``: a month of history, three scored and drift-checked days), trains a second
version so a promotion has something to promote (``dagster job execute``, ``retrain_unchanged``), and starts ``dg
dev`` (as `make dev` does) and ``mlflow ui`` on 127.0.0.1 and free ports, never the defaults (3000, 5000, 8090): the
links the runs record (``NIGHTJAR_DAGSTER_URL``, ``NIGHTJAR_MLFLOW_UI_URL``, ``NIGHTJAR_REPORTS_BASE_URL``) point at
those ports, as `make run DAGSTER_PORT=... MLFLOW_PORT=...` records them. :class:`DagsterUI` talks to Dagster through
its GraphQL API, as the UI does.

Every server runs in its own process group, killed with everything it started when the stack closes; nothing is
written outside the folder. Waits poll for what they wait for, up to a generous deadline: no fixed sleeps.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

from resources.settings import DBT_PROJECT_DIR, MODEL_SPECS_DIR, PROJECT_ROOT, stores_under

BIN = Path(sys.executable).parent  # the venv's scripts, as `make` runs them
MODEL = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())["name"]
LOCATION = "nightjar"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # what Dagster names the repository of a Definitions object
# A fixed window (whatever today is) of 31 days: enough labeled days for the shipped spec to clear its floor.
FIRST_DAY, LAST_DAY = "2026-02-10", "2026-03-12"
SCORED_DAYS = 3
DEFAULT_PORTS = (3000, 5000, 8090)  # what the stack must not use: links must follow the settings
STARTUP_DEADLINE_S = 600  # loading definitions imports dbt, MLflow and Evidently: slow on a loaded machine
RUN_DEADLINE_S = 600
STEP_TIMEOUT_S = 1200
STOP_GRACE_S = 20
POLL_S = 1.0
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def stack_env(root: Path) -> dict[str, str]:
    """The environment of every process of the stack: the user's, minus any nightjar, MLflow or Dagster setting,
    plus stores and a copy of the dbt project under ``root``, and a small, fixed window of synthetic days."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIGHTJAR_", "MLFLOW_", "DAGSTER_"))}
    tmp = root / "tmp"  # dagster dev's sockets and workspace files, which a killed server leaves behind
    tmp.mkdir(parents=True, exist_ok=True)
    # `dagster dev` re-parses the dbt project into its target/ (dagster-dbt's prepare_if_dev): a copy keeps the
    # repo's manifest untouched while other processes read it.
    dbt_copy = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, dbt_copy, ignore=shutil.ignore_patterns("logs", "sqlfluff", "*.lock"))
    return {
        **env,
        **stores_under(root),
        "NIGHTJAR_START_DATE": FIRST_DAY,
        "NIGHTJAR_END_DATE": LAST_DAY,
        "NIGHTJAR_ROWS_PER_DAY": "300",
        "NIGHTJAR_LABEL_DELAY_DAYS": "3",
        # The last day's applications drift (the synthetic source shifts its features): its drift check fails, as
        # a user would see a failed check on the asset.
        "NIGHTJAR_DRIFT_START": LAST_DAY,
        "NIGHTJAR_TIMEZONE": "UTC",
        "NIGHTJAR_CODE_VERSION": "ui-live",
        "NIGHTJAR_DBT_PROJECT_DIR": str(dbt_copy),
        "TMPDIR": str(tmp),
    }


def free_port() -> int:
    """A port nothing listens on, never one of the defaults (a link that works only there would pass unnoticed)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in DEFAULT_PORTS:
            return port


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} not written)"


def stop_group(proc: subprocess.Popen, stop_signal: int = signal.SIGTERM) -> None:
    """Asks the process to stop, then kills its whole process group (servers and the processes they started)."""
    if proc.poll() is None:
        proc.send_signal(stop_signal)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
    with suppress(ProcessLookupError):  # the group is gone already
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def server(
    cmd: list[str], env: dict[str, str], log: Path, stop_signal: int = signal.SIGTERM, **popen
) -> Iterator[subprocess.Popen]:
    """``cmd`` started in a process group of its own (its output in ``log``), stopped with its group on exit
    (``stop_signal`` first: ``dg dev`` stops on Ctrl-C, SIGINT, and waits out SIGTERM)."""
    with log.open("ab") as out:
        popen.setdefault("stdout", out)
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=env, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, **popen
        )
    try:
        yield proc
    finally:
        stop_group(proc, stop_signal)


@contextmanager
def serve_reports(folder: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """The reports folder served as `make dev` serves it; yields its base URL. The server binds a free port itself
    and says which (no port picked here that another process could take first)."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-u", "-m", "resources.report_server", "serve", "--dir", str(folder), "--port", "0"]
    with server(cmd, env, log, stdout=subprocess.PIPE) as proc:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=STARTUP_DEADLINE_S)
        line = proc.stdout.readline().decode() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, f"the reports server did not say where it serves (printed {line!r}); log: {_tail(log)}"
        yield f"http://127.0.0.1:{found.group(1)}"


def run_step(cmd: list[str], env: dict[str, str], log: Path) -> None:
    """One set-up command, as a user types it; fails with the end of its output."""
    with log.open("ab") as out:
        done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out, timeout=STEP_TIMEOUT_S)
    assert done.returncode == 0, f"`{' '.join(cmd)}` failed ({done.returncode}):\n{_tail(log)}"


class DagsterUI:
    """The Dagster webserver's GraphQL API, as the UI queries it."""

    def __init__(self, url: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
        self.url, self.proc, self.log = url, proc, log

    def query(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"dagster dev exited ({self.proc.returncode}); log:\n{_tail(self.log)}")

    def wait_until_loaded(self, deadline_s: float = STARTUP_DEADLINE_S) -> None:
        """Polls until the code location is loaded (the UI shows the assets); fails at once on a load error."""
        deadline, last = time.monotonic() + deadline_s, "no answer"
        while time.monotonic() < deadline:
            self._alive()
            try:
                entries = self.query(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
                )["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last = str(error)
            else:
                location = next((e for e in entries if e["name"] == LOCATION), None)
                loaded = location and location["loadStatus"] == "LOADED" and location["locationOrLoadError"]
                if loaded and loaded["__typename"] == "PythonError":
                    raise AssertionError(f"the code location failed to load: {loaded['message']}")
                if loaded:
                    return
                last = f"location entries {entries}"
            time.sleep(POLL_S)
        raise AssertionError(f"dagster dev not ready after {deadline_s} s ({last}); log:\n{_tail(self.log)}")

    def job_selector(self, job: str) -> dict:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "pipelineName": job}

    def launch(self, job: str, run_config: dict) -> str:
        """Launches ``job`` as the launchpad does; returns the run id."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job}
        result = self.query(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
                 ... on LaunchRunSuccess { run { runId } }
                 ... on RunConfigValidationInvalid { errors { message } }
                 ... on PythonError { message } } }""",
            params={"selector": selector, "runConfigData": run_config},
        )["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", f"launching {job} was refused: {result}"
        return result["run"]["runId"]

    def wait_for_run(self, run_id: str, deadline_s: float = RUN_DEADLINE_S) -> dict:
        """Polls the run until it finishes; returns its status and tags (``{key: value}``)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            self._alive()
            run = self.query(
                "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }", id=run_id
            )["runOrError"]
            if run["status"] in FINISHED:
                return {"status": run["status"], "tags": {t["key"]: t["value"] for t in run["tags"]}}
            time.sleep(POLL_S)
        raise AssertionError(f"run {run_id} not finished after {deadline_s} s; log:\n{_tail(self.log)}")

    def failure_messages(self, run_id: str) -> list[str]:
        """What the run's page shows as its errors."""
        events = self.query(
            """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename
                 ... on ExecutionStepFailureEvent { stepKey error { message } }
                 ... on RunFailureEvent { message } } } } }""",
            id=run_id,
        )["logsForRun"]["events"]
        return [
            e.get("error", {}).get("message") or e.get("message", "") for e in events if "Failure" in e["__typename"]
        ]


@dataclass(frozen=True)
class LiveStack:
    root: Path
    env: dict[str, str]
    ui: DagsterUI
    reports_url: str
    mlflow_url: str


def _train_a_challenger(env: dict[str, str], root: Path) -> None:
    """A second version of the model, trained on the same data (``retrain_unchanged``): the gate passes it, it does
    not beat the champion, so it waits as challenger for a person to promote it."""
    config = root / "retrain.yaml"
    config.write_text(yaml.safe_dump({"ops": {f"{MODEL}__model": {"config": {"retrain_unchanged": True}}}}))
    cmd = [str(BIN / "dagster"), "job", "execute", "-f", "definitions.py", "-j", f"train_{MODEL}", "-c", str(config)]
    run_step(cmd, env, root / "logs" / "retrain.log")


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, deadline_s: float = STARTUP_DEADLINE_S) -> None:
    """Polls ``url`` until it answers (any HTTP status); fails at once if the server exited."""
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server for {url} exited ({proc.returncode}); log:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer in {deadline_s} s; log:\n{_tail(log)}") from None
            time.sleep(POLL_S)


@contextmanager
def serve_mlflow_ui(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """`make mlflow-ui MLFLOW_PORT=<port>` on the stack's store; yields its URL once it answers."""
    cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", env["MLFLOW_TRACKING_URI"], "-h", "127.0.0.1"]
    with server([*cmd, "-p", str(port)], env, log) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", proc, log)
        yield url


@contextmanager
def live_stack(root: Path) -> Iterator[LiveStack]:
    """Bootstrap, reports server, ``mlflow ui`` and ``dg dev``, all under ``root`` and on ports other than the
    defaults; everything stopped on exit."""
    env, logs = stack_env(root), root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    dagster_port, mlflow_port = free_port(), free_port()
    # What `make run DAGSTER_PORT=... MLFLOW_PORT=...` exports: the links the runs record follow the ports.
    env["NIGHTJAR_DAGSTER_URL"] = f"http://127.0.0.1:{dagster_port}"
    env["NIGHTJAR_MLFLOW_UI_URL"] = f"http://127.0.0.1:{mlflow_port}"
    with ExitStack() as stack:
        reports = Path(env["NIGHTJAR_DATA_DIR"]) / "reports"
        env["NIGHTJAR_REPORTS_BASE_URL"] = stack.enter_context(serve_reports(reports, env, logs / "reports.log"))
        run_step([sys.executable, "-m", "resources.instance"], env, logs / "instance.log")
        run_step(
            [sys.executable, "-m", "jobs.bootstrap", "--scored-days", str(SCORED_DAYS)], env, logs / "bootstrap.log"
        )
        _train_a_challenger(env, root)
        mlflow_url = stack.enter_context(serve_mlflow_ui(env, mlflow_port, logs / "mlflow.log"))
        # `make dev`: `dg dev` with the project's venv active.
        dev_env = {**env, "VIRTUAL_ENV": str(BIN.parent), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
        log = logs / "dagster_dev.log"
        cmd = [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port)]
        dev = stack.enter_context(server(cmd, dev_env, log, stop_signal=signal.SIGINT))
        ui = DagsterUI(env["NIGHTJAR_DAGSTER_URL"], dev, log)
        ui.wait_until_loaded()
        yield LiveStack(root=root, env=env, ui=ui, reports_url=env["NIGHTJAR_REPORTS_BASE_URL"], mlflow_url=mlflow_url)
