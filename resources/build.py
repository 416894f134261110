"""The resources every asset, job and sensor uses, built from the settings: local (embedded) or prod (servers)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from resources.alerts import AlertsResource
from resources.dbt import dbt_resource
from resources.registry import ModelRegistry
from resources.reports import MonitoringReports
from resources.settings import Settings
from resources.source import build_source
from resources.warehouse import DuckDBWarehouse, PostgresWarehouse, SparkWarehouse, Warehouse


def build_warehouse(settings: Settings) -> Warehouse:
    """The engine ``NIGHTJAR_ENGINE`` names: DuckDB (local default), Postgres (prod default) or Spark."""
    if settings.engine == "spark":
        return SparkWarehouse(remote=settings.spark_remote)
    if settings.engine == "postgres":
        return PostgresWarehouse(
            host=dg.EnvVar("NIGHTJAR_PG_HOST"),
            port=settings.pg_port,
            user=dg.EnvVar("NIGHTJAR_PG_USER"),
            password=dg.EnvVar("NIGHTJAR_PG_PASSWORD"),
            dbname=dg.EnvVar("NIGHTJAR_PG_DBNAME"),
        )
    return DuckDBWarehouse(path=str(settings.warehouse_path))


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse for scripts and tests, outside a Dagster run: its EnvVar fields resolved now."""
    # Outside a run the warehouse takes no writer lock (Warehouse.yield_for_execution): its set-up holds nothing
    # that would outlive this block.
    with build_warehouse(settings).process_config_and_initialize_cm() as warehouse:
        return warehouse


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "warehouse": build_warehouse(settings),
        "source": build_source(settings),
        "dbt": dbt_resource(settings),
        "reports": MonitoringReports(
            directory=str(settings.reports_dir),
            retention_days=settings.report_retention_days,
            base_url=settings.reports_base_url,
        ),
        "alerts": AlertsResource(webhook_url=dg.EnvVar("NIGHTJAR_ALERT_WEBHOOK_URL"))
        if settings.alert_webhook_set
        else AlertsResource(),
        "registry": ModelRegistry(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
            ui_url=settings.mlflow_ui_url,
        ),
    }
