"""Every setting nightjar reads, in one place, from the environment.

``build_definitions(Settings.from_env())`` (definitions.py) is the one place the environment is read: every
factory takes the ``Settings`` it is given, so two Definitions with different settings can live in one process.

One switch, ``NIGHTJAR_ENV`` (``local`` or ``prod``), picks the dbt target and the resources; everything else
is a plain environment variable with a default that works on a fresh clone with no servers. Secrets (database
passwords, webhook URLs) are never read here: resources take them through ``dagster.EnvVar`` so they stay out
of run config and the UI. The one exception is a user:password in ``MLFLOW_TRACKING_URI`` (``http://user:pw@host``):
it is split off here (:func:`split_credentials`), so the settings, the registry resource and everything they show
hold the URI without it, and handed to MLflow the way MLflow reads credentials (:func:`export_mlflow_credentials`);
so is a ``;token=`` in ``NIGHTJAR_SPARK_REMOTE``, handed to pyspark (:func:`spark_remote_from_env`).
Any URL that is logged, tagged or recorded goes through :func:`redact_url` first.

MLflow's own HTTP retries are bounded here too (:class:`MlflowHttpBudget`): MLflow's defaults spend about four
minutes on one call to a server that is down, before the step's retry policy even starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

# The one place the repository root is derived; everything else is relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MODEL_SPECS_DIR = PROJECT_ROOT / "model_specs"

ENVIRONMENTS = ("local", "prod")
ENGINES = ("duckdb", "postgres", "spark")  # where warehouse data lives (NIGHTJAR_ENGINE)
DEFAULT_SPARK_REMOTE = "sc://127.0.0.1:15002"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # where `make dev` serves the UI
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"  # where `make mlflow-ui` serves the MLflow UI of the local store


# user[:password]@ right after a URL's scheme, anywhere in a text; the greedy run stops at the host's first "/", "?"
# or "#", so a password holding an (unencoded) "@" is removed whole.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
# A query parameter whose name says it holds a secret (?token=..., &X-Amz-Signature=..., &password=...).
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&][^=&#\s]*(?:password|passwd|pwd|token|secret|signature|credential|api[_-]?key)[^=&#\s]*=)"
    r"[^&#\s]*",
    re.IGNORECASE,
)
MLFLOW_USERNAME_VAR = "MLFLOW_TRACKING_USERNAME"
MLFLOW_PASSWORD_VAR = "MLFLOW_TRACKING_PASSWORD"


def redact_url(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) without what may be a secret: the ``user:password@`` of every
    URL, and the values of query parameters named like secrets (``token``, ``password``, ``signature``...).
    Everything else, the path included, stays, so a link still leads where it led. Every URL nightjar logs, tags
    or records in metadata goes through here."""
    text = _URL_USERINFO.sub(lambda m: m["scheme"], text)
    return _SECRET_QUERY.sub(lambda m: m["name"] + "***", text)


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without userinfo, username, password)`` for an ``http(s)://user:password@host`` URI (both unquoted:
    ``%40`` is ``@``); other URIs come back whole with ``(None, None)``: a database URI needs its password to
    connect, and MLflow takes credentials from the environment only for a tracking server."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, has_password, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, unquote(username) or None, unquote(password) if has_password else None


def export_mlflow_credentials(username: str | None, password: str | None) -> list[str]:
    """Hand credentials taken out of a tracking URI to MLflow, which reads them (for every request to a tracking
    server, and for proxied artifacts) from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` or
    ``~/.mlflow/credentials`` only: there is no public client argument for them. So they are set in this process's
    environment, and only when the user put them in the URI; a variable the user already set wins, as it does in
    MLflow. Child processes (Dagster's run and step workers) inherit them, and read the URI again anyway.
    Returns the names of the variables set."""
    exported = []
    for name, value in ((MLFLOW_USERNAME_VAR, username), (MLFLOW_PASSWORD_VAR, password)):
        if value and not os.environ.get(name):
            os.environ[name] = value
            exported.append(name)
    return exported


