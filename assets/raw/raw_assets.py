"""The raw-asset factory: one daily-partitioned asset per declared raw table (see ``resources.source``).

Each day of a run's window is written, audited, then published (WAP, :mod:`assets.raw.wap`): the window's rows
go to a staging table, every rule of the declaration is checked there in SQL per day, and only a day that passes
replaces the stored day. A rejected day leaves what was stored untouched, is recorded in ``audit.rejected_files``,
alerts, shows as a failed ``contract`` check on the asset, and fails the step (without retries: the same data
would fail again) once every other day of the window has been handled.
"""

from collections.abc import Iterable, Iterator
from datetime import date

import dagster as dg

from assets.partitions import record_per_day, single_run, window_days
from assets.raw.wap import ingest_window
from assets.step_cost import with_cost
from resources.alerts import AlertsResource
from resources.source import RawSources
from resources.source.schema import MASK, Column, RawTable
from resources.warehouse import WAREHOUSE_POOL, Warehouse
from resources.warehouse.sql import date_literal

CONTRACT_CHECK = "contract"
PREVIEW_ROWS = 5


def build_raw_assets(tables: Iterable[RawTable], partitions: dg.PartitionsDefinition, warehouse_kind: str) -> list:
    return [_raw_asset(table, partitions, warehouse_kind) for table in tables]


def _raw_asset(table: RawTable, partitions: dg.PartitionsDefinition, warehouse_kind: str) -> dg.AssetsDefinition:
    key = dg.AssetKey([table.source, table.name])

    @dg.asset(
        key=key,
        description=table.description or f"Raw table {table.qualified}, declared in {table.declared_in}.",
        partitions_def=partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
        group_name="raw",
        kinds={"python", warehouse_kind},
        owners=list(table.owners),
        metadata={
            "dagster/column_schema": _column_schema(table),
            "dagster/table_name": table.qualified,
            "declared_in": table.declared_in,
            "origin": table.origin,
            "key": ", ".join(table.key) or "(none)",
        },
        check_specs=[
            dg.AssetCheckSpec(
                CONTRACT_CHECK,
                asset=key,
                description="Every day of the run met its declaration (types, nulls, keys, allowed values, "
                "ranges, row shape) before it was published; rejected files are listed in audit.rejected_files.",
            )
        ],
    )
    @with_cost
    def _ingest(
        context: dg.AssetExecutionContext, source: RawSources, warehouse: Warehouse, alerts: AlertsResource
    ) -> Iterator:
        days = window_days(context)
        with warehouse.session():
            results = ingest_window(table, days, source, warehouse, context.run.run_id)
        not_arrived = [r for r in results if not r.arrived]
        for result in not_arrived:
            context.log.warning(f"{table.qualified} {result.day}: {result.problems}; stored rows kept")
        for result in results:
            day = result.day
            if result.problems and result.arrived:
                context.log.error(f"{table.qualified} {day}: rejected, stored rows kept:\n{result.problems}")
                alerts.send(
                    title=f"{table.label} {day}: data rejected",
                    severity="error",
                    text=result.problems,
                    details={"table": table.qualified, "day": day.isoformat(), "origin": result.origin},
                    log=context.log,
                )
        published = [r for r in results if not r.problems]
        # One line for the window, not one per day: every log line is an event Dagster stores (a 365-day backfill
        # paid 365 writes per table for them); the rows of each day are on that day's materialization.
        if len(published) == 1:
            context.log.info(
                f"{table.qualified} {published[0].day}: {published[0].rows} rows from {published[0].origin}"
            )
        elif published:
            context.log.info(
                f"{table.qualified}: {len(published)} days published, {published[0].day} to {published[-1].day}, "
                f"{sum(r.rows for r in published)} rows (per day: each partition's row count); from "
                f"{published[0].origin} to {published[-1].origin}"
            )
        rejected = [r for r in results if r.problems and r.arrived]
        rows_by_day = {r.day.isoformat(): r.rows for r in results if not r.problems}
        yield dg.AssetCheckResult(
            check_name=CONTRACT_CHECK,
            passed=not rejected,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if not rejected else f"{len(rejected)} of {len(days)} day(s) rejected",
            metadata={
                "days_published": len(rows_by_day),
                "days_rejected": len(rejected),
                "days_not_arrived": len(not_arrived),
                "rejected": dg.MetadataValue.md(
                    "\n\n".join(f"**{r.day}** ({r.origin}):\n\n```\n{r.problems}\n```" for r in rejected) or "none"
                ),
            },
        )
        if rejected:
            raise dg.Failure(
                description=f"{table.qualified}: {len(rejected)} of {len(days)} day(s) rejected; what was stored "
                "for them is unchanged.\n" + "\n".join(f"{r.day}: {r.problems}" for r in rejected),
                allow_retries=False,
            )
        if not_arrived:
            _wait_for(table, not_arrived, len(days))
        last_day = days[-1]
        if len(days) > 1:  # a range run: each day's own rows on its partition (one day: the run's are its own)
            record_per_day(context, {r.day: {"dagster/row_count": r.rows} for r in published})
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(rows_by_day.values()),
                "source": source.describe(table),
                "warehouse": warehouse.describe(),
                f"preview ({last_day})": _preview(warehouse, table, last_day),
            }
        )

    return _ingest


