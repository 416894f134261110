"""The Spark warehouse: tables in a Spark catalog, reached through a Spark Connect server (``NIGHTJAR_ENGINE=spark``).

Spark has no transactions and no DELETE on file tables, so a window is replaced the way dbt-spark's
``insert_overwrite`` does it: every table with a window column is stored in partitions of that column (Parquet, in
the catalog of the server), new rows overwrite the partitions they fall in (dynamic partition overwrite: other days
are untouched, and the files of a day are swapped only once its new ones are written), and days of the window
left with no row are dropped last. A failure before the overwrite leaves every stored day as it was; one between
the overwrite and the drop leaves a day that should now be empty as it was, which the re-run mends.

Work runs where the data is: audits and derived tables are SQL on the server, and ``replace_window_mapped``
(scoring) runs its Python function on the server's executors with ``mapInPandas``, so no day travels through this
process. The function's code travels with it: the project's packages are added to the session as a Python
artifact (``_ship_code``), which works the same on a cluster whose executors have the project's requirements.

The session is this resource's own (``create``, not the process's shared one): its SQL settings (double-quoted
identifiers, as in DuckDB and Postgres; UTC; dynamic overwrite) do not leak into a user's session, nor theirs in.
"""

from __future__ import annotations

import io
import itertools
import re
import socket
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import Field, PrivateAttr

from resources.source.schema import Column
from resources.warehouse.base import (
    NotInWarehouse,
    Warehouse,
    _check_table,
    _peek_columns,
    _quoted,
    columns_from_frame,
)
from resources.warehouse.sql import day_window

if TYPE_CHECKING:
    import pandas as pd

SESSION_CONF = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",  # "column" names a column, as in DuckDB and Postgres
    "spark.sql.session.timeZone": "UTC",  # naive timestamps round-trip unchanged
    "spark.sql.sources.partitionOverwriteMode": "dynamic",  # an overwrite replaces only the days it writes
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # The Hive metastore cannot parse a partition filter on a column named with a leading "_" (the staging day):
    # such a filter then lists the table's partitions and filters them in Spark.
    "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
}
_SPARK_TYPES = {"VARCHAR": "STRING", "TEXT": "STRING", "INTEGER": "INT"}
_SHIPPED_PACKAGES = ("assets", "resources")  # what a function run on the executors imports (scoring)
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_STAGING_SCHEMA = "nightjar_staging"
_READ_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class SparkUnreachable(ConnectionError):
    """No Spark Connect server answers at the configured address."""


