"""The nightly job: yesterday's partition through raw ingestion, the dbt transforms and batch scoring, on a cron
schedule in the configured timezone; and the ingest job that backfills history without scoring."""

import dagster as dg

from assets.partitions import day_before
from resources.settings import Settings

DATA_SELECTION = dg.AssetSelection.groups("raw", "staging", "intermediate", "marts")
NIGHTLY_SELECTION = DATA_SELECTION | dg.AssetSelection.groups("inference")


def build_nightly_jobs(settings: Settings) -> tuple[list, dg.ScheduleDefinition]:
    """``[nightly, ingest]`` and the nightly schedule."""
    ingest_job = dg.define_asset_job(
        name="ingest",
        selection=DATA_SELECTION,
        description="Raw ingestion and every dbt model and test, without scoring: for backfilling history.",
    )
    nightly_job = dg.define_asset_job(
        name="nightly",
        selection=NIGHTLY_SELECTION,
        description="Yesterday's partition: raw ingestion, every dbt model and test, then scoring by each champion.",
    )

    @dg.schedule(
        job=nightly_job,
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every night: the last complete day (yesterday in the partitions' timezone) through raw, dbt "
        "and scoring.",
    )
    def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        partition_key = day_before(context.scheduled_execution_time, settings.timezone)
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key)

    return [nightly_job, ingest_job], nightly_schedule
