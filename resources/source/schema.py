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


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # one of WAREHOUSE_TYPES (predictions and audit tables may use others)
    nullable: bool = True
    accepted_values: tuple = ()  # empty: any value
    min: float | None = None
    max: float | None = None
    description: str = ""


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

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)
