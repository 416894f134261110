"""The nightly job: yesterday's partition through raw ingestion, the dbt transforms and batch scoring, on a cron
schedule in the configured timezone; and the ingest job that backfills history without scoring.

Both jobs are daily-partitioned (their assets are), so a run needs a day: launched with no partition, its first step
stops with a message listing the days to choose and the range tags (``assets.partitions.NoPartitionChosen``).
Dagster's own paths are named in the descriptions the UI shows: pick the day in the launch dialog, or, for the day the
schedule runs (yesterday), the schedule's "Preview tick result" on its latest tick and "Launch all", which
evaluates the schedule and launches its run request. No second, unpartitioned job: an asset job cannot run
partitioned assets without a partition either, and an op that launched the real job would hide the run.

Automation conditions: none, on purpose. This schedule is the chain's trigger (raw, dbt, predictions: one run per
day, with the late-arrival re-asks below); drift and quality run on each model's monitoring schedule
(``jobs/monitoring.py``), training on its schedule and the retraining sensor, the champion only by a promotion. Every
asset downstream of the nightly run is covered by one of those, so an ``AutomationCondition`` (e.g. ``eager()`` on
drift) would make the automation daemon launch a second run of what a schedule already runs, and the declared
condition would not be what actually runs. What the assets declare instead is their due time: the predictions'
freshness policy (``predictions_due_hour``; ``jobs/missing_predictions_sensor.py`` alerts on it). The raw tables
have no due time of their own (a late landing file is asked for again, not alerted), so they carry no policy.
"""

from collections.abc import Sequence
from datetime import date, timedelta

import dagster as dg

from assets.partitions import build_daily_partitions, day_before
from resources.settings import Settings

DATA_SELECTION = dg.AssetSelection.groups("raw", "staging", "intermediate", "marts")
NIGHTLY_SELECTION = DATA_SELECTION | dg.AssetSelection.groups("inference")
NIGHTLY_SCHEDULE_NAME = "nightly_schedule"

# Shown in the job's description: a partitioned job launched without a day stops at its first step (no day chosen).
PICK_A_DAY = (
    "Daily-partitioned: launch it for a day (in the launch dialog, choose the partition, e.g. yesterday; "
    "for several days, a backfill)."
)


# How many days before yesterday the schedule looks back for landing files that had not arrived (not complete yet,
# or absent) when their day ran: each tick asks again for those days, so a late file lands without a person.
LATE_ARRIVAL_DAYS = 7
LATE_ARRIVAL_TAG = "nightjar/late_arrival"


def build_nightly_jobs(
    settings: Settings, landing_keys: Sequence[dg.AssetKey] = ()
) -> tuple[list, dg.ScheduleDefinition]:
    """``[nightly, ingest]`` and the nightly schedule. ``landing_keys``: the raw assets read from landing files,
    whose missing days the schedule asks for again."""
    partitions = build_daily_partitions(settings)
    ingest_job = dg.define_asset_job(
        name="ingest",
        selection=DATA_SELECTION,
        description=f"Raw ingestion and every dbt model and test, without scoring: for backfilling history. {PICK_A_DAY}",
    )
    nightly_job = dg.define_asset_job(
        name="nightly",
        selection=NIGHTLY_SELECTION,
        description="One day (the schedule's: yesterday): raw ingestion, every dbt model and test, then scoring by "
        "each champion. "
        f"{PICK_A_DAY} Or, for the day the schedule runs (yesterday): Automation > {NIGHTLY_SCHEDULE_NAME} > "
        "Preview tick result (the latest tick) > Launch all.",
    )

    @dg.schedule(
        name=NIGHTLY_SCHEDULE_NAME,
        job=nightly_job,
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every night: the last complete day (yesterday in the partitions' timezone) through raw, dbt "
        "and scoring. To run it now, unscheduled: Preview tick result (the latest tick), then Launch all.",
    )
    def nightly_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        partition_key = day_before(context.scheduled_execution_time, settings.timezone)
        late = late_days(context.instance, landing_keys, partitions, partition_key) if landing_keys else []
        return [dg.RunRequest(run_key=partition_key, partition_key=partition_key)] + [
            # A run key of its own per tick: the day's first run key is spent, and each tick may ask again.
            dg.RunRequest(
                run_key=f"{day} (late, asked {partition_key})", partition_key=day, tags={LATE_ARRIVAL_TAG: "true"}
            )
            for day in late
        ]

    return [nightly_job, ingest_job], nightly_schedule


def late_days(
    instance: dg.DagsterInstance,
    landing_keys: Sequence[dg.AssetKey],
    partitions: dg.PartitionsDefinition,
    yesterday: str,
) -> list[str]:
    """Days of the LATE_ARRIVAL_DAYS before ``yesterday`` for which a landing raw asset has no materialization (its
    file had not arrived or was not complete when the day ran, or it was rejected and replaced since): the schedule
    asks for them again. Days whose run is still in progress are left to it."""
    last = date.fromisoformat(yesterday)
    wanted = [(last - timedelta(days=n)).isoformat() for n in range(LATE_ARRIVAL_DAYS, 0, -1)]
    days = [d for d in wanted if partitions.has_partition_key(d)]
    late: set[str] = set()
    for key in landing_keys:
        status = instance.get_status_by_partition(key, days, partitions) or {}
        late |= {
            d
            for d in days
            if status.get(d) not in (dg.AssetPartitionStatus.MATERIALIZED, dg.AssetPartitionStatus.IN_PROGRESS)
        }
    return sorted(late)
