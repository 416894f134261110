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

Every error names the YAML file, the table and the field, and is raised when the definitions load.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from resources.manifest import load_manifest
from resources.source.schema import (
    LANDING,
    MARKER,
    NUMERIC_TYPES,
    QUIET,
    RENAME,
    Column,
    CompleteWhen,
    RawTable,
)

# Generators shipped with nightjar, by the name a declaration's `origin` uses -> "module:class". Strings, so that
# reading declarations imports nothing heavy.
GENERATORS = {"synthetic_loans": "resources.source.synthetic:SyntheticSource"}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TABLE_FIELDS = {
    "origin",
    "partition_column",
    "partition_from",
    "key",
    "missing_day",
    "null_markers",
    "file_name",
    "complete_when",
    "owners",
}
_COLUMN_FIELDS = {"accepted_values", "min", "max"}
# dbt data_type spellings (any case) -> the warehouse type nightjar stores.
_TYPE_NAMES = {
    "VARCHAR": "VARCHAR",
    "TEXT": "VARCHAR",
    "STRING": "VARCHAR",
    "CHAR": "VARCHAR",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "DOUBLE": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "FLOAT": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "REAL": "DOUBLE",
    "NUMERIC": "DOUBLE",
    "DECIMAL": "DOUBLE",
    "INTEGER": "INTEGER",
    "INT": "INTEGER",
    "INT4": "INTEGER",
    "BIGINT": "BIGINT",
    "INT8": "BIGINT",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
}


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

    def fail(field: str, what: str) -> DeclarationError:
        return DeclarationError(f"{path}: table {label}: field '{field}': {what}")

    if not isinstance(declared, dict):
        raise fail("meta.nightjar", "must be a mapping of nightjar's settings")
    unknown = sorted(set(declared) - _TABLE_FIELDS)
    if unknown:
        raise fail(f"meta.nightjar.{unknown[0]}", f"unknown setting (known: {', '.join(sorted(_TABLE_FIELDS))})")
    for name in (node["schema"], node.get("identifier") or node["name"]):
        if not _IDENTIFIER.match(name):
            raise fail("schema/identifier", f"'{name}' is not a plain name (letters, digits, underscores)")
    columns = tuple(_column(c, fail) for c in node.get("columns", {}).values())
    if not columns:
        raise fail("columns", "a raw table needs its columns declared, each with a data_type")
    names = [c.name for c in columns]

    origin = declared.get("origin")
    if origin != LANDING and origin not in GENERATORS:
        raise fail("meta.nightjar.origin", f"{origin!r} is neither 'landing' nor a generator ({', '.join(GENERATORS)})")
    partition_column = declared.get("partition_column")
    if partition_column not in names:
        raise fail(
            "meta.nightjar.partition_column", f"{partition_column!r} is not a declared column ({', '.join(names)})"
        )
    if next(c for c in columns if c.name == partition_column).dtype != "DATE":
        raise fail("meta.nightjar.partition_column", f"column '{partition_column}' must have data_type date")
    partition_from = declared.get("partition_from", "column")
    if partition_from not in ("column", "file_name"):
        raise fail("meta.nightjar.partition_from", f"{partition_from!r} must be 'column' or 'file_name'")
    if partition_from == "file_name" and origin != LANDING:
        raise fail("meta.nightjar.partition_from", "'file_name' needs origin 'landing' (generators have no files)")
    key = declared.get("key", [])
    key = [key] if isinstance(key, str) else key
    if not isinstance(key, list) or any(k not in names for k in key) or len(set(key)) != len(key):
        raise fail("meta.nightjar.key", f"{key!r} must be a list of distinct declared columns ({', '.join(names)})")
    missing_day = declared.get("missing_day", "error")
    if missing_day not in ("error", "empty"):
        raise fail("meta.nightjar.missing_day", f"{missing_day!r} must be 'error' or 'empty'")
    markers = declared.get("null_markers", [])
    if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
        raise fail("meta.nightjar.null_markers", "must be a list of strings")
    file_name = declared.get("file_name", "{day}")
    if not isinstance(file_name, str) or file_name.count("{day}") != 1 or "/" in file_name:
        raise fail("meta.nightjar.file_name", f"{file_name!r} must contain '{{day}}' once and no '/'")
    complete_when = _complete_when(declared.get("complete_when"), origin, file_name, fail)
    owners = declared.get("owners", ["team:data-engineering"])
    return RawTable(
        source=node["source_name"],
        name=node["name"],
        schema=node["schema"],
        identifier=node.get("identifier") or node["name"],
        columns=columns,
        partition_column=partition_column,
        origin=origin,
        key=tuple(key),
        partition_from=partition_from,
        missing_day=missing_day,
        null_markers=tuple(markers),
        file_name=file_name,
        complete_when=complete_when,
        description=node.get("description") or "",
        declared_in=str(path),
        owners=tuple(owners),
    )


