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


class NoPartitionChosen(dg.Failure):
    """A partitioned job launched without a day: refused at its first step, saying which days there are. Never
    retried (the run's tags will not change)."""

    def __init__(self, description: str):
        super().__init__(description=description, allow_retries=False)


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's partition window as dates: ``start`` inclusive, ``end`` exclusive. A run without a partition or a
    range is refused (:class:`NoPartitionChosen`) instead of failing in Dagster's internal check."""
    # Refused, not run for the latest day: in Dagster a partitioned job's run names its partition (the launch dialog
    # asks for one, backfills and the schedule's run requests set it), and a run that chose a day itself would
    # write a day nobody asked for; for `ingest`, which backfills history, the latest day is rarely the one meant.
    # The schedule is what picks yesterday, and its latest tick can be launched by hand.
    if not (context.has_partition_key or context.has_partition_key_range):
        raise NoPartitionChosen(choose_partition(context.assets_def.partitions_def, context.job_name))
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def window_days(context: dg.AssetExecutionContext) -> list[date]:
    start, end = window_dates(context)
    return [start + timedelta(days=i) for i in range((end - start).days)]


def choose_partition(partitions: dg.PartitionsDefinition | None, job: str) -> str:
    """What a run of ``job`` without a partition is told: the days there are and how to pick one or a range."""
    first = partitions.get_first_partition_key() if partitions else None
    last = partitions.get_last_partition_key() if partitions else None
    days = f"from {first} to {last}" if first and last else "(there is none yet: the first day has not ended)"
    return (
        f"{job} is daily-partitioned and this run has no partition: choose a day (partition) {days} (in the launch "
        f"dialog; on the command line, the run tag dagster/partition), or a range with the tags {RANGE_START_TAG} "
        f"and {RANGE_END_TAG} (inclusive; a backfill of several days sets them). The schedules choose their days "
        "themselves (nightly: yesterday); to run a schedule's day now: Automation > the schedule > Preview tick "
        "result > Launch all."
    )


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