def tracking_uri_from_env(default: str) -> str:
    """``MLFLOW_TRACKING_URI`` (or ``default``) without its credentials, which go to MLflow's credential variables
    (:func:`export_mlflow_credentials`): the URI every resource holds and every page shows."""
    clean, username, password = split_credentials(_env("MLFLOW_TRACKING_URI", default))
    export_mlflow_credentials(username, password)
    return clean


SPARK_TOKEN_VAR = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # where pyspark's Spark Connect client reads a token
_SECRET_PARAM = re.compile(r"token|password|secret", re.IGNORECASE)


def split_spark_token(remote: str) -> tuple[str, str | None]:
    """``(remote without secret parameters, token)`` for a Spark Connect address ``sc://host:port/;token=...``:
    the token is one of its ``;name=value`` parameters, and a parameter named like a secret is removed whole."""
    address, _, params = remote.partition("/;")
    kept, token = [], None
    for param in filter(None, params.split(";")):
        name, _, value = param.partition("=")
        if name == "token":
            token = value
        elif not _SECRET_PARAM.search(name):
            kept.append(param)
    return address + ("/;" + ";".join(kept) if kept else ""), token


def spark_remote_from_env(default: str) -> str:
    """``NIGHTJAR_SPARK_REMOTE`` (or ``default``) without its token, which goes to pyspark's own
    ``SPARK_CONNECT_AUTHENTICATE_TOKEN`` (unless the user set it), read by every Spark Connect session of this
    process and of its children (dbt-spark's included): the address every resource holds and every page shows
    carries no secret, as for MLflow's tracking URI."""
    clean, token = split_spark_token(_env("NIGHTJAR_SPARK_REMOTE", default))
    if token and not os.environ.get(SPARK_TOKEN_VAR):
        os.environ[SPARK_TOKEN_VAR] = token
    return clean


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_date(name: str, default: str) -> date | None:
    raw = _env(name, default)
    if raw.lower() in ("", "none", "off"):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a date (expected YYYY-MM-DD)") from None


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None
    if not value >= 0:  # also rejects nan
        raise ValueError(f"environment variable {name}={raw!r} must be 0 or more")
    return value


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"environment variable {name}={value} must be at least {minimum}")
    return value


# MLflow's own limits (mlflow.environment_variables): it refuses a request with more retries or a larger factor.
_MLFLOW_MAX_RETRIES_LIMIT = 10
_MLFLOW_MAX_BACKOFF_FACTOR_LIMIT = 120
_URLLIB3_BACKOFF_MAX = 120  # urllib3 caps one backoff sleep at this many seconds