def _complete_when(value: Any, origin: str, file_name: str, fail) -> CompleteWhen:
    """``quiet`` | ``marker`` | ``rename`` | ``{quiet_seconds: <seconds>}`` | ``{marker: <name>}``; absent: quiet."""
    field = "meta.nightjar.complete_when"
    forms = (
        f"must be {QUIET!r} (default: {CompleteWhen().quiet_seconds:g} s), {MARKER!r}, {RENAME!r}, "
        "{quiet_seconds: <seconds, 0 or more>} or {marker: '<file name with {file} or {day}>'}"
    )
    if value is None:
        return CompleteWhen()
    if origin != LANDING:
        raise fail(field, "needs origin 'landing' (generators have no files)")
    if value in (QUIET, MARKER, RENAME):
        return CompleteWhen(rule=value)
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("quiet_seconds", "marker"):
        raise fail(field, f"{value!r} {forms}")
    ((setting, given),) = value.items()
    if setting == "quiet_seconds":
        if isinstance(given, bool) or not isinstance(given, int | float) or not 0 <= given < float("inf"):
            raise fail(f"{field}.quiet_seconds", f"{given!r} must be a number of seconds, 0 or more")
        return CompleteWhen(rule=QUIET, quiet_seconds=given)
    if not _marker_name_ok(given, file_name):
        raise fail(
            f"{field}.marker",
            f"{given!r} must be a file name with '{{file}}' (the data file's name) or '{{day}}', no other "
            "'{...}', no '/', and not the data file's own name",
        )
    return CompleteWhen(rule=MARKER, marker=given)


def _marker_name_ok(name: Any, file_name: str) -> bool:
    """A marker name names one file per day beside the data file, and never a data file itself."""
    if not isinstance(name, str) or "/" in name or not ("{file}" in name or "{day}" in name):
        return False
    day = "2026-03-01"
    data_files = [file_name.format(day=day) + suffix for suffix in (".csv", ".parquet")]
    try:
        resolved = {name.format(file=data_file, day=day) for data_file in data_files}
    except (KeyError, IndexError, ValueError, AttributeError):
        return False
    return not resolved & {*data_files, "", ".", ".."}


def _column(column: dict[str, Any], fail) -> Column:
    name = column["name"]
    if not _IDENTIFIER.match(name):
        raise fail(f"columns.{name}", "not a plain column name (letters, digits, underscores)")
    data_type = column.get("data_type")
    if not data_type:
        raise fail(f"columns.{name}.data_type", "missing: every raw column needs its warehouse type")
    dtype = _TYPE_NAMES.get(re.sub(r"\(.*\)$", "", str(data_type)).strip().upper())
    if dtype is None:
        raise fail(f"columns.{name}.data_type", f"{data_type!r} is not one of {', '.join(sorted(_TYPE_NAMES))}")
    meta = {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
    unknown = sorted(set(meta) - _COLUMN_FIELDS)
    if unknown:
        raise fail(f"columns.{name}.meta.{unknown[0]}", f"unknown rule (known: {', '.join(sorted(_COLUMN_FIELDS))})")
    accepted = meta.get("accepted_values", [])
    if not isinstance(accepted, list):
        raise fail(f"columns.{name}.meta.accepted_values", "must be a list")
    bounds = {}
    for bound in ("min", "max"):
        value = meta.get(bound)
        if value is not None and (
            dtype not in NUMERIC_TYPES or isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise fail(f"columns.{name}.meta.{bound}", f"{value!r}: a bound must be a number, on a numeric column")
        bounds[bound] = value
    not_null = any(c.get("type") == "not_null" for c in column.get("constraints") or [])
    return Column(
        name=name,
        dtype=dtype,
        nullable=not not_null,
        accepted_values=tuple(accepted),
        min=bounds["min"],
        max=bounds["max"],
        description=column.get("description") or "",
    )
