"""What a raw table is: its columns with warehouse types and rules, its key, its partition day and its origin.

Tables are not written here: they are declared in dbt source YAML (``dbt_project/models/staging/<domain>/
__sources.yml``) and read from the prepared manifest by ``resources.source.declarations``, so the landing
contract, the dbt sources and the warehouse tables come from one declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Warehouse types a raw column may have. Every source yields chunks with these pandas dtypes (nullable
# ``Int64`` / ``boolean`` when the column holds nulls); DATE and TIMESTAMP are tz-naive (TIMESTAMP in UTC).
WAREHOUSE_TYPES = ("VARCHAR", "DATE", "TIMESTAMP", "DOUBLE", "INTEGER", "BIGINT", "BOOLEAN")
PANDAS_DTYPES = {
    "VARCHAR": "object",
    "DATE": "datetime64[ns]",
    "TIMESTAMP": "datetime64[ns]",
    "DOUBLE": "float64",
    "INTEGER": "int64",
    "BIGINT": "int64",
    "BOOLEAN": "bool",
}
NUMERIC_TYPES = ("DOUBLE", "INTEGER", "BIGINT")

LANDING = "landing"  # origin: files dropped in the landing folder
MASK = "(sensitive)"  # shown in place of a sensitive column's value (``Column.sensitive``)

# When a landing file is complete (``complete_when``): see :class:`CompleteWhen`.
QUIET, MARKER, RENAME = "quiet", "marker", "rename"
DEFAULT_QUIET_SECONDS = 60
DEFAULT_MARKER = "{file}.done"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # one of WAREHOUSE_TYPES (predictions and audit tables may use others)
    nullable: bool = True
    accepted_values: tuple = ()  # empty: any value
    min: float | None = None
    max: float | None = None
    description: str = ""
    sensitive: bool = False  # its values are never shown or logged (declared ``meta.nightjar.sensitive: true``)


@dataclass(frozen=True)
class CompleteWhen:
    """When a landing table's file for a day is complete, so it may be read (a declaration's ``complete_when``).

    - ``quiet`` (default): its last modification is at least ``quiet_seconds`` old. A writer still appending keeps
      moving the modification time, so a file being written is never read; 0 reads a file as soon as it is there
      (for writers that move whole files in).
    - ``marker``: a marker file next to it, named by ``marker`` (``{file}`` is the data file's name, ``{day}`` the
      ISO day; default ``2026-03-01.csv.done``), exists and is not older than the file. The writer creates it last.
    - ``rename``: the writer writes under another name and renames the file to its final name when it is whole
      (an atomic rename), so the final name is complete as soon as it exists.

    Whatever the rule, a file that changes while it is read was not complete, and a day whose file is missing but
    an in-progress name of it is there (``*.tmp``, ``*.part``, ``.``-prefixed, ...) is not complete either.
    """

    rule: str = QUIET  # QUIET, MARKER or RENAME
    quiet_seconds: float = DEFAULT_QUIET_SECONDS  # rule QUIET
    marker: str = DEFAULT_MARKER  # rule MARKER

    def describe(self) -> str:
        """As a declaration says it, for messages."""
        if self.rule == QUIET:
            return f"complete_when: {{quiet_seconds: {self.quiet_seconds:g}}}"
        if self.rule == MARKER:
            return f"complete_when: {{marker: {self.marker!r}}}"
        return f"complete_when: {self.rule}"


@dataclass(frozen=True)
class RawTable:
    """One declared raw table. ``partition_from`` is ``column`` (the files carry the day in
    ``partition_column``) or ``file_name`` (nightjar fills ``partition_column`` from the file's day)."""

    source: str  # dbt source name
    name: str  # dbt source table name
    schema: str  # warehouse schema
    identifier: str  # warehouse table name
    columns: tuple[Column, ...]
    partition_column: str
    origin: str  # LANDING or a generator's name
    key: tuple[str, ...] = ()
    partition_from: str = "column"
    missing_day: str = "error"  # or "empty": a day without a file has no rows
    null_markers: tuple[str, ...] = ()  # CSV cells read as NULL besides the empty cell
    file_name: str = "{day}"  # landing file name without suffix; {day} is the ISO day
    complete_when: CompleteWhen = CompleteWhen()  # when a landing file is complete and may be read
    description: str = ""
    declared_in: str = ""  # the YAML file, for error messages
    owners: tuple[str, ...] = field(default=("team:data-engineering",))

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.identifier}"

    @property
    def label(self) -> str:
        """How messages name the table: ``source.table``."""
        return f"{self.source}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def file_columns(self) -> list[Column]:
        """The columns a file or generator must deliver (the partition column comes from the file name if so)."""
        if self.partition_from == "file_name":
            return [c for c in self.columns if c.name != self.partition_column]
        return list(self.columns)

    @property
    def sensitive_columns(self) -> frozenset[str]:
        """The columns whose values are never shown or logged."""
        return frozenset(c.name for c in self.columns if c.sensitive)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)
