"""The one Definitions object: what `dagster dev` (via workspace.yaml) and the tests load.

``build_definitions(settings)`` builds everything from the settings it is given; the module-level ``defs`` is
the only place the environment is read (``Settings.from_env()``).
"""

from __future__ import annotations

import dagster as dg

from assets.ml.model_assets import build_model_assets
from assets.partitions import build_daily_partitions
from assets.raw import build_raw_assets
from assets.transform import build_dbt_assets
from jobs.dbt_full_tests import build_dbt_full_tests_job
from jobs.monitoring import build_monitoring_job
from jobs.nightly import build_nightly_jobs
from jobs.promotion import build_promotion_jobs
from jobs.run_reaper import run_reaper_sensor
from jobs.sensors import build_sensors
from jobs.training import build_training_job
from resources.build import build_resources
from resources.dbt import dbt_project
from resources.settings import Settings
from resources.source.declarations import load_raw_tables
from resources.source.schema import LANDING

# The multiprocess executor starts each step in a fresh process; with `forkserver`, one server process imports
# Dagster, dagster-dbt and these definitions once and every step forks from it, instead of each step importing them
# again (seconds per step on a 2-core machine; bench.chain). A module the server cannot import is skipped.
FORKSERVER_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["dagster", "dagster_dbt", "definitions"]}}},
    name="multiprocess_forkserver",
)


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = build_daily_partitions(settings)
    kind = settings.warehouse_kind
    # The project first: under `dagster dev` it re-parses dbt, and the raw declarations are read from that manifest.
    dbt_models = build_dbt_assets(dbt_project(settings.dbt_project_dir, settings.dbt_target), partitions, kind)
    raw_tables = load_raw_tables(settings.manifest_path).values()
    raw_assets = build_raw_assets(raw_tables, partitions, kind)
    models = build_model_assets([dbt_models], partitions, settings)
    landing_keys = [dg.AssetKey([t.source, t.name]) for t in raw_tables if t.origin == LANDING]
    jobs, nightly_schedule = build_nightly_jobs(settings, landing_keys)
    dbt_tests_job, dbt_tests_schedule = build_dbt_full_tests_job(settings.dbt_tests_cron, settings.timezone)
    jobs.append(dbt_tests_job)
    schedules: list = [nightly_schedule, dbt_tests_schedule]
    training_jobs: dict[str, dg.JobDefinition] = {}
    for model in models:
        training_job, training_schedule = build_training_job(model.spec, settings)
        training_jobs[model.spec.name] = training_job
        monitoring_job, monitoring_schedule = build_monitoring_job(model.spec, settings)
        jobs += [training_job, monitoring_job, *build_promotion_jobs(model.spec)]
        schedules += [training_schedule, monitoring_schedule]
    executor = dg.in_process_executor if settings.executor == "in_process" else FORKSERVER_EXECUTOR
    return dg.Definitions(
        assets=[*raw_assets, dbt_models, *(a for m in models for a in m.assets)],
        asset_checks=[c for m in models for c in m.checks],
        jobs=jobs,
        schedules=schedules,
        sensors=[*build_sensors([m.spec for m in models], training_jobs, settings), run_reaper_sensor],
        resources=build_resources(settings),
        executor=executor,
    )


defs = build_definitions(Settings.from_env())
