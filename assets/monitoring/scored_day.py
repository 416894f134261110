"""What the drift and quality assets share about the scored day they monitor: its partition, its predictions, the
version that scored it, where its figures go in MLflow, and how the assets are declared and retried.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from resources.failures import DataFailure
from resources.registry import SERVER_RETRY_POLICY, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse

if TYPE_CHECKING:
    import pandas as pd

# What the drift and quality assets share: one run per scored day (checks report per run), warehouse pool, and
# retries when MLflow or the warehouse server does not answer. What the day's data cannot give (no predictions, no
# labels, a table not built yet, rows Evidently or the metrics refuse) is a DataFailure, never retried.
MONITORING_ASSET = dict(
    pool=WAREHOUSE_POOL,
    group_name="monitoring",
    kinds={"evidently", "python"},
    retry_policy=SERVER_RETRY_POLICY,
)


def monitoring_asset_args(spec: ModelSpec, mart_key: dg.AssetKey, partitions: dg.PartitionsDefinition) -> dict:
    """What every monitoring asset of ``spec`` declares: downstream of the day's predictions and of the mart it
    compares them with, its owner, the daily partitions and :data:`MONITORING_ASSET`."""
    return dict(
        deps=[dg.AssetKey([spec.name, "predictions"]), mart_key],
        owners=[spec.owner],
        partitions_def=partitions,
        **MONITORING_ASSET,
    )


# Errors of the day's rows: reading a table that is not there, and what the drift and quality computations raise.
DATA_ERRORS = (NotInWarehouse, ValueError, KeyError)


def partition_day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def read_scored_day(warehouse: Warehouse, spec: ModelSpec, day: date) -> pd.DataFrame:
    predictions = warehouse.read_window(predictions_table(spec), spec.timestamp, day, day + timedelta(days=1))
    if predictions.empty:
        raise DataFailure(
            description=f"no predictions of '{spec.name}' for {day}: run the nightly job for that day first"
        )
    return predictions


def serving_version(predictions: pd.DataFrame) -> int:
    """The version that scored the day (the most rows, should a re-run with a new champion have mixed them)."""
    return int(predictions["model_version"].mode().iloc[0])


def log_to_mlflow(registry: ModelRegistry, run_id: str, day: date, values: dict[str, float]) -> None:
    """Monitoring figures on the version's training run, one step per day: a version's life in one place."""
    import pandas as pd

    client = registry.client()
    timestamp = int(pd.Timestamp(day).timestamp() * 1000)
    for key, value in values.items():
        if pd.notna(value):
            client.log_metric(run_id, f"monitoring.{key}", float(value), timestamp=timestamp, step=day.toordinal())
