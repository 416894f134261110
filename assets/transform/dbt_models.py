"""One ``@dbt_assets`` over the whole dbt project, daily-partitioned like the raw tables.

A run hands its partition window to dbt as vars (``min_date`` inclusive, ``max_date`` exclusive): incremental
marts rebuild exactly those days, and a backfill of a range is a single dbt invocation over the range.
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject, asset_utils, dbt_assets

from assets.partitions import single_run, window_dates
from assets.transform.translator import NightjarDbtTranslator
from resources.dbt import NightjarDbtCli
from resources.warehouse import WAREHOUSE_POOL


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    start, end = window_dates(context)
    return {"min_date": start.isoformat(), "max_date": end.isoformat()}


def _is_select_all(select: str, exclude: str, selector: str) -> bool:
    return select in ("", "fqn:*") and not exclude and not selector


@contextmanager
def manifest_select_all() -> Iterator[None]:
    """While building ``@dbt_assets``: the default selection (everything) is read from the manifest.

    Whenever dbt-core is installed, dagster-dbt evaluates every selection with dbt-core's selection engine, even
    select-everything, and importing that engine (``dbt.graph``, networkx) is about 0.3 s of every definitions load.
    For select-everything the answer is every node of the manifest: what dagster-dbt itself answers when dbt-core
    is not installed (dbt tests are nodes, so they still become checks; unit tests and sources never become
    assets). Any other selection goes to dbt-core as before. ``tests/test_dbt_selection.py`` checks that both give
    the same assets and checks; a dagster-dbt without ``asset_utils.select_unique_ids`` is left alone.
    """
    original = getattr(asset_utils, "select_unique_ids", None)
    if original is None:
        yield
        return

    def select_unique_ids(select, exclude, selector, project, manifest_json):
        if _is_select_all(select, exclude, selector):
            return set(manifest_json["nodes"])
        return original(select=select, exclude=exclude, selector=selector, project=project, manifest_json=manifest_json)

    asset_utils.select_unique_ids = select_unique_ids
    try:
        yield
    finally:
        asset_utils.select_unique_ids = original


def build_dbt_assets(
    project: DbtProject, partitions: dg.PartitionsDefinition, warehouse_kind: str
) -> dg.AssetsDefinition:
    with manifest_select_all():
        return _build_dbt_assets(project, partitions, warehouse_kind)


def _build_dbt_assets(
    project: DbtProject, partitions: dg.PartitionsDefinition, warehouse_kind: str
) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=NightjarDbtTranslator(warehouse_kind),
        partitions_def=partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
    )
    def nightjar_dbt_models(context: dg.AssetExecutionContext, dbt: NightjarDbtCli):
        # Each invocation's target folder (about 3 MB) would otherwise stay under dbt_project/target for ever;
        # dagster-dbt still copies the prepared partial-parse file into it.
        with tempfile.TemporaryDirectory(prefix="nightjar-dbt-") as target:
            invocation = dbt.cli_in_window(["build"], partition_vars(context), Path(target), context=context)
            try:
                yield from invocation.stream()
            finally:
                dbt.save_parse_state(Path(target))  # still valid when a dbt test failed

    return nightjar_dbt_models
