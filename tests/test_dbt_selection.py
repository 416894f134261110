"""The default dbt selection is read from the manifest while definitions load (``manifest_select_all`` in
assets/transform/dbt_selection.py, which spares every load dbt-core's selection engine): it must give exactly the
assets and checks that dbt-core's selection gives, and leave every other selection to dbt-core."""

from __future__ import annotations

import json

import pytest
from dagster_dbt import asset_utils

from assets.transform.dbt_selection import manifest_select_all
from assets.transform.translator import NightjarDbtTranslator


@pytest.fixture(scope="module")
def manifest(dbt_manifest) -> dict:
    return json.loads(dbt_manifest.read_text())


def _specs(manifest: dict):
    specs, checks = asset_utils.build_dbt_specs(
        translator=NightjarDbtTranslator("duckdb"),
        manifest=manifest,
        select="fqn:*",
        exclude="",
        selector="",
        io_manager_key=None,
        project=None,
    )
    assets = {s.key: (sorted(d.asset_key.to_user_string() for d in s.deps), s.group_name) for s in specs}
    return assets, sorted((c.asset_key.to_user_string(), c.name, c.blocking) for c in checks)


def test_select_all_from_the_manifest_gives_what_dbt_core_selects(manifest):
    by_dbt_core = _specs(manifest)
    with manifest_select_all():
        by_manifest = _specs(manifest)
    assert by_manifest == by_dbt_core
    assert by_manifest[0] and by_manifest[1]  # the project has models and tests: the comparison compared something


def test_other_selections_still_go_to_dbt_core_and_the_library_is_restored(manifest):
    original = asset_utils.select_unique_ids
    with manifest_select_all():
        assert asset_utils.select_unique_ids is not original
        selected = asset_utils.select_unique_ids(
            select="stg_applications", exclude="", selector="", project=None, manifest_json=manifest
        )
    assert asset_utils.select_unique_ids is original
    models = {u for u in selected if u.startswith("model.")}
    assert models == {u for u in manifest["nodes"] if u.startswith("model.") and u.endswith(".stg_applications")}