class SparkWarehouse(Warehouse):
    """Tables in the catalog of a Spark Connect server: a local one (``make spark-up``) or a cluster's endpoint."""

    remote: str = Field(description="The Spark Connect address, sc://host:port (NIGHTJAR_SPARK_REMOTE).")
    _spark: Any = PrivateAttr(default=None)
    _shipped: bool = PrivateAttr(default=False)

    # --- the session ----------------------------------------------------------------------------------------------

    def spark(self):
        """This resource's own Spark Connect session, opened on first use."""
        if self._spark is None:
            _check_reachable(self.remote)
            from pyspark.sql import SparkSession

            session = SparkSession.builder.remote(self.remote).create()
            for key, value in SESSION_CONF.items():
                session.conf.set(key, value)
            self._spark = session
        return self._spark

    def teardown_after_execution(self, context) -> None:
        if self._spark is not None:
            self._spark.stop()
            self._spark = None

    def _ship_code(self) -> None:
        """Add the project's packages to the session, once: the executors import what a mapped function names."""
        if self._shipped:
            return
        import tempfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for package in _SHIPPED_PACKAGES:
                for path in sorted((_PROJECT_ROOT / package).rglob("*.py")):
                    archive.write(path, path.relative_to(_PROJECT_ROOT).as_posix())
        with tempfile.TemporaryDirectory() as folder:
            shipped = Path(folder) / "nightjar_code.zip"
            shipped.write_bytes(buffer.getvalue())
            self.spark().addArtifacts(str(shipped), pyfile=True)
        self._shipped = True

    # --- tables ---------------------------------------------------------------------------------------------------

    def _sql_type(self, dtype: str) -> str:
        return _SPARK_TYPES.get(dtype.upper(), dtype.upper())

    def _partition_of(self, table: str) -> list[str]:
        """The table's partition columns (empty when it is not partitioned)."""
        spark = self.spark()
        return [c.name for c in spark.catalog.listColumns(table) if c.isPartition]

    def _create(self, table: str, columns: Sequence[Column], window_column: str | None) -> None:
        spark = self.spark()
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        cols = ", ".join(f'"{c.name}" {self._sql_type(c.dtype)}' for c in columns)
        partitioned = f' PARTITIONED BY ("{window_column}")' if window_column else ""
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({cols}) USING parquet{partitioned}")

    def _ensure(self, table: str, columns: Sequence[Column], window_column: str | None = None) -> None:
        """Create ``table`` partitioned by ``window_column`` if it is not there; add declared columns it lacks."""
        spark = self.spark()
        if not spark.catalog.tableExists(table):
            self._create(table, columns, window_column if window_column in {c.name for c in columns} else None)
            return
        present = set(spark.table(table).columns)
        missing = [c for c in columns if c.name not in present]
        if missing:
            added = ", ".join(f'"{c.name}" {self._sql_type(c.dtype)}' for c in missing)
            spark.sql(f"ALTER TABLE {table} ADD COLUMNS ({added})")

    def _conformed(self, table: str, frame):
        """``frame`` (a Spark DataFrame) with the table's columns in the table's order and types; a column the
        frame lacks is NULL."""
        return _cast(frame, [(f.name, f.dataType) for f in self.spark().table(table).schema.fields])

    def _overwrite_window(
        self, table: str, date_column: str, start: date, end: date, rows, written_days: set[str]
    ) -> None:
        """Overwrite the window of ``table`` by ``rows`` (a Spark DataFrame, or None for no rows), whose days are
        ``written_days`` (yyyy-mm-dd): their partitions are replaced, then the window's other stored days dropped."""
        spark = self.spark()
        spark.catalog.refreshTable(table)  # another session (dbt, another step) may have rewritten its files
        if date_column not in self._partition_of(table):
            self._rewrite_window(table, date_column, start, end, rows)
            return
        if rows is not None:
            self._conformed(table, rows).write.insertInto(table, overwrite=True)
        stale = [day for day in self._stored_days(table, date_column, start, end) if day not in written_days]
        for day in stale:
            spark.sql(f"ALTER TABLE {table} DROP IF EXISTS PARTITION (\"{date_column}\" = DATE '{day}')")

    def _rewrite_window(self, table: str, date_column: str, start: date, end: date, rows) -> None:
        """A table not partitioned by ``date_column`` (made by an append): rewrite it whole through a copy."""
        spark = self.spark()
        kept = spark.table(table).where(f"NOT ({self._window_sql(date_column, start, end)})")
        whole = kept if rows is None else kept.unionByName(self._conformed(table, rows))
        copy = _staging_name(table, "rewrite")
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_STAGING_SCHEMA}")
        whole.write.mode("overwrite").saveAsTable(copy)
        try:
            spark.sql(f"INSERT OVERWRITE TABLE {table} SELECT * FROM {copy}")
        finally:
            spark.sql(f"DROP TABLE IF EXISTS {copy}")

    def _stored_days(self, table: str, date_column: str, start: date, end: date) -> list[str]:
        """The partition days of ``table`` inside [start, end), as 'YYYY-MM-DD'."""
        days = []
        for (spec,) in self.spark().sql(f"SHOW PARTITIONS {table}").collect():
            for part in spec.split("/"):
                name, _, value = part.partition("=")
                inside = start.isoformat() <= value[:10] < end.isoformat()
                if name == date_column and value != "__HIVE_DEFAULT_PARTITION__" and inside:
                    days.append(value[:10])
        return days

    def _window_sql(self, date_column: str, start: date, end: date) -> str:
        return day_window(f'"{date_column}"', start, end)

    def _days_in(self, frame, date_column: str) -> set[str]:
        return {str(row[0])[:10] for row in frame.select(f"`{date_column}`").distinct().collect() if row[0]}

    def _rows_and_days(self, frame, date_column: str) -> tuple[int, set[str]]:
        """How many rows ``frame`` holds and the days they fall in, in one evaluation of it (a query's join is
        then run twice, counted and written, not three times)."""
        counted = frame.groupBy(date_column).count().collect()
        return sum(int(row[1]) for row in counted), {str(row[0])[:10] for row in counted if row[0]}

    # --- the interface --------------------------------------------------------------------------------------------

    def replace_window(self, table, date_column, start, end, chunks, columns=None, keep=None):
        """Chunks are checked against the declared columns (NOT NULL) as they come; more than one goes to a
        staging table first. The target is made and its window overwritten only once every chunk was read and
        written: a source that fails half-way, or a refused chunk, leaves the table (or its absence) as it was.
        ``keep``: the window's rows meeting it are read first and written back with the chunks (a day's
        partition is overwritten whole; without transactions, a row added meanwhile is not seen)."""
        _check_table(table)
        kept_rows = 0  # written back, not counted as written
        if keep is not None and self.table_exists(table):
            self.spark().catalog.refreshTable(table)
            kept = _pandas(
                self.spark()
                .table(table)
                .where(f"({self._window_sql(date_column, start, end)}) AND coalesce(({keep}), FALSE)")
            )
            if not kept.empty:
                chunks, kept_rows = itertools.chain([kept], chunks), len(kept)
        chunks, columns = _peek_columns(table, chunks, columns)
        if columns is None:  # no chunk and no declared columns: nothing to create or replace
            if self.table_exists(table):
                self._overwrite_window(table, date_column, start, end, None, set())
            return 0
        spark = self.spark()
        fields = [(c.name, self._sql_type(c.dtype)) for c in columns]
        written, days, staged, rows = 0, set(), None, None
        try:
            for chunk in (c for c in chunks if not c.empty):
                _check_not_null(table, columns, chunk)
                days |= {str(d)[:10] for d in chunk[date_column].dropna().unique()}
                written += len(chunk)
                part = _cast(spark.createDataFrame(_spark_ready(chunk)), fields)
                if rows is None:  # the first: kept as it is until a second one comes
                    rows = part
                    continue
                if staged is None:
                    staged = _staging_name(table, "chunks")
                    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_STAGING_SCHEMA}")
                    rows.write.mode("overwrite").saveAsTable(staged)
                part.write.mode("append").saveAsTable(staged)
            if staged:
                rows = spark.table(staged)
            self._ensure(table, columns, date_column)
            self._overwrite_window(table, date_column, start, end, rows, days)
        finally:
            if staged:
                spark.sql(f"DROP TABLE IF EXISTS {staged}")
        return written - kept_rows

    def replace_window_from(self, table, date_column, start, end, source_table, where="TRUE", columns=None):
        _check_table(table), _check_table(source_table)
        spark = self.spark()
        if not spark.catalog.tableExists(source_table):
            raise NotInWarehouse(f"table {source_table} does not exist in warehouse {self.describe()}")
        spark.catalog.refreshTable(source_table)
        selected = "*" if columns is None else _quoted(columns)
        rows = spark.sql(
            f"SELECT {selected} FROM {source_table} WHERE {self._window_sql(date_column, start, end)} AND ({where})"
        )
        if not spark.catalog.tableExists(table):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            spark.sql(
                f'CREATE TABLE {table} USING parquet PARTITIONED BY ("{date_column}") AS '
                f"SELECT {selected} FROM {source_table} WHERE FALSE"
            )
        written, days = self._rows_and_days(rows, date_column)
        self._overwrite_window(table, date_column, start, end, rows, days)
        return written

    def replace_window_query(self, table, date_column, start, end, select, columns):
        _check_table(table)
        spark = self.spark()
        self._refresh_read(select)
        rows = spark.sql(select).toDF(*[c.name for c in columns])
        self._ensure(table, columns, date_column)
        written, days = self._rows_and_days(rows, date_column)
        self._overwrite_window(table, date_column, start, end, rows, days)
        return written

    def _refresh_read(self, sql: str) -> None:
        """Refresh the tables ``sql`` reads: another session (dbt, a step) may have rewritten their files."""
        spark = self.spark()
        for table in set(_READ_TABLE.findall(sql)):
            if spark.catalog.tableExists(table):
                spark.catalog.refreshTable(table)

    def replace_window_mapped(
        self,
        table: str,
        date_column: str,
        start: date,
        end: date,
        source_table: str,
        transform: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]],
        columns: Sequence[Column],
        chunk_rows: int = 100_000,
    ) -> int:
        """``transform`` runs on the executors (``mapInPandas``), over Arrow batches of at most ``chunk_rows``."""
        _check_table(table), _check_table(source_table)
        spark = self.spark()
        if not spark.catalog.tableExists(source_table):
            raise NotInWarehouse(f"table {source_table} does not exist in warehouse {self.describe()}")
        self._ship_code()
        self._ensure(table, columns, date_column)
        spark.catalog.refreshTable(source_table)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_rows))
        out = self._mapped_schema(columns)
        source = spark.table(source_table).where(self._window_sql(date_column, start, end))
        staged = _staging_name(table, "mapped")
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_STAGING_SCHEMA}")
        try:  # written once, then counted and published: the transform is not run twice
            self._conformed(table, source.mapInPandas(transform, out)).write.mode("overwrite").saveAsTable(staged)
            rows = spark.table(staged)
            written, days = self._rows_and_days(rows, date_column)
            self._overwrite_window(table, date_column, start, end, rows, days)
        finally:
            spark.sql(f"DROP TABLE IF EXISTS {staged}")
        return written

    def replace_windows_mapped(self, date_column, start, end, source_table, targets, chunk_rows=100_000):
        """Each target's transform on the executors, one table after the other (:meth:`replace_window_mapped`):
        the server reads the source window per table where the data is, and no chunk passes through this
        process."""
        return [
            self.replace_window_mapped(
                target.table, date_column, start, end, source_table, target.transform, target.columns, chunk_rows
            )
            for target in targets
        ]

    def append_produced(self, table, inputs, produce, columns, chunk_rows=100_000):
        """One task per item on the executors (``mapInPandas`` over ``range``): items are read in parallel where
        the data is, and what ``produce`` yields goes from the executors to the table."""
        _check_table(table)
        items = list(inputs)
        if not items:
            return
        spark = self.spark()
        self._ship_code()
        self._ensure(table, columns)
        produced = spark.range(0, len(items), 1, len(items)).mapInPandas(
            _Produced(items, produce, [c.name for c in columns]), self._mapped_schema(columns)
        )
        self._conformed(table, produced).write.insertInto(table)

    def _mapped_schema(self, columns: Sequence[Column]) -> str:
        """The DDL of what a mapped function yields: DATE leaves pandas as datetime64, so it is declared TIMESTAMP
        on the way out and cast back by ``_conformed``."""
        return ", ".join(f"`{c.name}` {'TIMESTAMP' if c.dtype == 'DATE' else self._sql_type(c.dtype)}" for c in columns)

    def ensure_table(self, table, columns, window_column=None):
        self._ensure(_check_table(table), columns, window_column)

    def drop_table(self, table):
        self.spark().sql(f"DROP TABLE IF EXISTS {_check_table(table)}")

    def append(self, table, frame):
        _check_table(table)
        self._ensure(table, columns_from_frame(frame))
        rows = self.spark().createDataFrame(_spark_ready(frame))
        self._conformed(table, rows).write.insertInto(table)

    def table_exists(self, table):
        return bool(self.spark().catalog.tableExists(_check_table(table)))

    def column_names(self, table: str) -> list[str]:
        if not self.table_exists(table):
            raise NotInWarehouse(f"table {table} does not exist in warehouse {self.describe()}")
        return list(self.spark().table(table).columns)

    def iter_window(self, table, date_column, start, end, chunk_rows=100_000):
        """Rows of the window, at most a day (or ``chunk_rows``, when a day is smaller) in this process at once."""
        if not self.table_exists(table):
            raise NotInWarehouse(f"table {table} does not exist in warehouse {self.describe()}")
        spark = self.spark()
        spark.catalog.refreshTable(table)
        window = spark.table(table).where(self._window_sql(date_column, start, end))
        if window.count() <= chunk_rows:
            frame = _pandas(window.orderBy(window.columns[0]))
            if not frame.empty:
                yield frame
            return
        for stored in self._days_with_rows(table, date_column, start, end):  # never every calendar day of a window
            day = date.fromisoformat(stored)
            following = day + timedelta(days=1)
            frame = _pandas(
                spark.table(table).where(self._window_sql(date_column, day, following)).orderBy(window.columns[0])
            )
            for first in range(0, len(frame), chunk_rows):
                yield frame.iloc[first : first + chunk_rows].reset_index(drop=True)

    def _days_with_rows(self, table: str, date_column: str, start: date, end: date) -> list[str]:
        """The days of [start, end) that hold rows, ascending: the partitions where the table is partitioned by
        ``date_column`` (metadata only), else its distinct days."""
        if date_column in self._partition_of(table):
            return sorted(self._stored_days(table, date_column, start, end))
        rows = self.spark().table(table).where(self._window_sql(date_column, start, end))
        return sorted(self._days_in(rows, date_column))

    def query(self, sql):
        self._refresh_read(sql)
        return _pandas(self.spark().sql(sql))

    def describe(self) -> str:
        return f"spark:{self.remote}"


