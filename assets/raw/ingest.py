"""Raw assets: each day of the partition window is read from the source and replaces that day in the warehouse.

A day is one transaction (delete the day, insert its rows), so a re-run leaves no duplicates and a bad landing
file (validated before the first row is written) leaves what was stored untouched.
"""

from collections.abc import Callable, Iterator
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from assets.partitions import daily_partitions, single_run, window_days
from resources.settings import get_settings
from resources.source import DataSource
from resources.source.schema import APPLICATIONS, OUTCOMES, TableSchema
from resources.warehouse import WAREHOUSE_POOL, Warehouse

WAREHOUSE_KIND = get_settings().warehouse_kind
RAW_SCHEMA = "raw"
PREVIEW_ROWS = 5


def _column_schema(table: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.dtype, constraints=dg.TableColumnConstraints(nullable=c.nullable))
            for c in table.columns
        ]
    )


def _preview(warehouse: Warehouse, qualified: str, table: TableSchema, day: date) -> dg.MetadataValue:
    rows = warehouse.query(
        f"SELECT * FROM {qualified} WHERE {table.partition_column} = DATE '{day.isoformat()}' "
        f"ORDER BY {table.id_column} LIMIT {PREVIEW_ROWS}"
    )
    return dg.MetadataValue.md(rows.to_markdown(index=False) if not rows.empty else "_no rows this day_")


def _raw_asset(
    table: TableSchema, read: Callable[[DataSource, date], Iterator[pd.DataFrame]], description: str
) -> dg.AssetsDefinition:
    qualified = f"{RAW_SCHEMA}.{table.name}"

    @dg.asset(
        name=table.name,
        key_prefix=RAW_SCHEMA,
        description=description,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
        group_name="raw",
        kinds={"python", WAREHOUSE_KIND},
        owners=["team:data-engineering"],
        metadata={"dagster/column_schema": _column_schema(table), "dagster/table_name": qualified},
    )
    def _ingest(context: dg.AssetExecutionContext, source: DataSource, warehouse: Warehouse) -> dg.MaterializeResult:
        rows_by_day: dict[str, int] = {}
        for day in window_days(context):
            rows = warehouse.replace_window(
                qualified, table.partition_column, day, day + timedelta(days=1), read(source, day), table.columns
            )
            rows_by_day[day.isoformat()] = rows
            context.log.info(f"{qualified} {day}: {rows} rows from {source.describe()}")
        last_day = window_days(context)[-1]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(rows_by_day.values()),
                "rows_by_day": dg.MetadataValue.json(rows_by_day),
                "source": source.describe(),
                "warehouse": warehouse.describe(),
                f"preview ({last_day})": _preview(warehouse, qualified, table, last_day),
            }
        )

    return _ingest


raw_applications = _raw_asset(
    APPLICATIONS,
    lambda source, day: source.applications(day),
    "Loan applications received each day, as the source delivered them (one partition per application day).",
)
raw_outcomes = _raw_asset(
    OUTCOMES,
    lambda source, day: source.outcomes(day),
    "Default outcomes that became known each day, for applications made label_delay_days earlier "
    "(one partition per outcome day).",
)
