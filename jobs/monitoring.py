"""Per model: the monitoring job and its own daily schedule.

Each tick checks drift of yesterday's scored partition and the quality of the day whose labels have just
arrived (label_delay_days earlier): two runs of the same job, one per partition.

The drift and quality assets carry no automation condition: this schedule runs them. ``eager()`` on drift would
launch a second drift run of each scored day beside this schedule's, and quality waits for labels, a time no
upstream materialization marks (why the nightly chain declares none: ``jobs/nightly.py``).
"""

from datetime import date, timedelta

import dagster as dg

from assets.ml.spec import ModelSpec
from assets.monitoring.check_names import DRIFT_ASSET, QUALITY_ASSET
from assets.partitions import day_before
from resources.settings import Settings


def monitoring_job_name(spec: ModelSpec) -> str:
    return f"monitor_{spec.name}"


def label_delay_days(spec: ModelSpec, settings: Settings) -> int:
    """Days from a scored row to its known outcome: the spec's ``monitoring.label_delay_days``, else
    NIGHTJAR_LABEL_DELAY_DAYS."""
    delay = spec.monitoring.label_delay_days
    return settings.label_delay_days if delay is None else delay


def build_monitoring_job(spec: ModelSpec, settings: Settings) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    drift_key = dg.AssetKey([spec.name, DRIFT_ASSET])
    quality_key = dg.AssetKey([spec.name, QUALITY_ASSET])
    job = dg.define_asset_job(
        name=monitoring_job_name(spec),
        selection=dg.AssetSelection.assets(drift_key, quality_key),
        description=f"Drift (and, once labels are in, quality) of {spec.name}'s scored days, with their checks.",
    )

    label_delay = label_delay_days(spec, settings)

    @dg.schedule(
        name=f"{monitoring_job_name(spec)}_daily",
        job=job,
        cron_schedule=settings.monitoring_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day: drift of yesterday's {spec.name} scores, and quality of the day whose labels "
        f"have just arrived ({label_delay} days earlier).",
    )
    def monitoring_schedule(context: dg.ScheduleEvaluationContext):
        yesterday = day_before(context.scheduled_execution_time, settings.timezone)
        labeled_day = date.fromisoformat(yesterday) - timedelta(days=label_delay)
        yield dg.RunRequest(run_key=f"drift-{yesterday}", partition_key=yesterday, asset_selection=[drift_key])
        if labeled_day >= settings.start_date:
            yield dg.RunRequest(
                run_key=f"quality-{labeled_day}", partition_key=labeled_day.isoformat(), asset_selection=[quality_key]
            )

    return job, monitoring_schedule
