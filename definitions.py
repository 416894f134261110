"""The one Definitions object: what `dagster dev` (via workspace.yaml) and the tests load."""

from __future__ import annotations

import dagster as dg

from assets.ml.factory import build_model_assets
from assets.raw import raw_assets
from assets.transform import transform_assets
from jobs.monitoring import build_monitoring_job
from jobs.nightly import ingest_job, nightly_job, nightly_schedule
from jobs.promotion import build_promotion_jobs
from jobs.sensors import build_sensors
from jobs.training import build_training_job
from resources.build import build_resources
from resources.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    models = build_model_assets(transform_assets, settings.warehouse_kind)
    jobs: list = [nightly_job, ingest_job]
    schedules: list = [nightly_schedule]
    training_jobs: dict[str, dg.JobDefinition] = {}
    for model in models:
        training_job, training_schedule = build_training_job(model.spec)
        training_jobs[model.spec.name] = training_job
        monitoring_job, monitoring_schedule = build_monitoring_job(model.spec)
        jobs += [training_job, monitoring_job, *build_promotion_jobs(model.spec)]
        schedules += [training_schedule, monitoring_schedule]
    executor = dg.in_process_executor if settings.executor == "in_process" else dg.multiprocess_executor
    return dg.Definitions(
        assets=[*raw_assets, *transform_assets, *(a for m in models for a in m.assets)],
        asset_checks=[c for m in models for c in m.checks],
        jobs=jobs,
        schedules=schedules,
        sensors=build_sensors([m.spec for m in models], training_jobs),
        resources=build_resources(settings),
        executor=executor,
    )


defs = build_definitions(get_settings())
