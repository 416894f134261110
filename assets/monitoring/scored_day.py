"""What the drift and quality assets share about the scored day they monitor: its partition, its predictions, the
version that scored it, where its figures go in MLflow, and how the assets are declared and retried.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from assets.partitions import single_run
from resources.failures import DataFailure
from resources.registry import SERVER_RETRY_POLICY, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse
from resources.warehouse.sql import day_window

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
        backfill_policy=single_run,  # a backfill of many days is one run: each day checked in one process
        output_required=False,  # a range run records each day's materialization itself (check_results.combined_days)
        **MONITORING_ASSET,
    )


PREDICTED_CLASS = "predicted_class"  # multiclass predictions' class column (and the reference sample's)


def predicted_columns(spec: ModelSpec) -> list[str]:
    """The prediction columns monitoring reads beside the features: ``score``, and the predicted class for
    multiclass."""
    return ["score", PREDICTED_CLASS] if spec.task == "multiclass" else ["score"]


def drifted_score(spec: ModelSpec) -> str:
    """The prediction column whose drift is the ``score_drift`` check: the predicted class for multiclass (the day's
    class mix), else ``score`` (binary: the probability; regression: the predicted value)."""
    return PREDICTED_CLASS if spec.task == "multiclass" else "score"


# Errors of the day's rows: reading a table that is not there, and what the drift and quality computations raise.
DATA_ERRORS = (NotInWarehouse, ValueError, KeyError)


@dataclass(frozen=True)
class ScoredSample:
    """A scored day as drift sees it, taken in the warehouse: only the sample reaches this process."""

    frame: pd.DataFrame  # at most n of the day's mart rows that were scored, with their predicted_columns
    rows: int  # the day's mart rows that were scored (what the sample is drawn from)
    version: int  # the version that scored the day (the most rows, should a re-run have mixed versions)


def _window(alias: str, spec: ModelSpec, day: date, end: date | None = None) -> str:
    """``alias``'s rows of ``day`` (or of [day, end) when ``end`` is given), by the spec's timestamp."""
    return day_window(f"{alias}.{spec.timestamp}", day, end)


def _present(warehouse: Warehouse, *tables: str) -> None:
    for table in tables:
        if not warehouse.table_exists(table):
            raise NotInWarehouse(
                f"table {table} does not exist yet in warehouse {warehouse.describe()}: materialize what writes it "
                "(the nightly job) first"
            )


def day_predictions(warehouse: Warehouse, spec: ModelSpec, day: date) -> tuple[int, int]:
    """(rows scored on ``day``, the version that scored most of them: a re-run with a new champion may have mixed
    them), counted in the warehouse; DataFailure when the day was not scored."""
    _present(warehouse, predictions_table(spec))
    versions = warehouse.query(
        f"SELECT model_version, count(*) AS n FROM {predictions_table(spec)} AS p WHERE {_window('p', spec, day)} "
        "GROUP BY model_version ORDER BY n DESC, model_version"
    )
    if versions.empty:
        raise DataFailure(
            description=f"no predictions of '{spec.name}' for {day}: run the nightly job for that day first"
        )
    return int(versions["n"].sum()), int(versions["model_version"].iloc[0])


def sample_scored_day(warehouse: Warehouse, spec: ModelSpec, day: date, n: int) -> ScoredSample:
    """The day's scoring-mart rows joined to their predictions, at most ``n`` of them: those whose entity id hashes
    lowest (md5 of its text, so the same rows on every run and engine whatever the stored order), chosen by the
    warehouse; counts and the serving version are aggregates there too. A day of 10,000,000 rows costs this process
    the sample's memory, not the day's."""
    predictions, mart = predictions_table(spec), f"marts.{spec.scoring_mart}"
    _, version = day_predictions(warehouse, spec, day)  # first: a day not scored says so
    _present(warehouse, mart)
    entity = spec.entity_id
    joined = (
        f"FROM {mart} AS m JOIN {predictions} AS p ON m.{entity} = p.{entity} AND {_window('p', spec, day)} "
        f"WHERE {_window('m', spec, day)}"
    )
    rows = int(warehouse.query(f"SELECT count(*) AS n {joined}")["n"].iloc[0])
    predicted = ", ".join(f"p.{c} AS {c}" for c in predicted_columns(spec))
    frame = warehouse.query(
        f"SELECT m.*, {predicted} {joined} ORDER BY md5({warehouse.as_text(f'm.{entity}')}), m.{entity} LIMIT {n}"
    )
    return ScoredSample(frame.sort_values(entity, kind="stable", ignore_index=True), rows, version)


def labeled_window(
    warehouse: Warehouse,
    spec: ModelSpec,
    start: date,
    end: date,
    predicted: Sequence[str],
    labels: Sequence[str],
    version: int,
) -> pd.DataFrame:
    """The predictions ``version`` made on [start, end) (the ``predicted`` columns and the timestamp) joined to
    their labels (the training mart's ``labels`` columns), joined in the warehouse: only those columns of the
    labeled rows reach this process."""
    mart = f"marts.{spec.training_mart}"
    _present(warehouse, mart)
    entity = spec.entity_id
    selected = ", ".join([*(f"p.{c}" for c in [entity, spec.timestamp, *predicted]), *(f"l.{c}" for c in labels)])
    return warehouse.query(
        f"SELECT {selected} FROM {predictions_table(spec)} AS p JOIN {mart} AS l ON p.{entity} = l.{entity} "
        f"AND {_window('l', spec, start, end)} WHERE {_window('p', spec, start, end)} "
        f"AND p.model_version = {int(version)} ORDER BY p.{entity}"
    )


def pooled_start(warehouse: Warehouse, spec: ModelSpec, day: date, version: int) -> date:
    """The first day of the window the quality checks judge ``day`` on: ``day`` and the days before it, newest
    first, until ``monitoring.quality_min_rows`` labeled predictions of ``version`` (at most
    ``quality_window_days`` days; days another version scored add nothing)."""
    quality = spec.monitoring
    first = day - timedelta(days=quality.quality_window_days - 1)
    end = day + timedelta(days=1)
    mart, entity = f"marts.{spec.training_mart}", spec.entity_id
    counts = warehouse.query(
        f"SELECT CAST(p.{spec.timestamp} AS DATE) AS day_, count(*) AS n FROM {predictions_table(spec)} AS p "
        f"JOIN {mart} AS l ON p.{entity} = l.{entity} AND {_window('l', spec, first, end)} "
        f"WHERE {_window('p', spec, first, end)} AND p.model_version = {int(version)} GROUP BY 1"
    )
    rows = {pd_day(d): int(n) for d, n in zip(counts["day_"], counts["n"], strict=True)}
    total, start = 0, day
    for offset in range(quality.quality_window_days):
        start = day - timedelta(days=offset)
        total += rows.get(start, 0)
        if total >= quality.quality_min_rows:
            break
    return start


def pd_day(value) -> date:
    """A warehouse DATE (a date, datetime or Timestamp) as a date."""
    import pandas as pd

    return pd.Timestamp(value).date()


def labeled_rows(warehouse: Warehouse, spec: ModelSpec, day: date) -> int:
    """Rows of ``day`` in the training mart (labels that have arrived)."""
    mart = f"marts.{spec.training_mart}"
    _present(warehouse, mart)
    return int(warehouse.query(f"SELECT count(*) AS n FROM {mart} AS l WHERE {_window('l', spec, day)}")["n"].iloc[0])


def log_to_mlflow(registry: ModelRegistry, run_id: str, day: date, values: dict[str, float]) -> None:
    """Monitoring figures on the version's training run, one step per day: a version's life in one place."""
    import pandas as pd

    client = registry.client()
    timestamp = int(pd.Timestamp(day).timestamp() * 1000)
    for key, value in values.items():
        if pd.notna(value):
            client.log_metric(run_id, f"monitoring.{key}", float(value), timestamp=timestamp, step=day.toordinal())
