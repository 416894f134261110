"""How dbt nodes appear in Dagster: groups by layer, owners, kinds, and descriptions from the dbt YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


def _layer(props: Mapping[str, Any]) -> str | None:
    """The model's top folder under models/ (staging, intermediate, marts): the dbt convention for its layer.
    Domains live in subfolders of each layer (models/staging/loans/...)."""
    fqn = props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else None


class NightjarDbtTranslator(DagsterDbtTranslator):
    def __init__(self, warehouse_kind: str) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.warehouse_kind = warehouse_kind

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") != "model":
            return spec
        return spec.replace_attributes(
            group_name=LAYER_GROUPS.get(_layer(props) or "", "transform"),
            owners=["team:data-engineering"],
        ).merge_attributes(kinds={self.warehouse_kind})
