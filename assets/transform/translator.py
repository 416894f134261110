"""How dbt nodes appear in Dagster: groups by layer, owners, kinds, and descriptions from the dbt YAML.

Column types: dagster-dbt builds each asset's ``dagster/column_schema`` from the columns the manifest documents,
with dbt's own ``data_type`` as the column type; the model YAML declares it, so the types show without a
warehouse query (no ``fetch_column_metadata()`` per run, no connection when definitions load).

Check descriptions: dagster-dbt (0.29) gives a dbt test's asset check the test's ``meta.description`` only, so a
test described the dbt way (``description:``, on a singular test in ``tests/**/schema.yml`` or on a generic test
in the model YAML) showed "No description provided". :meth:`NightjarDbtTranslator.get_asset_check_spec` uses,
in order: the test's ``description``, its ``meta.description``, a sentence built from a generic test's
``test_metadata`` (``unique: every application_id of stg_applications is distinct``), or a singular test's
leading SQL comment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}
MAX_LISTED_VALUES = 10  # accepted_values longer than this are cut in a check's description


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

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        description = check_description(self.get_resource_props(manifest, unique_id), manifest)
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=description,
            additional_deps=spec.additional_deps,
            blocking=spec.blocking,
            metadata=spec.metadata,
            automation_condition=spec.automation_condition,
            partitions_def=spec.partitions_def,
        )


# --- check descriptions --------------------------------------------------------------------------------------------


def check_description(test: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """What a dbt test checks, in words, for its asset check (see the module docstring for the order)."""
    meta = test.get("meta") or (test.get("config") or {}).get("meta") or {}
    text = (test.get("description") or meta.get("description") or "").strip()
    metadata = test.get("test_metadata")
    if not text:
        text = _describe_generic(test, metadata, manifest) if metadata else _leading_comment(test)
    if not text:
        text = f"dbt test {test.get('name', '?')}"
    window = _window_column(test, manifest) if metadata else None
    if window:
        # Generic tests on a model that names its day column read only the run's days (macros/test_window.sql);
        # singular tests say what they read in their own SQL and description.
        text += f"\n\nChecks the run's window of {window} only; the dbt_full_tests job checks all history."
    return text


def _describe_generic(test: Mapping[str, Any], metadata: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    name = metadata.get("name") or "test"
    if metadata.get("namespace"):
        name = f"{metadata['namespace']}.{name}"
    kwargs = dict(metadata.get("kwargs") or {})
    column = kwargs.pop("column_name", None) or test.get("column_name")
    tested = _tested_name(test, manifest, kwargs.pop("model", None))
    subject = f"{column} of {tested}" if column else tested
    where = (test.get("config") or {}).get("where")
    suffix = f" (where {where})" if where else ""
    if name == "unique":
        return f"unique: every {subject} is distinct{suffix}"
    if name == "not_null":
        return f"not_null: no {subject} is null{suffix}"
    if name == "accepted_values":
        values = [str(v) for v in kwargs.get("values") or []]
        if len(values) > MAX_LISTED_VALUES:
            values = values[:MAX_LISTED_VALUES] + [f"... ({len(values) - MAX_LISTED_VALUES} more)"]
        return f"accepted_values: {subject} is one of {', '.join(values)}{suffix}"
    if name == "relationships":
        target = _relation_name(str(kwargs.get("to", "")))
        return f"relationships: every {subject} is a {kwargs.get('field', '?')} of {target}{suffix}"
    arguments = ", ".join(f"{key}={value}" for key, value in kwargs.items())
    return f"{name} on {subject}" + (f" ({arguments})" if arguments else "") + suffix


def _tested_name(test: Mapping[str, Any], manifest: Mapping[str, Any], model_arg: Any) -> str:
    """The model (or source table) a generic test is on."""
    attached = test.get("attached_node")
    node = (manifest.get("nodes") or {}).get(attached) if attached else None
    if node:
        return node["name"]
    return _relation_name(str(model_arg or "")) or "?"


def _relation_name(text: str) -> str:
    """``ref('a')`` -> a, ``source('s', 't')`` -> s.t (also inside ``{{ get_where_subquery(...) }}``)."""
    match = re.search(r"\b(ref|source)\(([^)]*)\)", text)
    if not match:
        return text
    names = re.findall(r"['\"]([^'\"]+)['\"]", match.group(2))
    if not names:
        return text
    return ".".join(names[-2:]) if match.group(1) == "source" else names[-1]


def _leading_comment(test: Mapping[str, Any]) -> str:
    """A singular test's opening ``--`` comment lines (after any ``{{ config(...) }}``), joined."""
    lines = []
    for line in (test.get("raw_code") or "").splitlines():
        stripped = line.strip()
        if not lines and (not stripped or stripped.startswith("{{")):
            continue
        if not stripped.startswith("--"):
            break
        lines.append(stripped.lstrip("-").strip())
    return " ".join(lines)


def _window_column(test: Mapping[str, Any], manifest: Mapping[str, Any]) -> str | None:
    attached = test.get("attached_node")
    node = (manifest.get("nodes") or {}).get(attached) if attached else None
    if not node:
        return None
    meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
    return (meta.get("nightjar") or {}).get("partition_column")
