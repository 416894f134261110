"""Which columns hold sensitive values, from the prepared dbt manifest: declared once on a raw column
(``config: {meta: {nightjar: {sensitive: true}}}``, validated with the raw declaration), carried through dbt.

A dbt model's column is sensitive when

- its own YAML says so (the same ``meta.nightjar.sensitive: true``: the loan marts repeat it on ``age``, so the
  docs and ``dbt ls`` show it), or
- a raw table it is built from (through any number of models) declares a column of the same name sensitive: a
  column that keeps its name through staging and the marts keeps its sensitivity even where a YAML forgets it.

A column computed from a sensitive one under a new name (``loan_to_income`` from an income) is not sensitive by
itself: a ratio or a band does not show the value. Declare it in the model's YAML when it does.

Sensitive values are stored, transformed and used as features as usual; what nightjar shows or logs leaves them
out: raw previews show :data:`MASK`, Evidently reports and the MLflow reference sample leave the columns out, the
MLflow input example holds no value for them (missing, which the model imputes), and evaluation tables do not cut
segments by them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from resources.manifest import load_manifest
from resources.source.schema import MASK

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MASK", "SensitiveDeclarationError", "masked", "sensitive_columns", "sensitive_features"]


class SensitiveDeclarationError(ValueError):
    """A model column's ``meta.nightjar`` that cannot be read; the message names the file, model, column and
    field."""


def sensitive_columns(manifest: dict[str, Any], model: str, project_dir: Path = Path()) -> frozenset[str]:
    """The columns of dbt model ``model`` that hold sensitive values (see the module docstring); errors name its
    YAML file under ``project_dir`` (the dbt project's folder)."""
    nodes = manifest.get("nodes", {})
    found = next(
        (uid for uid, n in nodes.items() if n.get("resource_type") == "model" and n.get("name") == model), None
    )
    if found is None:
        return frozenset()
    node = nodes[found]
    declared = {
        name for name, column in (node.get("columns") or {}).items() if _declared_sensitive(node, column, project_dir)
    }
    return frozenset(declared | _raw_sensitive_upstream(manifest, found))


def sensitive_features(manifest_path: Path, marts: list[str], features: list[str]) -> frozenset[str]:
    """The ``features`` that are sensitive in any of ``marts`` (a model spec's training and scoring marts)."""
    manifest = load_manifest(manifest_path)
    project_dir = Path(manifest_path).parent.parent
    sensitive = set().union(*(sensitive_columns(manifest, mart, project_dir) for mart in marts))
    return frozenset(f for f in features if f in sensitive)


def masked(frame: pd.DataFrame, columns: frozenset[str] | set[str]) -> pd.DataFrame:
    """``frame`` with every value of ``columns`` replaced by :data:`MASK` (a copy)."""
    hidden = [c for c in frame.columns if c in columns]
    return frame.assign(**{c: MASK for c in hidden}) if hidden else frame


def _declared_sensitive(node: dict[str, Any], column: dict[str, Any], project_dir: Path) -> bool:
    settings = ((column.get("config") or {}).get("meta") or column.get("meta") or {}).get("nightjar") or {}
    if not isinstance(settings, dict):
        raise SensitiveDeclarationError(
            _where(node, column, "", project_dir) + "must be a mapping of nightjar's settings"
        )
    value = settings.get("sensitive", False)
    if not isinstance(value, bool):
        raise SensitiveDeclarationError(
            _where(node, column, ".sensitive", project_dir) + f"{value!r} must be true or false"
        )
    return value


def _where(node: dict[str, Any], column: dict[str, Any], field: str, project_dir: Path) -> str:
    yaml_file = (node.get("patch_path") or node.get("original_file_path") or "?").split("://", 1)[-1]
    return (
        f"{project_dir / yaml_file}: model {node.get('name')}: "
        f"field 'columns.{column.get('name')}.meta.nightjar{field}': "
    )


def _raw_sensitive_upstream(manifest: dict[str, Any], unique_id: str) -> set[str]:
    """Names of the sensitive columns of every dbt source ``unique_id`` is built from, through any models."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
    seen, todo, names = {unique_id}, [unique_id], set()
    while todo:
        for parent in (nodes.get(todo.pop(), {}).get("depends_on") or {}).get("nodes", []):
            if parent in seen:
                continue
            seen.add(parent)
            if parent in sources:
                names |= {
                    name for name, column in (sources[parent].get("columns") or {}).items() if _raw_sensitive(column)
                }
            elif parent in nodes:
                todo.append(parent)
    return names


def _raw_sensitive(column: dict[str, Any]) -> bool:
    """As the raw declaration reads it (``config.meta`` over ``meta``); its value was validated there."""
    meta = {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
    settings = meta.get("nightjar")
    return isinstance(settings, dict) and settings.get("sensitive") is True
