"""One ``@dbt_assets`` over the whole dbt project, daily-partitioned like the raw tables.

A run hands its partition window (``min_date`` inclusive, ``max_date`` exclusive) to ``dbt build`` as dbt's
``--event-time-start`` / ``--event-time-end`` (``NightjarDbtCli.cli_in_window``): incremental marts rebuild exactly
those days, and a backfill of a range is a single dbt invocation over the range.

The ``DbtProject`` is not handed to ``@dbt_assets`` (its ``project`` is optional, needed only for dbt code
references, which the translator leaves off): given, dagster-dbt stores the object itself as every dbt asset's
``dagster_dbt/project`` metadata, which the UI shows as "[DbtProject] (unserializable)". dbt runs in the same folder
either way, the CLI resource's ``project_dir``; a run selecting a subset of over 200 dbt nodes gets them as
``--select`` arguments rather than a selector file in a copy of the project (the project has about 40).
"""

import tempfile
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets

from assets.partitions import single_run, window_dates
from assets.transform.dbt_selection import manifest_select_all
from assets.transform.translator import NightjarDbtTranslator
from resources.dbt import NightjarDbtCli
from resources.warehouse import WAREHOUSE_POOL, Warehouse


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    start, end = window_dates(context)
    return {"min_date": start.isoformat(), "max_date": end.isoformat()}


def build_dbt_assets(
    project: DbtProject, partitions: dg.PartitionsDefinition, warehouse_kind: str
) -> dg.AssetsDefinition:
    with manifest_select_all():
        return _build_dbt_assets(project, partitions, warehouse_kind)


def _build_dbt_assets(
    project: DbtProject, partitions: dg.PartitionsDefinition, warehouse_kind: str
) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=project.manifest_path,  # no project=: see the module docstring
        dagster_dbt_translator=NightjarDbtTranslator(warehouse_kind),
        partitions_def=partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
    )
    def nightjar_dbt_models(context: dg.AssetExecutionContext, dbt: NightjarDbtCli, warehouse: Warehouse):
        # `warehouse` is not called here: requiring it makes this step hold the warehouse's exclusive writer while
        # dbt's subprocess writes (Warehouse.yield_for_execution).
        # Each invocation's target folder (about 3 MB) would otherwise stay under dbt_project/target for ever;
        # dagster-dbt still copies the prepared partial-parse file into it.
        with tempfile.TemporaryDirectory(prefix="nightjar-dbt-") as target:
            invocation = dbt.cli_in_window(["build"], partition_vars(context), Path(target), context=context)
            try:
                yield from invocation.stream()
            finally:
                dbt.save_parse_state(Path(target))  # still valid when a dbt test failed

    return nightjar_dbt_models
