"""Does a mart hold every column a spec names, and does the target fit the task (a 0/1 label for binary, a number
for regression, any classes for multiclass)? Checked at definitions load against
what the marts document in their dbt YAML (:func:`check_documented_columns`: columns, the target's ``data_type`` and
its ``accepted_values`` test), and again on the rows a run reads (:func:`check_mart_columns`).
"""

from __future__ import annotations

from pathlib import Path

from assets.ml.spec.fields import SpecError
from assets.ml.spec.model_spec import ModelSpec
from resources.manifest import column_accepted_values, column_data_types, load_manifest, model_columns


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
    check_declared_target(spec, source, manifest)


# Declared types a 0/1 label may have (dbt's data_type is free text, as the warehouse spells it).
LABEL_TYPES = ("int", "integer", "bigint", "smallint", "tinyint", "byte", "short", "long", "boolean", "bool")
LABEL_VALUES = {"0", "1", "true", "false"}
# Declared types a regression target may have: the integers and the decimals.
NUMBER_TYPES = (
    *LABEL_TYPES[:-2],
    "int2",
    "int4",
    "int8",
    "float",
    "float4",
    "float8",
    "double",
    "double precision",
    "real",
    "decimal",
    "numeric",
)


def check_declared_target(spec: ModelSpec, source: str, manifest: dict) -> None:
    """The target as the training mart declares it, for the spec's task. binary: a ``data_type`` (when given) that
    can hold 0/1, and an ``accepted_values`` test (when there is one) whose values are 0 and 1. regression: a
    numeric ``data_type``. multiclass: an ``accepted_values`` test (when there is one) with two values or more."""
    declared = (column_data_types(manifest, spec.training_mart).get(spec.target) or "").strip().lower()
    declared_base = declared.split("(")[0].strip()
    where = f"'{spec.target}' is declared data_type '{declared}' in mart '{spec.training_mart}' (its dbt YAML)"
    if spec.task == "regression":
        if declared and declared_base not in NUMBER_TYPES:
            raise SpecError(
                f"{source}: field 'target': {where}; task regression predicts a number, which needs an integer or "
                "decimal column (or task: multiclass for classes)"
            )
        return
    accepted = column_accepted_values(manifest, spec.training_mart, spec.target)
    if spec.task == "multiclass":
        for values in accepted:
            if len(values) < 2:
                raise SpecError(
                    f"{source}: field 'target': '{spec.target}' of mart '{spec.training_mart}' accepts "
                    f"{sorted(map(str, values))} only (its accepted_values test); task multiclass needs two classes "
                    "or more"
                )
        return
    if declared and declared_base not in LABEL_TYPES:
        raise SpecError(
            f"{source}: field 'target': {where}; the spec scores a 0/1 label (task binary), which needs an integer "
            "or boolean column (task: regression predicts a number, task: multiclass one of several classes)"
        )
    for values in accepted:
        unexpected = sorted({str(v).lower() for v in values} - LABEL_VALUES)
        if unexpected:
            raise SpecError(
                f"{source}: field 'target': '{spec.target}' of mart '{spec.training_mart}' accepts values "
                f"{sorted(map(str, values))} (its accepted_values test); the spec scores a 0/1 label (task binary), "
                f"and {', '.join(unexpected)} is not one (task: multiclass predicts one of several classes)"
            )