@dataclass(frozen=True)
class MlflowHttpBudget:
    """How long one call to an MLflow tracking server may take before it fails, read from MLflow's own variables
    (``MLFLOW_HTTP_REQUEST_*``) with nightjar's defaults instead of MLflow's. MLflow's (7 retries, backoff factor 2,
    120 s timeout) spend about 4 minutes on a server that refuses connections, and about 20 on one that accepts them
    and never answers, in every attempt of a step; the step's own retry policy (``SERVER_RETRY_POLICY``) then
    multiplies that. These defaults give one call at most :meth:`worst_case_seconds` (54 s): 4 tries of at most
    10 s each, with 0, 4 (+ up to 1) and 8 (+ up to 1) s between them; a refused connection fails in about 14 s.
    A variable the user set is honoured (and checked here, so a bad value fails when definitions load)."""

    max_retries: int = 3  # MLFLOW_HTTP_REQUEST_MAX_RETRIES
    backoff_factor: int = 2  # MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: the n-th retry (n >= 2) waits factor * 2**(n-1) s
    backoff_jitter: float = 1.0  # MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: up to this many seconds more, at random
    timeout: int = 10  # MLFLOW_HTTP_REQUEST_TIMEOUT: seconds to connect, and to wait for each answer

    VARIABLES: ClassVar[dict[str, str]] = {
        "max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "backoff_jitter": "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
        "timeout": "MLFLOW_HTTP_REQUEST_TIMEOUT",
    }

    @classmethod
    def from_env(cls) -> "MlflowHttpBudget":
        default = cls()
        names = cls.VARIABLES
        budget = cls(
            max_retries=_env_int(names["max_retries"], default.max_retries),
            backoff_factor=_env_int(names["backoff_factor"], default.backoff_factor),
            backoff_jitter=_env_float(names["backoff_jitter"], default.backoff_jitter),
            timeout=_env_int(names["timeout"], default.timeout, minimum=1),
        )
        if budget.max_retries > _MLFLOW_MAX_RETRIES_LIMIT:
            raise ValueError(
                f"environment variable {names['max_retries']}={budget.max_retries} must be at most "
                f"{_MLFLOW_MAX_RETRIES_LIMIT} (MLflow's limit)"
            )
        if budget.backoff_factor > _MLFLOW_MAX_BACKOFF_FACTOR_LIMIT:
            raise ValueError(
                f"environment variable {names['backoff_factor']}={budget.backoff_factor} must be at most "
                f"{_MLFLOW_MAX_BACKOFF_FACTOR_LIMIT} (MLflow's limit)"
            )
        return budget

    def environment(self) -> dict[str, str]:
        """The MLflow variables that carry this budget."""
        return {name: str(getattr(self, attr)) for attr, name in self.VARIABLES.items()}

    def apply(self) -> None:
        """Put the budget where MLflow reads it: the process environment (MLflow reads these variables on every
        request and has no client argument for them). Values the user set are the ones :meth:`from_env` read."""
        os.environ.update(self.environment())

    def backoff_seconds(self) -> float:
        """The most one call sleeps between its tries (urllib3: no sleep before the first retry, then
        ``factor * 2**(n-1)`` plus up to ``jitter``, each at most 120 s)."""
        return sum(
            min(_URLLIB3_BACKOFF_MAX, self.backoff_factor * 2 ** (n - 1) + self.backoff_jitter)
            for n in range(2, self.max_retries + 1)
        )

    def worst_case_seconds(self) -> float:
        """The most one call waits for a server that accepts connections and never answers: every try times out."""
        return (self.max_retries + 1) * self.timeout + self.backoff_seconds()


