"""The nightly job: yesterday's partition through raw ingestion, the dbt transforms and batch scoring, on a cron
schedule in the configured timezone."""

import dagster as dg

from assets.partitions import day_before
from resources.settings import get_settings

DATA_SELECTION = dg.AssetSelection.groups("raw", "staging", "intermediate", "marts")
NIGHTLY_SELECTION = DATA_SELECTION | dg.AssetSelection.groups("inference")

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
    cron_schedule=get_settings().nightly_cron,
    execution_timezone=get_settings().timezone,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Runs the last complete day before the tick (yesterday, in the partitions' timezone)."""
    partition_key = day_before(context.scheduled_execution_time)
    return dg.RunRequest(run_key=partition_key, partition_key=partition_key)
