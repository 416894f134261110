"""The pydantic models a raw table declaration is validated by: a dbt source node's columns, and its
``meta.nightjar`` settings (checked against those columns, given as validation context).

``resources.source.declarations`` reads the manifest, runs these models and turns their errors into messages that
name the YAML file, the table and the field; the models only say what is wrong with a value. A check that names a
field below the one it validates (a bound under a column's ``meta``, a setting under ``complete_when``) raises
:class:`Invalid` with that ``field``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator, model_validator

from resources.source.schema import LANDING, MARKER, NUMERIC_TYPES, QUIET, RENAME, CompleteWhen

# Generators shipped with nightjar, by the name a declaration's `origin` uses -> "module:class". Strings, so that
# reading declarations imports nothing heavy.
GENERATORS = {"synthetic_loans": "resources.source.synthetic:SyntheticSource"}

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# dbt data_type spellings (any case) -> the warehouse type nightjar stores.
TYPE_NAMES = {
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
_BOUND = "a bound must be a number, on a numeric column"


class Invalid(ValueError):
    """What is wrong with a value, about ``field`` under the one being validated (None: that one itself)."""

    def __init__(self, what: str, field: str | None = None):
        super().__init__(what)
        self.field = field


def _plain_name(name: str) -> str:
    if not IDENTIFIER.match(name):
        raise ValueError(f"'{name}' is not a plain name (letters, digits, underscores)")
    return name


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ColumnSettings(BaseModel):
    """A column's ``meta.nightjar``: what nightjar does with the column besides checking it.

    ``sensitive: true`` keeps the column's values out of everything nightjar shows or logs (Dagster metadata and
    logs, Evidently reports, MLflow examples, samples and tables) while it is stored, transformed and used as a
    feature as usual: see ``resources.source.sensitive``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitive: StrictBool = False


