"""The dbt assets' default selection (everything) is read from the manifest while definitions load
(``manifest_select_all`` in assets/transform/dbt_selection.py, which spares every load dbt-core's selection
engine): it must give exactly the assets and checks that dbt-core's selection gives, and leave every other
selection to dbt-core. Both sides are built with ``@dbt_assets`` and compared through their specs."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import dbt_assets

from assets.transform import build_dbt_assets
from assets.transform.dbt_selection import manifest_select_all
from assets.transform.translator import NightjarDbtTranslator
from resources.dbt import dbt_project
from resources.settings import DBT_PROJECT_DIR

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


def _by_dbt_core(select: str = "fqn:*") -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=dbt_project(DBT_PROJECT_DIR, "dev").manifest_path,
        select=select,
        dagster_dbt_translator=NightjarDbtTranslator("duckdb"),
        partitions_def=PARTITIONS,
    )
    def _models(context): ...

    return _models


def _shape(assets_def: dg.AssetsDefinition):
    """What a person sees of the dbt assets: each asset's upstreams and group, each check and whether it blocks."""
    assets = {s.key: (sorted(d.asset_key.to_user_string() for d in s.deps), s.group_name) for s in assets_def.specs}
    checks = sorted((c.asset_key.to_user_string(), c.name, c.blocking) for c in assets_def.check_specs)
    return assets, checks


def test_select_all_from_the_manifest_gives_what_dbt_core_selects():
    built = build_dbt_assets(dbt_project(DBT_PROJECT_DIR, "dev"), PARTITIONS, "duckdb")  # definitions' own path
    by_manifest, by_dbt_core = _shape(built), _shape(_by_dbt_core())
    assert by_manifest == by_dbt_core
    assert by_manifest[0] and by_manifest[1]  # the project has models and tests: the comparison compared something


def test_other_selections_still_go_to_dbt_core():
    with manifest_select_all():
        inside = _by_dbt_core("stg_applications")
    assert {s.key.path[-1] for s in inside.specs} == {"stg_applications"}
    assert _shape(inside) == _shape(_by_dbt_core("stg_applications"))
