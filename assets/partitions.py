"""The daily partitions every dated asset shares, and helpers to walk a partition window day by day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from resources.settings import Settings

# Raw, dbt and scoring assets process a whole date range in one run when backfilled, instead of one run per day.
single_run = dg.BackfillPolicy.single_run()

# The run tags a single-run backfill of a date range carries (inclusive bounds).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def build_daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per day from ``start_date`` to ``end_date`` (inclusive) or, without an end, to yesterday."""
    end = settings.end_date + timedelta(days=1) if settings.end_date else None
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(),
        end_date=end.isoformat() if end else None,
        timezone=settings.timezone,
    )


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's partition window as dates: ``start`` inclusive, ``end`` exclusive."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def window_days(context: dg.AssetExecutionContext) -> list[date]:
    start, end = window_dates(context)
    return [start + timedelta(days=i) for i in range((end - start).days)]


def day_before(at: datetime, timezone: str) -> str:
    """The partition key of the last full day before ``at`` in ``timezone``: yesterday, for a tick."""
    return (at.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)).isoformat()


def record_per_day(context: dg.AssetExecutionContext, figures: dict[date, dict]) -> None:
    """Each day's own figures on its own partition's materialization (row counts, decision counts: what the UI's
    Row count badge and plots over partitions read).

    The run's ``MaterializeResult`` metadata goes on every partition of a range run alike; these entries override
    it, key by key, on their day (Dagster's ``add_asset_metadata`` with a partition key), so a 7-day run's days each
    say their own rows, not the run's total."""
    for day, metadata in figures.items():
        context.add_asset_metadata(metadata, partition_key=day.isoformat())