class ColumnRules(BaseModel):
    """A column's ``meta``: the values it may hold, and nightjar's settings under ``nightjar``. An unknown rule is an
    error (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted_values: list[Any] = []  # empty: any value
    min: int | float | None = None
    max: int | float | None = None
    nightjar: ColumnSettings = ColumnSettings()

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound_is_a_number(cls, value: Any) -> Any:
        if value is not None and not _number(value):
            raise ValueError(f"{value!r}: {_BOUND}")
        return value


class ColumnDeclaration(BaseModel):
    """One column of a dbt source node, as the manifest holds it (its other keys are dbt's, not read here)."""

    model_config = ConfigDict(frozen=True)

    name: str
    data_type: str | None = Field(None, validate_default=True)  # validated: the warehouse type
    constraints: list[dict[str, Any]] = []
    description: str | None = None
    meta: ColumnRules = ColumnRules()

    @model_validator(mode="before")
    @classmethod
    def _merged_meta(cls, data: Any) -> Any:
        """The rules from ``meta`` and ``config.meta`` (dbt writes both; ``config.meta`` wins)."""
        if not isinstance(data, dict):
            return data
        config_meta = (data.get("config") or {}).get("meta") or {}
        return {**data, "meta": {**(data.get("meta") or {}), **config_meta}}

    @field_validator("data_type")
    @classmethod
    def _warehouse_type(cls, data_type: str | None) -> str:
        if not data_type:
            raise ValueError("missing: every raw column needs its warehouse type")
        dtype = TYPE_NAMES.get(re.sub(r"\(.*\)$", "", data_type).strip().upper())
        if dtype is None:
            raise ValueError(f"{data_type!r} is not one of {', '.join(sorted(TYPE_NAMES))}")
        return dtype

    @field_validator("meta")
    @classmethod
    def _bounds_on_a_numeric_column(cls, meta: ColumnRules, info: ValidationInfo) -> ColumnRules:
        dtype = info.data.get("data_type")  # absent when data_type failed: that error is enough
        for bound in ("min", "max"):
            value = getattr(meta, bound)
            if dtype is not None and value is not None and dtype not in NUMERIC_TYPES:
                raise Invalid(f"{value!r}: {_BOUND}", field=bound)
        return meta

    @model_validator(mode="after")
    def _plain_column_name(self) -> ColumnDeclaration:
        if not IDENTIFIER.match(self.name):
            raise ValueError("not a plain column name (letters, digits, underscores)")
        return self

    @property
    def nullable(self) -> bool:
        return not any(c.get("type") == "not_null" for c in self.constraints)


class SourceNode(BaseModel):
    """Where a declared table is stored and its columns, from its dbt source node."""

    model_config = ConfigDict(frozen=True)

    schema_name: str = Field(alias="schema")
    identifier: str
    columns: dict[str, ColumnDeclaration] = Field({}, validate_default=True)

    @field_validator("schema_name", "identifier")
    @classmethod
    def _plain(cls, name: str) -> str:
        return _plain_name(name)

    @field_validator("columns")
    @classmethod
    def _some_columns(cls, columns: dict[str, ColumnDeclaration]) -> dict[str, ColumnDeclaration]:
        if not columns:
            raise ValueError("a raw table needs its columns declared, each with a data_type")
        return columns


class TableSettings(BaseModel):
    """A table's ``meta.nightjar`` block (see ``resources.source.declarations``). Validated with the context
    ``{"columns": {name: warehouse type}}``, or ``{"columns": None}`` when the columns themselves are wrong (then
    what refers to them is not checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: str | None = Field(None, validate_default=True)
    partition_column: str | None = Field(None, validate_default=True)
    partition_from: Literal["column", "file_name"] = "column"
    key: list[str] = []
    missing_day: Literal["error", "empty"] = "error"
    null_markers: list[str] = []  # CSV cells read as NULL besides the empty cell
    file_name: str = "{day}"
    complete_when: CompleteWhen = CompleteWhen()
    owners: list[str] = ["team:data-engineering"]

    @field_validator("origin")
    @classmethod
    def _known_origin(cls, origin: str | None) -> str:
        if origin != LANDING and origin not in GENERATORS:
            raise ValueError(f"{origin!r} is neither 'landing' nor a generator ({', '.join(GENERATORS)})")
        return origin

    @field_validator("partition_column")
    @classmethod
    def _a_date_column(cls, name: str | None, info: ValidationInfo) -> str | None:
        columns = info.context["columns"]
        if columns is not None and name not in columns:
            raise ValueError(f"{name!r} is not a declared column ({', '.join(columns)})")
        if columns is not None and columns[name] != "DATE":
            raise ValueError(f"column '{name}' must have data_type date")
        return name

    @field_validator("partition_from")
    @classmethod
    def _file_names_need_files(cls, partition_from: str, info: ValidationInfo) -> str:
        if partition_from == "file_name" and info.data.get("origin", LANDING) != LANDING:
            raise ValueError("'file_name' needs origin 'landing' (generators have no files)")
        return partition_from

    @field_validator("key", mode="before")
    @classmethod
    def _distinct_declared_columns(cls, key: Any, info: ValidationInfo) -> Any:
        key = [key] if isinstance(key, str) else key
        columns = info.context["columns"]
        if (
            not isinstance(key, list)
            or len(set(map(str, key))) != len(key)
            or (columns is not None and any(k not in columns for k in key))
        ):
            names = f" ({', '.join(columns)})" if columns is not None else ""
            raise ValueError(f"{key!r} must be a list of distinct declared columns{names}")
        return key

    @field_validator("file_name")
    @classmethod
    def _one_day_no_folder(cls, file_name: str) -> str:
        if file_name.count("{day}") != 1 or "/" in file_name:
            raise ValueError(f"{file_name!r} must contain '{{day}}' once and no '/'")
        return file_name

    @field_validator("complete_when", mode="plain")
    @classmethod
    def _complete_when(cls, value: Any, info: ValidationInfo) -> CompleteWhen:
        """``quiet`` | ``marker`` | ``rename`` | ``{quiet_seconds: <seconds>}`` | ``{marker: <name>}``; absent or
        null: quiet."""
        if value is None:
            return CompleteWhen()
        if info.data.get("origin", LANDING) != LANDING:
            raise ValueError("needs origin 'landing' (generators have no files)")
        if value in (QUIET, MARKER, RENAME):
            return CompleteWhen(rule=value)
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("quiet_seconds", "marker"):
            raise ValueError(
                f"{value!r} must be {QUIET!r} (default: {CompleteWhen().quiet_seconds:g} s), {MARKER!r}, "
                f"{RENAME!r}, {{quiet_seconds: <seconds, 0 or more>}} or "
                "{marker: '<file name with {file} or {day}>'}"
            )
        ((setting, given),) = value.items()
        if setting == "quiet_seconds":
            if not _number(given) or not 0 <= given < float("inf"):
                raise Invalid(f"{given!r} must be a number of seconds, 0 or more", field=setting)
            return CompleteWhen(rule=QUIET, quiet_seconds=given)
        if not _marker_name_ok(given, info.data.get("file_name", "{day}")):
            raise Invalid(
                f"{given!r} must be a file name with '{{file}}' (the data file's name) or '{{day}}', no other "
                "'{...}', no '/', and not the data file's own name",
                field=setting,
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
