"""The prepared dbt manifest (``dbt parse`` at setup), read once per process and file version: the raw table
declarations and the marts' documented columns both come from it, so definitions never parse dbt."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def load_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"dbt manifest {path} is missing: run `make setup` (or `dbt parse` in {path.parent.parent})"
        )
    return _read(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read(path: str, _mtime_ns: int) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def model_columns(manifest: dict[str, Any], model: str) -> set[str] | None:
    """The columns a dbt model documents in its YAML, or None if it documents none (then nothing is known)."""
    found = _model_node(manifest, model)
    return (set(found[1].get("columns") or {}) or None) if found else None


def _model_node(manifest: dict[str, Any], model: str) -> tuple[str, dict[str, Any]] | None:
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") == "model" and node.get("name") == model:
            return unique_id, node
    return None


def column_data_types(manifest: dict[str, Any], model: str) -> dict[str, str | None]:
    """Each documented column of a dbt model and its declared ``data_type`` (None where none is declared)."""
    found = _model_node(manifest, model)
    columns = (found[1].get("columns") or {}) if found else {}
    return {name: column.get("data_type") for name, column in columns.items()}


def column_accepted_values(manifest: dict[str, Any], model: str, column: str) -> list[list[Any]]:
    """The values of every ``accepted_values`` test on ``model.column`` (dbt's generic test)."""
    found = _model_node(manifest, model)
    if found is None:
        return []
    tests = []
    for node in manifest.get("nodes", {}).values():
        metadata = node.get("test_metadata") or {}
        if (
            node.get("resource_type") == "test"
            and node.get("attached_node") == found[0]
            and node.get("column_name") == column
            and metadata.get("name") == "accepted_values"
        ):
            values = (metadata.get("kwargs") or {}).get("values")
            if isinstance(values, list):
                tests.append(values)
    return tests
