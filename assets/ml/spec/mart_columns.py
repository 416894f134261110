"""Does a mart hold every column a spec names? Checked at definitions load against the columns the marts document
in their dbt YAML (:func:`check_documented_columns`), and again on the rows a run reads (:func:`check_mart_columns`).
"""

from __future__ import annotations

from pathlib import Path

from assets.ml.spec.fields import SpecError
from assets.ml.spec.model_spec import ModelSpec
from resources.manifest import load_manifest, model_columns


def check_mart_columns(spec: ModelSpec, available: set[str], mart: str, source: str) -> None:
    """Fail, naming the spec, the fields and the columns, when a mart lacks a column the spec needs."""
    needed = [("entity_id", spec.entity_id), ("timestamp", spec.timestamp)]
    needed += [("features.numeric", c) for c in spec.features.numeric]
    needed += [("features.categorical", c) for c in spec.features.categorical]
    if mart == spec.training_mart:
        needed += [("target", spec.target), ("label_date", spec.label_date)]
    missing = [f"field '{field}': '{column}'" for field, column in needed if column not in available]
    if missing:
        raise SpecError(
            f"{source}: mart '{mart}' has no column for {', '.join(missing)} (its columns: {', '.join(sorted(available))})"
        )


def check_documented_columns(spec: ModelSpec, source: str, manifest_path: Path) -> None:
    """At load, not at run: every column the spec names must be one its marts document in their dbt YAML."""
    manifest = load_manifest(manifest_path)
    for mart in dict.fromkeys((spec.training_mart, spec.scoring_mart)):
        columns = model_columns(manifest, mart)
        if columns is not None:
            check_mart_columns(spec, columns, mart, source)