# How often a step asks again for files still within their quiet period before it gives up for this run.
NOT_ARRIVED_RETRIES = 3


def _wait_for(table: RawTable, not_arrived: list, days: int) -> None:
    """Days whose file is not complete yet are no rejection: nothing was stored for them, the days that did arrive
    were published, and the contract check passed. The step asks Dagster to run it again once a quiet period has
    passed (a re-run replaces the window's days exactly); when the rule gives no time (a marker, a rename), or after
    NOT_ARRIVED_RETRIES tries, the step ends failed saying "not yet arrived", so downstream steps do not run on a
    window with missing days. Materializing the day again (or the UI's missing partitions) reads it then."""
    message = f"{table.qualified}: {len(not_arrived)} of {days} day(s) not yet arrived (stored rows kept):\n" + (
        "\n".join(f"{r.day}: {r.problems}" for r in not_arrived)
    )
    rule = table.complete_when
    if NOT_ARRIVED_RETRIES and rule.rule == "quiet" and rule.quiet_seconds > 0:
        raise dg.RetryRequested(max_retries=NOT_ARRIVED_RETRIES, seconds_to_wait=rule.quiet_seconds + 1) from (
            NotArrived(message)
        )
    raise dg.Failure(description=message, allow_retries=False)


class NotArrived(Exception):
    """A window's file is not complete yet (see ``_wait_for``)."""


def _column_schema(table: RawTable) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.dtype.lower(),
                description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable, other=_rules(c)),
            )
            for c in table.columns
        ]
    )


def _rules(column: Column) -> list[str]:
    rules = [f"accepted values: {', '.join(map(str, column.accepted_values))}"] if column.accepted_values else []
    rules += [f"{bound} {value}" for bound, value in (("min", column.min), ("max", column.max)) if value is not None]
    return rules + (["sensitive: values never shown or logged"] if column.sensitive else [])


def _preview(warehouse: Warehouse, table: RawTable, day: date) -> dg.MetadataValue:
    """The day's first rows; a sensitive column shows MASK (its values are not even read)."""
    order = ", ".join(f'"{k}"' for k in table.key) or f'"{table.columns[0].name}"'
    shown = ", ".join(f"'{MASK}' AS \"{c.name}\"" if c.sensitive else f'"{c.name}"' for c in table.columns)
    rows = warehouse.query(
        f'SELECT {shown} FROM {table.qualified} WHERE "{table.partition_column}" = {date_literal(day)} '
        f"ORDER BY {order} LIMIT {PREVIEW_ROWS}"
    )
    return dg.MetadataValue.md(rows.to_markdown(index=False) if not rows.empty else "_no rows this day_")
