"""Raw tables, read from the dbt sources that carry a ``config.meta.nightjar`` block in the prepared manifest.

A declaration is a dbt source table with ``data_type`` on every column, ``constraints: [{type: not_null}]`` where
a column may not be null, and nightjar's own words where dbt has none::

    sources:
      - name: raw
        schema: raw
        tables:
          - name: trips
            config:
              meta:
                nightjar:
                  origin: landing              # or a generator's name, e.g. synthetic_loans
                  partition_column: trip_date  # a DATE column: the partition day
                  partition_from: file_name    # or column (default): the files carry the day in that column
                  key: [trip_date, station_id] # unique across stored days (the day in it: per day); optional
                  missing_day: empty           # or error (default): may a day have no file?
                  null_markers: ["NA"]         # CSV cells read as NULL besides the empty cell; optional
                  file_name: "trips_{day}"     # landing file name without suffix; default "{day}"
                  complete_when: marker        # when a landing file is complete: quiet (default, 60 s), marker,
                                               # rename, {quiet_seconds: 0}, {marker: "{file}.ok"}; see CompleteWhen
            columns:
              - name: station_id
                data_type: varchar
                constraints: [{type: not_null}]
                config: {meta: {accepted_values: [a, b]}}   # or min: / max: for numbers
              - name: driver_name
                data_type: varchar
                config: {meta: {nightjar: {sensitive: true}}}  # values never shown or logged (true / false)

The pydantic models of ``resources.source.declaration_models`` validate a declaration; here their errors become
messages. Every error names the YAML file, the table and the field (one line each, all of a table's errors at once),
and is raised when the definitions load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from resources.manifest import load_manifest
from resources.source.declaration_models import (
    ColumnDeclaration,
    ColumnRules,
    ColumnSettings,
    Invalid,
    SourceNode,
    TableSettings,
)
from resources.source.schema import Column, RawTable


class DeclarationError(ValueError):
    """A raw table declaration that cannot be used; the message names the file, the table and the field."""


def load_raw_tables(manifest_path: Path) -> dict[str, RawTable]:
    """Every declared raw table in the manifest, by ``source.table``, in the order dbt lists them."""
    manifest = load_manifest(manifest_path)
    project_dir = Path(manifest_path).parent.parent
    tables = []
    for node in manifest.get("sources", {}).values():
        declared = (node.get("config") or {}).get("meta", {}).get("nightjar") or node.get("meta", {}).get("nightjar")
        if declared is None:
            continue  # a dbt source nightjar does not fill (e.g. a table another tool loads)
        table = _table(node, declared, project_dir / node.get("original_file_path", "?"))
        tables.append((table.label, table))
    seen: dict[str, RawTable] = {}
    for label, table in tables:
        other = next((t for t in seen.values() if t.qualified == table.qualified), None)
        if other is not None:
            raise DeclarationError(
                f"{table.declared_in}: table {label}: warehouse table {table.qualified} is also declared by "
                f"{other.label} in {other.declared_in}"
            )
        seen[label] = table
    return seen


def _table(node: dict[str, Any], declared: Any, path: Path) -> RawTable:
    label = f"{node['source_name']}.{node['name']}"
    problems: list[str] = []
    if not isinstance(declared, dict):
        problems.append("field 'meta.nightjar': must be a mapping of nightjar's settings")
    stored = {
        "schema": node["schema"],
        "identifier": node.get("identifier") or node["name"],
        "columns": node.get("columns", {}),
    }
    where = _validated(SourceNode, stored, "", problems, _unknown("rule", ColumnRules))
    columns = {c.name: c.data_type for c in where.columns.values()} if where else None
    settings = None
    if isinstance(declared, dict):
        context = {"columns": columns}
        settings = _validated(
            TableSettings, declared, "meta.nightjar.", problems, _unknown("setting", TableSettings), context
        )
    if problems:
        raise DeclarationError("\n".join(f"{path}: table {label}: {problem}" for problem in problems))
    return RawTable(
        source=node["source_name"],
        name=node["name"],
        schema=where.schema_name,
        identifier=where.identifier,
        columns=tuple(_column(c) for c in where.columns.values()),
        partition_column=settings.partition_column,
        origin=settings.origin,
        key=tuple(settings.key),
        partition_from=settings.partition_from,
        missing_day=settings.missing_day,
        null_markers=tuple(settings.null_markers),
        file_name=settings.file_name,
        complete_when=settings.complete_when,
        description=node.get("description") or "",
        declared_in=str(path),
        owners=tuple(settings.owners),
    )


def _column(column: ColumnDeclaration) -> Column:
    return Column(
        name=column.name,
        dtype=column.data_type,
        nullable=column.nullable,
        accepted_values=tuple(column.meta.accepted_values),
        min=column.meta.min,
        max=column.meta.max,
        description=column.description or "",
        sensitive=column.meta.nightjar.sensitive,
    )


def _unknown(kind: str, model: type[BaseModel]) -> str:
    return f"unknown {kind} (known: {', '.join(sorted(model.model_fields))})"


def _validated(model, data: Any, prefix: str, problems: list[str], unknown: str, context=None) -> Any:
    """``model`` validated from ``data``, or None with one line per error added to ``problems``: "field '<prefix
    and location>': <what was wrong>"; ``unknown`` says what a key the model does not know is."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_problem(error, prefix, unknown) for error in exc.errors())
        return None


def _problem(error: dict[str, Any], prefix: str, unknown: str) -> str:
    location = [str(part) for part in error["loc"]]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Invalid) and cause.field:
        location.append(cause.field)
    if error["type"] == "extra_forbidden":
        # a column's meta.nightjar has settings of its own, not rules
        what = _unknown("setting", ColumnSettings) if location[-2:-1] == ["nightjar"] else unknown
    elif cause is not None:
        what = str(cause)  # our own words (pydantic's "Value error, " prefix left out)
    elif error["type"] == "missing":
        what = error["msg"]
    else:
        what = f"{error['input']!r}: {error['msg']}"
    return f"field '{prefix}{'.'.join(location)}': {what}"
