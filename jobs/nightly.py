"""The nightly job: yesterday's partition through raw ingestion, the dbt transforms and batch scoring, on a cron
schedule in the configured timezone; and the ingest job that backfills history without scoring.

Both jobs are daily-partitioned (their assets are), so a run needs a day: launched from the UI with no partition
selected, Dagster refuses it ("Has a PartitionsDefinition, so should either have a partition key..."). Dagster's
own paths are named in the descriptions the UI shows: pick the day in the launch dialog, or, for the day the
schedule runs (yesterday), the schedule's "Preview tick result" on its latest tick and "Launch all", which
evaluates the schedule and launches its run request. No second, unpartitioned job: an asset job cannot run
partitioned assets without a partition either, and an op that launched the real job would hide the run.
"""

import dagster as dg

from assets.partitions import day_before
from resources.settings import Settings

DATA_SELECTION = dg.AssetSelection.groups("raw", "staging", "intermediate", "marts")
NIGHTLY_SELECTION = DATA_SELECTION | dg.AssetSelection.groups("inference")
NIGHTLY_SCHEDULE_NAME = "nightly_schedule"

# Shown in the job's description: a partitioned job launched without a day fails with Dagster's internal error.
PICK_A_DAY = (
    "Daily-partitioned: launch it for a day (in the launch dialog, choose the partition, e.g. yesterday; "
    "for several days, a backfill)."
)


def build_nightly_jobs(settings: Settings) -> tuple[list, dg.ScheduleDefinition]:
    """``[nightly, ingest]`` and the nightly schedule."""
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
    def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        partition_key = day_before(context.scheduled_execution_time, settings.timezone)
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key)

    return [nightly_job, ingest_job], nightly_schedule
