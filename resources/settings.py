"""Every setting nightjar reads, in one place, from the environment.

One switch, ``NIGHTJAR_ENV`` (``local`` or ``prod``), picks the dbt target and the resources; everything else
is a plain environment variable with a default that works on a fresh clone with no servers. Secrets (database
passwords, webhook URLs) are never read here: resources take them through ``dagster.EnvVar`` so they stay out
of run config and the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

# The one place the repository root is derived; everything else is relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MODEL_SPECS_DIR = PROJECT_ROOT / "model_specs"

ENVIRONMENTS = ("local", "prod")


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
    source: str  # "synthetic" or "landing"
    landing_dir: Path
    rows_per_day: int
    seed: int
    start_date: date
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
        source = _env("NIGHTJAR_SOURCE", "synthetic")
        if source not in ("synthetic", "landing"):
            raise ValueError(f"environment variable NIGHTJAR_SOURCE={source!r} must be 'synthetic' or 'landing'")
        # One DuckDB file allows one writer, so warehouse steps run one at a time anyway: in one process they skip
        # the multiprocess executor's per-step process start (about 2-3 s each). A server warehouse runs in parallel.
        executor = _env("NIGHTJAR_EXECUTOR", "multiprocess" if env == "prod" else "in_process")
        if executor not in ("in_process", "multiprocess"):
            raise ValueError(f"environment variable NIGHTJAR_EXECUTOR={executor!r} must be 'in_process' or 'multiprocess'")
        default_tracking_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
        tracking_uri = _env("MLFLOW_TRACKING_URI", default_tracking_uri)
        local_artifacts = (mlflow_dir / "artifacts").as_uri() if tracking_uri == default_tracking_uri else ""
        return cls(
            env=env,
            warehouse_path=Path(_env("NIGHTJAR_WAREHOUSE_PATH", str(data_dir / "warehouse.duckdb"))),
            dbt_target=_env("NIGHTJAR_DBT_TARGET", "prod" if env == "prod" else "dev"),
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=_env("NIGHTJAR_MLFLOW_ARTIFACT_ROOT", local_artifacts) or None,
            source=source,
            landing_dir=Path(_env("NIGHTJAR_LANDING_DIR", str(data_dir / "landing"))),
            rows_per_day=_env_int("NIGHTJAR_ROWS_PER_DAY", 2000, minimum=1),
            seed=_env_int("NIGHTJAR_SEED", 7),
            start_date=_env_date("NIGHTJAR_START_DATE", "2026-01-01"),
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
            bootstrap_days=_env_int("NIGHTJAR_BOOTSTRAP_DAYS", 120, minimum=1),
            code_version=_env("NIGHTJAR_CODE_VERSION", "") or None,
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
        "NIGHTJAR_SOURCE": "synthetic",
        "NIGHTJAR_SEED": "7",
        "NIGHTJAR_EXECUTOR": "in_process",
        "DAGSTER_HOME": str(home),
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once. Tests that change the environment call ``get_settings.cache_clear()``."""
    return Settings.from_env()
