"""What serving a day costs and how late its scores come: CPU per 1,000 predictions, its price and the spec's
budget, and the chain's end-to-end latency (data in -> scores out) per day.

Latency: "data in" is when the last raw table the predictions depend on was published for the day (its newest
materialization of that partition, read from the Dagster instance); "scores out" is when the day's predictions
were written. Each scored day's figures go to ``monitoring.<model>_latency``; the monitoring assets report the
p50 / p95 of the last 30 days from there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.spec import ModelSpec
from assets.step_cost import Cost
from resources.warehouse import Warehouse

if TYPE_CHECKING:
    import pandas as pd

LATENCY_DAYS = 30  # the window of the p50 / p95


def latency_table(spec: ModelSpec) -> str:
    return f"monitoring.{spec.name}_latency"


def scoring_cost(cost: Cost, rows: int, cpu_hour_price: float | None, spec: ModelSpec, days: int) -> tuple[dict, str]:
    """Metadata of a scoring step's cost, and a message when a day's cost is above the spec's budget ("" if not)."""
    metadata = cost.metadata(rows)
    if rows:
        metadata["cpu_seconds_per_1000_predictions"] = dg.MetadataValue.float(round(cost.cpu_seconds / rows * 1000, 4))
    if cpu_hour_price is None:
        if spec.cost.budget_per_day is not None:
            metadata["budget"] = "not checked: NIGHTJAR_CPU_HOUR_PRICE is not set"
        return metadata, ""
    per_day = cost.cpu_seconds / 3600 * cpu_hour_price / max(days, 1)
    metadata["cost_per_day"] = dg.MetadataValue.float(round(per_day, 6))
    budget = spec.cost.budget_per_day
    if budget is None:
        return metadata, ""
    metadata["budget_per_day"] = dg.MetadataValue.float(float(budget))
    metadata["over_budget"] = per_day > budget
    if per_day <= budget:
        return metadata, ""
    return metadata, (
        f"{spec.name}: scoring cost {per_day:.4f} a day ({cost.cpu_seconds:.1f} CPU s for {rows} predictions over "
        f"{days} day(s) at {cpu_hour_price} per CPU-hour), above the spec's budget_per_day {budget}"
    )


def record_latency(
    context: dg.AssetExecutionContext, warehouse: Warehouse, spec: ModelSpec, days: list[date], roots: list
) -> dict[str, dg.MetadataValue]:
    """Each day's data-in time (the newest publication of that day among ``roots``, the raw tables the scored mart
    is built from), scores-out time (now) and latency, stored; the metadata gives the last day's."""
    import pandas as pd

    scored = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for day in days:
        arrived = [t for t in (_published(context.instance, key, day) for key in roots) if t is not None]
        if not arrived:
            continue
        data_in = max(arrived)
        rows.append(
            {
                "day": pd.Timestamp(day),
                "data_in": data_in,
                "scores_out": scored,
                "latency_seconds": (scored - data_in).total_seconds(),
                "dagster_run_id": context.run.run_id,
            }
        )
    if not rows:
        return {"latency": "unknown: no raw upstream materialization found for the day"}
    frame = pd.DataFrame(rows)
    warehouse.replace_window(latency_table(spec), "day", days[0], days[-1] + timedelta(days=1), [frame])
    last = rows[-1]
    return {
        "latency_seconds": dg.MetadataValue.float(round(last["latency_seconds"], 1)),
        "data_in": f"{last['data_in']:%Y-%m-%d %H:%M:%S} UTC (raw published: {', '.join(k.to_user_string() for k in roots)})",
    }


def latency_percentiles(warehouse: Warehouse, spec: ModelSpec, day: date) -> dict[str, dg.MetadataValue]:
    """p50 / p95 of the end-to-end latency over the ``LATENCY_DAYS`` days up to ``day`` (those scored)."""
    table = latency_table(spec)
    if not warehouse.table_exists(table):
        return {}
    first = day - timedelta(days=LATENCY_DAYS - 1)
    frame: pd.DataFrame = warehouse.read_window(table, "day", first, day + timedelta(days=1))
    if frame.empty:
        return {}
    seconds = frame["latency_seconds"].astype("float64")
    return {
        "latency_p50_seconds": dg.MetadataValue.float(round(float(seconds.quantile(0.5)), 1)),
        "latency_p95_seconds": dg.MetadataValue.float(round(float(seconds.quantile(0.95)), 1)),
        "latency_days": len(seconds),
    }


def _published(instance: dg.DagsterInstance, key: dg.AssetKey, day: date) -> datetime | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    return datetime.fromtimestamp(records[0].timestamp, UTC).replace(tzinfo=None)