@dataclass(frozen=True)
class Settings:
    env: str
    warehouse_path: Path  # DuckDB file (local target)
    dbt_target: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None  # None: the tracking server decides where artifacts go
    landing_dir: Path
    rows_per_day: int
    seed: int
    start_date: date  # first daily partition
    end_date: date | None  # last daily partition; None: up to yesterday, moving with the clock
    label_delay_days: int
    drift_start: date | None
    concept_drift_start: date | None
    timezone: str
    executor: str  # "in_process" or "multiprocess"
    nightly_cron: str
    training_cron: str
    monitoring_cron: str
    reports_dir: Path
    cache_dir: Path  # what definitions load keeps between processes (estimator kinds); safe to delete
    report_retention_days: int
    reports_base_url: str | None  # where reports_dir is served over HTTP, if it is
    model_specs_dir: Path
    bootstrap_days: int  # history `make run` ingests
    code_version: str | None  # recorded on every trained version; None: ask git
    retrain_cooldown_hours: float  # the checks sensor launches at most one retraining per model per window
    predictions_due_hour: int  # hour (in `timezone`) by which yesterday's predictions must exist
    pg_port: int  # prod warehouse port (host, user, password and database come through dagster.EnvVar)
    alert_webhook_set: bool  # NIGHTJAR_ALERT_WEBHOOK_URL is set (its value, a secret, goes through dagster.EnvVar)
    dbt_tests_cron: str  # the full-history dbt test job
    dbt_state_dir: Path  # dbt's partial-parse state, kept between runs
    dbt_project_dir: Path = DBT_PROJECT_DIR
    dagster_url: str = DEFAULT_DAGSTER_URL  # where the Dagster UI answers, for links to runs (e.g. from MLflow)
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL  # the MLflow UI of a local store (a tracking server is its own UI)
    cpu_hour_price: float | None = None  # price of one CPU-hour, for the cost of scoring and spec budgets
    engine: str = "duckdb"  # duckdb (local default), postgres (prod default) or spark
    spark_remote: str = DEFAULT_SPARK_REMOTE  # the Spark Connect server of the spark engine
    # MLflow's own retries and timeout, checked when definitions load; each registry client applies them (the
    # registry reads the same variables: resources.registry.ModelRegistry.client).
    mlflow_http: MlflowHttpBudget = field(default_factory=MlflowHttpBudget)

    @property
    def manifest_path(self) -> Path:
        """The dbt manifest, prepared ahead (`make setup`, `dbt parse`): definitions never parse dbt."""
        return self.dbt_project_dir / "target" / "manifest.json"

    @property
    def warehouse_kind(self) -> str:
        """The kind tag the UI shows on warehouse assets."""
        return self.engine

    @classmethod
    def from_env(cls) -> "Settings":
        env = _env("NIGHTJAR_ENV", "local")
        if env not in ENVIRONMENTS:
            raise ValueError(f"environment variable NIGHTJAR_ENV={env!r} must be one of {ENVIRONMENTS}")
        data_dir = Path(_env("NIGHTJAR_DATA_DIR", str(PROJECT_ROOT / "data")))
        mlflow_dir = PROJECT_ROOT / "mlflow"
        end_date = _env_date("NIGHTJAR_END_DATE", "none")
        bootstrap_days = _env_int("NIGHTJAR_BOOTSTRAP_DAYS", 120, minimum=1)
        # Partitions begin where the data begins: by default the bootstrap's history, so the UI shows no
        # never-loadable days. Set NIGHTJAR_START_DATE (and NIGHTJAR_END_DATE for a past window) for real data.
        last_day = end_date or (date.today() - timedelta(days=1))
        start_date = _env_date("NIGHTJAR_START_DATE", (last_day - timedelta(days=bootstrap_days - 1)).isoformat())
        if start_date is None or start_date > last_day:
            raise ValueError(f"NIGHTJAR_START_DATE={start_date} must be a date on or before the last day {last_day}")
        hour = _env_int("NIGHTJAR_PREDICTIONS_DUE_HOUR", 6)
        if hour > 23:
            raise ValueError(f"environment variable NIGHTJAR_PREDICTIONS_DUE_HOUR={hour} must be an hour from 0 to 23")
        # One DuckDB file allows one writer, so warehouse steps run one at a time anyway: in one process they skip
        # the multiprocess executor's per-step process start (about 2-3 s each). A server warehouse runs in parallel.
        executor = _env("NIGHTJAR_EXECUTOR", "multiprocess" if env == "prod" else "in_process")
        if executor not in ("in_process", "multiprocess"):
            raise ValueError(
                f"environment variable NIGHTJAR_EXECUTOR={executor!r} must be 'in_process' or 'multiprocess'"
            )
        engine = _env("NIGHTJAR_ENGINE", "postgres" if env == "prod" else "duckdb")
        if engine not in ENGINES:
            raise ValueError(f"environment variable NIGHTJAR_ENGINE={engine!r} must be one of {ENGINES}")
        default_tracking_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
        tracking_uri = tracking_uri_from_env(default_tracking_uri)  # without user:password (see the module doc)
        local_artifacts = (mlflow_dir / "artifacts").as_uri() if tracking_uri == default_tracking_uri else ""
        return cls(
            env=env,
            warehouse_path=Path(_env("NIGHTJAR_WAREHOUSE_PATH", str(data_dir / "warehouse.duckdb"))),
            dbt_target=_env("NIGHTJAR_DBT_TARGET", {"duckdb": "dev", "postgres": "prod", "spark": "spark"}[engine]),
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=_env("NIGHTJAR_MLFLOW_ARTIFACT_ROOT", local_artifacts) or None,
            landing_dir=Path(_env("NIGHTJAR_LANDING_DIR", str(data_dir / "landing"))),
            rows_per_day=_env_int("NIGHTJAR_ROWS_PER_DAY", 2000, minimum=1),
            seed=_env_int("NIGHTJAR_SEED", 7),
            start_date=start_date,
            end_date=end_date,
            label_delay_days=_env_int("NIGHTJAR_LABEL_DELAY_DAYS", 30, minimum=1),
            drift_start=_env_date("NIGHTJAR_DRIFT_START", "none"),
            concept_drift_start=_env_date("NIGHTJAR_CONCEPT_DRIFT_START", "none"),
            timezone=_env("NIGHTJAR_TIMEZONE", "UTC"),
            executor=executor,
            nightly_cron=_env("NIGHTJAR_NIGHTLY_CRON", "30 2 * * *"),
            training_cron=_env("NIGHTJAR_TRAINING_CRON", "0 4 * * 1"),
            monitoring_cron=_env("NIGHTJAR_MONITORING_CRON", "0 6 * * *"),
            reports_dir=Path(_env("NIGHTJAR_REPORTS_DIR", str(data_dir / "reports"))),
            cache_dir=data_dir / "cache",
            report_retention_days=_env_int("NIGHTJAR_REPORT_RETENTION_DAYS", 90, minimum=1),
            # Links only: a user:password in them would be shown on the resource page and in every link.
            reports_base_url=redact_url(_env("NIGHTJAR_REPORTS_BASE_URL", "")) or None,
            model_specs_dir=Path(_env("NIGHTJAR_MODEL_SPECS_DIR", str(MODEL_SPECS_DIR))),
            bootstrap_days=bootstrap_days,
            code_version=_env("NIGHTJAR_CODE_VERSION", "") or None,
            retrain_cooldown_hours=_env_float("NIGHTJAR_RETRAIN_COOLDOWN_HOURS", 24.0),
            predictions_due_hour=hour,
            pg_port=_env_int("NIGHTJAR_PG_PORT", 5432, minimum=1),
            alert_webhook_set=bool(_env("NIGHTJAR_ALERT_WEBHOOK_URL", "")),
            dbt_tests_cron=_env("NIGHTJAR_DBT_TESTS_CRON", "0 5 * * 0"),
            dbt_state_dir=Path(_env("NIGHTJAR_DBT_STATE_DIR", str(data_dir / "dbt_state"))),
            dbt_project_dir=Path(_env("NIGHTJAR_DBT_PROJECT_DIR", str(DBT_PROJECT_DIR))),
            dagster_url=redact_url(_env("NIGHTJAR_DAGSTER_URL", DEFAULT_DAGSTER_URL)).rstrip("/"),
            mlflow_ui_url=redact_url(_env("NIGHTJAR_MLFLOW_UI_URL", DEFAULT_MLFLOW_UI_URL)).rstrip("/"),
            cpu_hour_price=_env_float("NIGHTJAR_CPU_HOUR_PRICE", 0.0) or None,
            mlflow_http=MlflowHttpBudget.from_env(),
            engine=engine,
            spark_remote=spark_remote_from_env(DEFAULT_SPARK_REMOTE),  # without its token (see the function)
        )


def stores_under(root: Path) -> dict[str, str]:
    """Environment that puts every store (warehouse, reports, MLflow, Dagster home) under ``root``, with the
    repo's instance config (pool limits) copied in: for tests, benchmarks and throwaway sandboxes."""
    import shutil

    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        "NIGHTJAR_ENV": "local",
        "NIGHTJAR_DATA_DIR": str(root / "data"),
        "NIGHTJAR_WAREHOUSE_PATH": str(root / "data" / "warehouse.duckdb"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "NIGHTJAR_MLFLOW_ARTIFACT_ROOT": (root / "mlartifacts").as_uri(),
        "NIGHTJAR_SEED": "7",
        "NIGHTJAR_EXECUTOR": "in_process",
        "DAGSTER_HOME": str(home),
        # As the Makefile exports it: the embedded event log writes a run's events in batches (event_log.py).
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # as the Makefile exports it
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for a script's process (``jobs.bootstrap``, the benchmarks), read once. Definitions and their
    factories never call this: they take the Settings they are given."""
    return Settings.from_env()
