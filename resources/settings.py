"""Every setting nightjar reads, in one place, from the environment.

``build_definitions(Settings.from_env())`` (definitions.py) is the one place the environment is read: every
factory takes the ``Settings`` it is given, so two Definitions with different settings can live in one process.

One switch, ``NIGHTJAR_ENV`` (``local`` or ``prod``), picks the dbt target and the resources; everything else
is a plain environment variable with a default that works on a fresh clone with no servers. Secrets (database
passwords, webhook URLs) are never read here: resources take them through ``dagster.EnvVar`` so they stay out
of run config and the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

# The one place the repository root is derived; everything else is relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MODEL_SPECS_DIR = PROJECT_ROOT / "model_specs"

ENVIRONMENTS = ("local", "prod")
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # where `make dev` serves the UI


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
    cpu_hour_price: float | None = None  # price of one CPU-hour, for the cost of scoring and spec budgets

    @property
    def manifest_path(self) -> Path:
        """The dbt manifest, prepared ahead (`make setup`, `dbt parse`): definitions never parse dbt."""
        return self.dbt_project_dir / "target" / "manifest.json"

    @property
    def warehouse_kind(self) -> str:
        """The kind tag the UI shows on warehouse assets."""
        return "postgres" if self.env == "prod" else "duckdb"

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
        default_tracking_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
        tracking_uri = _env("MLFLOW_TRACKING_URI", default_tracking_uri)
        local_artifacts = (mlflow_dir / "artifacts").as_uri() if tracking_uri == default_tracking_uri else ""
        return cls(
            env=env,
            warehouse_path=Path(_env("NIGHTJAR_WAREHOUSE_PATH", str(data_dir / "warehouse.duckdb"))),
            dbt_target=_env("NIGHTJAR_DBT_TARGET", "prod" if env == "prod" else "dev"),
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
            report_retention_days=_env_int("NIGHTJAR_REPORT_RETENTION_DAYS", 90, minimum=1),
            reports_base_url=_env("NIGHTJAR_REPORTS_BASE_URL", "") or None,
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
            dagster_url=_env("NIGHTJAR_DAGSTER_URL", DEFAULT_DAGSTER_URL).rstrip("/"),
            cpu_hour_price=_env_float("NIGHTJAR_CPU_HOUR_PRICE", 0.0) or None,
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
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for a script's process (``jobs.bootstrap``, the benchmarks), read once. Definitions and their
    factories never call this: they take the Settings they are given."""
    return Settings.from_env()