class _Produced:
    """Run on an executor by ``append_produced``: for each item index of its batches, the frames ``produce``
    yields, with every declared column (NULL where a frame has none) in order, ready for Arrow."""

    def __init__(self, items: Sequence[Any], produce: Callable[[Any], Iterator[pd.DataFrame]], names: list[str]):
        self.items, self.produce, self.names = list(items), produce, names

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for index in batch["id"]:
                for frame in self.produce(self.items[int(index)]):
                    if not frame.empty:
                        yield self._complete(frame)

    def _complete(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        nulls = pd.Series([None] * len(frame), index=frame.index, dtype=object)  # Arrow casts them to any type
        return _spark_ready(pd.DataFrame({n: frame.get(n, nulls) for n in self.names}), typed=True)


def _staging_name(table: str, purpose: str) -> str:
    import uuid

    return f"{_STAGING_SCHEMA}.{table.replace('.', '__')}__{purpose}_{uuid.uuid4().hex[:12]}"


def _cast(frame, fields: Sequence[tuple[str, Any]]):
    """``frame`` with exactly ``fields`` (name, Spark type), in their order; a column it lacks is NULL."""
    from pyspark.sql import functions as F

    present = set(frame.columns)
    return frame.select(
        *[(F.col(f"`{name}`") if name in present else F.lit(None)).cast(kind).alias(name) for name, kind in fields]
    )


def _check_not_null(table: str, columns: Sequence[Column], chunk: pd.DataFrame) -> None:
    """Spark's file tables do not enforce NOT NULL: a declared one is checked here, before anything is written."""
    for column in columns:
        if not column.nullable and column.name in chunk and chunk[column.name].isna().any():
            raise ValueError(
                f"{table}: column {column.name!r} is declared NOT NULL and {int(chunk[column.name].isna().sum())} "
                "row(s) to be written have none; nothing was written"
            )


def _spark_ready(frame: pd.DataFrame, typed: bool = False) -> pd.DataFrame:
    """A frame Spark's Arrow conversion takes: object columns of dates become datetimes (cast back to DATE by the
    table's type); all-None object columns become strings, unless the frame goes out under a declared schema
    (``typed``), where Arrow casts them to the declared type."""
    import pandas as pd

    ready = {}
    for name, column in frame.items():
        if column.dtype == object:
            sample = column.dropna()
            if not sample.empty and isinstance(sample.iloc[0], date):
                column = pd.to_datetime(column)
            elif sample.empty and not typed:
                column = column.astype("string")
        ready[name] = column
    return pd.DataFrame(ready)


def _pandas(frame) -> pd.DataFrame:
    """``toPandas``, with DATE columns as datetime64 (as DuckDB and Postgres hand them out)."""
    import pandas as pd
    from pyspark.sql.types import DateType

    result = frame.toPandas()
    for field in frame.schema.fields:
        if isinstance(field.dataType, DateType) and field.name in result:
            result[field.name] = pd.to_datetime(result[field.name])
    return result


def _check_reachable(remote: str) -> None:
    """Fail at once, naming the address, when nothing listens there (the client alone retries for minutes)."""
    parsed = urlparse(remote)
    if parsed.scheme != "sc" or not parsed.hostname:
        raise ValueError(f"NIGHTJAR_SPARK_REMOTE={remote!r} must be a Spark Connect address, sc://host:port")
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 15002), timeout=10):
            pass
    except OSError as error:
        raise SparkUnreachable(
            f"no Spark Connect server answers at {remote} ({error}): start the local one with `make spark-up`, "
            "or point NIGHTJAR_SPARK_REMOTE at your cluster's Spark Connect endpoint"
        ) from error
