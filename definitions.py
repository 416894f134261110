"""The one Definitions object: what `dagster dev` (via workspace.yaml) and the tests load.

``build_definitions(settings)`` builds everything from the settings it is given; the module-level ``defs`` is
the only place the environment is read (``Settings.from_env()``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from assets.ml.model_assets import build_model_assets
from assets.partitions import build_daily_partitions
from assets.raw import build_raw_assets
from assets.review import build_review_assets
from assets.transform import build_dbt_assets
from jobs.dbt_full_tests import build_dbt_full_tests_job
from jobs.monitoring import build_monitoring_job
from jobs.nightly import build_nightly_jobs
from jobs.promotion import build_promotion_jobs
from jobs.review import build_review_job
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
# again (seconds per step on a 2-core machine; bench.chain); jobs/forkserver_preload.py then resolves the jobs and
# imports the instance's storage there. A module the server cannot import is skipped.
FORKSERVER_EXECUTOR = dg.multiprocess_executor.configured(
    {
        "start_method": {
            "forkserver": {"preload_modules": ["dagster", "dagster_dbt", "definitions", "jobs.forkserver_preload"]}
        }
    },
    name="multiprocess_forkserver",
)

# Beta APIs nightjar uses on purpose, with no non-beta equivalent in Dagster 1.13. Their warnings are silenced by
# exact message while the definitions are built, so that any other Beta, Preview or superseded warning still shows.
KNOWN_BETA_WARNINGS = (
    # `backfill_policy=BackfillPolicy.single_run()` on the partitioned assets: a backfill of many days is one run.
    r"Parameter `backfill_policy` of function `asset` is currently in beta",
    # `with_source_code_references` and the metadata it attaches: the "open source" link of every asset (below).
    r"Function `with_source_code_references` is currently in beta",
    r"Class `LocalFileCodeReference` is currently in beta",
    r"Class `CodeReferencesMetadataValue` is currently in beta",
)


@contextmanager
def known_beta_warnings_silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in KNOWN_BETA_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
        yield


def build_definitions(settings: Settings) -> dg.Definitions:
    with known_beta_warnings_silenced():
        return _build_definitions(settings)


def _build_definitions(settings: Settings) -> dg.Definitions:
    partitions = build_daily_partitions(settings)
    kind = settings.warehouse_kind
    # The project first: under `dagster dev` it re-parses dbt, and the raw declarations are read from that manifest.
    dbt_models = build_dbt_assets(dbt_project(settings.dbt_project_dir, settings.dbt_target), partitions, kind)
    declared = load_raw_tables(settings.manifest_path)
    raw_tables = declared.values()
    raw_assets = build_raw_assets(raw_tables, partitions, kind)
    models = build_model_assets([dbt_models], partitions, settings)
    specs = [m.spec for m in models]
    reviews = build_review_assets(specs, declared, partitions, kind)
    landing_keys = [dg.AssetKey([t.source, t.name]) for t in raw_tables if t.origin == LANDING]
    jobs, nightly_schedule = build_nightly_jobs(settings, landing_keys)
    dbt_tests_job, dbt_tests_schedule = build_dbt_full_tests_job(settings.dbt_tests_cron, settings.timezone)
    jobs.append(dbt_tests_job)
    if specs:
        jobs.append(build_review_job(specs))
    schedules: list = [nightly_schedule, dbt_tests_schedule]
    training_jobs: dict[str, dg.JobDefinition] = {}
    for model in models:
        training_job, training_schedule = build_training_job(model.spec, settings)
        training_jobs[model.spec.name] = training_job
        monitoring_job, monitoring_schedule = build_monitoring_job(model.spec, settings)
        jobs += [training_job, monitoring_job, *build_promotion_jobs(model.spec)]
        schedules += [training_schedule, monitoring_schedule]
    executor = dg.in_process_executor if settings.executor == "in_process" else FORKSERVER_EXECUTOR
    assets = with_code_references([*raw_assets, dbt_models, *(a for m in models for a in m.assets), *reviews])
    return dg.Definitions(
        assets=assets,
        asset_checks=[c for m in models for c in m.checks],
        jobs=jobs,
        schedules=schedules,
        sensors=[*build_sensors(specs, training_jobs, settings), run_reaper_sensor],
        resources=build_resources(settings),
        executor=executor,
    )


CODE_REFERENCES = "dagster/code_references"


def with_code_references(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Each asset links the Python function that computes it (local file and line: a clone may have no remote to
    link to), as Dagster's ``with_source_code_references`` does."""
    return [_file_of_wrapped_function(a) for a in dg.with_source_code_references(assets)]


def _file_of_wrapped_function(assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The file of the function a decorator wraps: Dagster 1.13 takes the line from it (``inspect.unwrap``) but the
    file from the wrapper, ``assets/step_cost.py``'s ``with_cost`` for most assets."""
    if not isinstance(assets_def, dg.AssetsDefinition) or not isinstance(assets_def.node_def, dg.OpDefinition):
        return assets_def
    fn = assets_def.node_def.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    if not hasattr(fn, "__wrapped__"):
        return assets_def
    wrapper_file, source_file = inspect.getsourcefile(fn), inspect.getsourcefile(inspect.unwrap(fn))

    def fixed(spec: dg.AssetSpec) -> dg.AssetSpec:
        references = [
            dg.LocalFileCodeReference(file_path=source_file, line_number=r.line_number, label=r.label)
            if isinstance(r, dg.LocalFileCodeReference) and r.file_path == wrapper_file
            else r
            for r in spec.metadata[CODE_REFERENCES].code_references
        ]
        metadata = {**spec.metadata, CODE_REFERENCES: dg.CodeReferencesMetadataValue(code_references=references)}
        return spec.replace_attributes(metadata=metadata)

    return assets_def.map_asset_specs(fixed)


defs = build_definitions(Settings.from_env())
