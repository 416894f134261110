"""The warehouse interface, its errors and the writes both engines share.

Every write of a partition is one transaction that deletes the window and inserts the new rows, so re-running a
day replaces it and a failure half-way leaves the previous rows untouched. That transaction is written once, here,
in terms of a few engine hooks: ``_transaction`` (a cursor-like object inside one transaction), ``_PARAM`` (the
parameter placeholder), ``_insert_chunk`` (DuckDB: INSERT from a registered frame; Postgres: COPY), ``_lock``
(writers of a table take turns; a no-op where the engine already allows one writer), ``_exists`` (is the table
there, inside a write), ``_sql_type`` (warehouse type -> engine type) and ``_rowcount`` (rows the last INSERT
wrote).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg

from resources.source.schema import Column
from resources.warehouse.mapped import MappedTable, mapped_ahead

if TYPE_CHECKING:  # pandas is imported where frames are made: this module is imported when definitions load
    import pandas as pd

WAREHOUSE_POOL = "warehouse"


class NotInWarehouse(LookupError):
    """The warehouse, or a table in it, is not there yet: materializing what writes it creates it, asking again
    does not (assets turn it into a failure that is never retried)."""


class WarehouseFileMissing(NotInWarehouse, FileNotFoundError):
    """The DuckDB file does not exist yet (a ``FileNotFoundError`` too, as it always was)."""


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")

_PANDAS_TO_SQL = (
    ("bool", "BOOLEAN"),
    ("int", "BIGINT"),
    ("float", "DOUBLE"),
    ("datetime", "TIMESTAMP"),
)


def _check_table(table: str) -> str:
    if not _IDENTIFIER.match(table):
        raise ValueError(f"table name {table!r} must be schema-qualified, e.g. 'raw.applications'")
    return table


def columns_from_frame(frame: pd.DataFrame) -> list[Column]:
    """Warehouse column types for a DataFrame whose table has no declared schema (predictions, audit rows)."""
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = str(dtype).lower()
        sql_type = next((sql for prefix, sql in _PANDAS_TO_SQL if kind.startswith(prefix)), "VARCHAR")
        columns.append(Column(str(name), sql_type))
    return columns


def _quoted(names: Iterable[Any]) -> str:
    """``"a", "b"``: column names as an SQL list."""
    return ", ".join(f'"{name}"' for name in names)


def _missing(columns: Sequence[Column], present: set[str]) -> list[Column]:
    """Declared columns a table made by an earlier version lacks: added (nullable, so stored rows stay valid)
    instead of failing the write; columns the declaration dropped stay, NULL in new rows."""
    return [c for c in columns if c.name not in present]


def _column_lists(columns: Sequence[str] | None) -> tuple[str, str]:
    """The ``(a, b)`` insert list and ``a, b`` select list for ``columns``; all columns when None."""
    if columns is None:
        return "", "*"
    quoted = _quoted(columns)
    return f"({quoted})", quoted


def _peek_columns(
    table: str, chunks: Iterable[pd.DataFrame], columns: Sequence[Column] | None
) -> tuple[Iterator[pd.DataFrame], Sequence[Column] | None]:
    """Take the first chunk before any transaction opens: a source that validates its input fails here, so a bad
    file never touches the table; and a table with no declared schema gets its columns from that chunk."""
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        return iter(()), columns
    if columns is None:
        columns = columns_from_frame(first)
    return itertools.chain([first], iterator), columns


def _joined(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Non-empty ``frames``, those with the same columns joined up to about ``rows`` rows (one insert per small
    frame costs more than its rows: a backfill's small days go in together). Rows of a table have no order, so
    frames of other columns (status rows) wait in their own group."""
    import pandas as pd

    pending: dict[tuple, list[pd.DataFrame]] = {}

    def flush(columns: tuple) -> pd.DataFrame:
        group = pending.pop(columns)
        return group[0] if len(group) == 1 else pd.concat(group, ignore_index=True)

    for frame in frames:
        if frame.empty:
            continue
        columns = tuple(frame.columns)
        pending.setdefault(columns, []).append(frame)
        if sum(len(f) for f in pending[columns]) >= rows:
            yield flush(columns)
    for columns in list(pending):
        yield flush(columns)


class Warehouse(dg.ConfigurableResource):
    """Interface shared by the DuckDB and Postgres warehouses; the writes are implemented here, once."""

    _PARAM: ClassVar[str] = "?"  # the engine's parameter placeholder

    # --- engine hooks ---------------------------------------------------------------------------------------------

    def _transaction(self, must_exist: bool = False) -> AbstractContextManager[Any]:
        """A context manager yielding a cursor-like object (``execute``, ``fetchone``, ``fetchall``) inside one
        transaction: committed when the block ends, rolled back when it raises. ``must_exist``: where the warehouse
        is a file, raise ``WarehouseFileMissing`` instead of creating it."""
        raise NotImplementedError

    def _insert_chunk(self, cur: Any, table: str, chunk: pd.DataFrame) -> None:
        """Insert the rows of ``chunk`` (its columns, by name) into ``table``."""
        raise NotImplementedError

    def _lock(self, cur: Any, table: str) -> None:
        """Make writers of ``table`` take turns until commit (a no-op where the engine already does)."""

    def _sql_type(self, dtype: str) -> str:
        """The engine's name of a warehouse column type."""
        return dtype

    def _exists(self, cur: Any, table: str) -> bool:
        """Whether ``table`` is there, inside a write."""
        return self._listed(cur, table)

    def _rowcount(self, cur: Any) -> int:
        """Rows the INSERT just executed on ``cur`` wrote."""
        return cur.rowcount

    def _index_window(self, cur: Any, table: str, date_column: str) -> None:
        """Make reads and deletes of a window of ``table`` find its rows without scanning the whole table (a no-op
        where the engine does so by itself: DuckDB's zone maps, Spark's day partitions)."""

    def _with_params(self, sql: str) -> str:
        """``sql`` (a caller's condition) made safe to run with parameters: where the placeholder is ``%s``, a
        literal ``%`` (LIKE 'landing%') must be written ``%%``."""
        return sql.replace("%", "%%") if self._PARAM == "%s" else sql

    # --- shared SQL -----------------------------------------------------------------------------------------------

    def _window(self, date_column: str) -> str:
        return f'"{date_column}" >= {self._PARAM} AND "{date_column}" < {self._PARAM}'

    def _delete_window(
        self, cur: Any, table: str, date_column: str, start: date, end: date, keep: str | None = None
    ) -> None:
        """Delete the rows of [start, end) of ``table`` (an existing one), but those meeting ``keep``."""
        self._index_window(cur, table, date_column)
        kept = "" if keep is None else f" AND NOT coalesce(({self._with_params(keep)}), FALSE)"
        cur.execute(f"DELETE FROM {table} WHERE {self._window(date_column)}{kept}", [start, end])

    def _listed(self, cur: Any, table: str) -> bool:
        """Whether ``information_schema`` lists ``table``."""
        cur.execute(
            f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {self._PARAM} "
            f"AND table_name = {self._PARAM}",
            table.split("."),
        )
        found = cur.fetchone()
        return bool(found and found[0])

    def _ensure_table(self, cur: Any, table: str, columns: Sequence[Column]) -> None:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        cols = ", ".join(f'"{c.name}" {self._sql_type(c.dtype)}{"" if c.nullable else " NOT NULL"}' for c in columns)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        cur.execute(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = {self._PARAM} "
            f"AND table_name = {self._PARAM}",
            table.split("."),
        )
        present = {row[0] for row in cur.fetchall()}
        for column in _missing(columns, present):
            cur.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {self._sql_type(column.dtype)}')

    # --- the interface --------------------------------------------------------------------------------------------

    def replace_window(
        self,
        table: str,
        date_column: str,
        start: date,
        end: date,
        chunks: Iterable[pd.DataFrame],
        columns: Sequence[Column] | None = None,
        keep: str | None = None,
    ) -> int:
        """Atomically replace the rows with ``start <= date_column < end`` by ``chunks``; returns rows written.
        ``keep``: an SQL condition; the window's rows that meet it stay (read inside the write, so a row another
        writer adds meanwhile is kept too: the reviews the UI recorded, when a landed day of reviews is replaced)."""
        chunks, columns = _peek_columns(_check_table(table), chunks, columns)
        written = 0
        with self._transaction() as cur:
            self._lock(cur, table)
            if columns is not None:
                self._ensure_table(cur, table, columns)
            if self._exists(cur, table):
                self._delete_window(cur, table, date_column, start, end, keep)
            for chunk in chunks:
                if not chunk.empty:
                    self._insert_chunk(cur, table, chunk)
                    written += len(chunk)
        return written

    def replace_window_from(
        self,
        table: str,
        date_column: str,
        start: date,
        end: date,
        source_table: str,
        where: str = "TRUE",
        columns: Sequence[str] | None = None,
    ) -> int:
        """Atomically replace the window of ``table`` by the same window of ``source_table`` filtered by ``where``
        (a derived table, e.g. the review queue from predictions, or a raw day published from its audited staging
        table, without a round trip through Python). ``columns``: only these, by name (default: all, in order)."""
        _check_table(table), _check_table(source_table)
        window = self._window(date_column)
        names, selected = _column_lists(columns)
        with self._transaction(must_exist=True) as cur:
            self._lock(cur, table)
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {selected} FROM {source_table} WHERE FALSE")
            self._delete_window(cur, table, date_column, start, end)
            cur.execute(
                f"INSERT INTO {table} {names} SELECT {selected} FROM {source_table} WHERE {window} "
                f"AND ({self._with_params(where)})",
                [start, end],
            )
            written = self._rowcount(cur)
        return int(written)

    def replace_window_query(
        self, table: str, date_column: str, start: date, end: date, select: str, columns: Sequence[Column]
    ) -> int:
        """Atomically replace the window of ``table`` (made with ``columns`` if it is not there) by the rows of
        ``select``, a query over warehouse tables returning ``columns`` in order and only rows of the window (the
        final decisions: predictions joined with reviews), without a round trip through Python."""
        _check_table(table)
        with self._transaction() as cur:
            self._lock(cur, table)
            self._ensure_table(cur, table, columns)
            self._delete_window(cur, table, date_column, start, end)
            cur.execute(f"INSERT INTO {table} ({_quoted(c.name for c in columns)}) {select}")
            written = self._rowcount(cur)
        return int(written)

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
        """Atomically replace the window of ``table`` by ``transform`` applied to the same window of
        ``source_table``, chunk by chunk (scoring): :meth:`replace_windows_mapped` with one table."""
        targets = [MappedTable(table, transform, columns)]
        return self.replace_windows_mapped(date_column, start, end, source_table, targets, chunk_rows)[0]

    def replace_windows_mapped(
        self,
        date_column: str,
        start: date,
        end: date,
        source_table: str,
        targets: Sequence[MappedTable],
        chunk_rows: int = 100_000,
    ) -> list[int]:
        """Atomically replace the window of every target table by its transform applied to the same window of
        ``source_table`` (:class:`~resources.warehouse.mapped.MappedTable`); the rows written to each, in order.

        Here the window is read once, in chunks of ``chunk_rows``, and each chunk goes to every transform in
        memory, one chunk ahead of the writes (:func:`~resources.warehouse.mapped.mapped_ahead`); all targets are
        written in one transaction, so a failure leaves every table as it was. The first chunk is computed before
        the transaction opens: rows the transform refuses never touch a table. An engine that computes where the
        data is (Spark) runs each transform there instead."""
        for target in targets:
            _check_table(target.table)
        chunks = self.iter_window(source_table, date_column, start, end, chunk_rows=chunk_rows)
        mapped = mapped_ahead(chunks, [target.transform for target in targets])
        written = [0] * len(targets)
        with closing(mapped):  # on a failure: the worker stopped, the read's connection closed
            first = next(mapped, None)
            with self._transaction() as cur:
                for target in targets:
                    self._lock(cur, target.table)
                    self._ensure_table(cur, target.table, target.columns)
                    self._delete_window(cur, target.table, date_column, start, end)
                for outputs in itertools.chain([] if first is None else [first], mapped):
                    for i, frames in enumerate(outputs):
                        for frame in frames:
                            if not frame.empty:
                                self._insert_chunk(cur, targets[i].table, frame)
                                written[i] += len(frame)
        return written

    def append_produced(
        self,
        table: str,
        inputs: Sequence[Any],
        produce: Callable[[Any], Iterator[pd.DataFrame]],
        columns: Sequence[Column],
        chunk_rows: int = 100_000,
    ) -> None:
        """Append to ``table`` (made with ``columns`` if it is not there: a staging table) every frame
        ``produce(item)`` yields for each of ``inputs`` (raw days read from their files or generator). ``produce``
        must pickle: an engine that computes runs it where the data is (Spark: one task per item on the executors,
        so the data never passes through this process), the others run it here, in one transaction, small frames
        of the same columns joined into inserts of about ``chunk_rows`` rows."""
        _check_table(table)
        with self._transaction() as cur:
            self._lock(cur, table)
            self._ensure_table(cur, table, columns)
            for chunk in _joined((frame for item in inputs for frame in produce(item)), chunk_rows):
                self._insert_chunk(cur, table, chunk)

    def as_text(self, expression: str) -> str:
        """SQL casting ``expression`` to the engine's text type (for hashing or showing a value of any type)."""
        return f"CAST({expression} AS {self._sql_type('VARCHAR')})"

    def column_names(self, table: str) -> list[str]:
        """The columns of ``table``; ``NotInWarehouse`` when it is not there."""
        if not self.table_exists(table):
            raise NotInWarehouse(f"table {table} does not exist in warehouse {self.describe()}")
        return [str(c) for c in self.query(f"SELECT * FROM {_check_table(table)} WHERE FALSE").columns]

    def ensure_table(self, table: str, columns: Sequence[Column], window_column: str | None = None) -> None:
        """Create ``table`` (and its schema) with the declared columns if it does not exist; add the declared
        columns it lacks. ``window_column``: the column its windows are replaced by (an engine that stores tables
        in day partitions, Spark, partitions it by that column)."""
        with self._transaction() as cur:
            self._ensure_table(cur, _check_table(table), columns)

    def drop_table(self, table: str) -> None:
        """Drop ``table`` if it exists (staging tables); a warehouse file that is not there stays so."""
        _check_table(table)
        try:
            with self._transaction(must_exist=True) as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        except WarehouseFileMissing:
            pass

    def iter_window(
        self, table: str, date_column: str, start: date, end: date, chunk_rows: int = 100_000
    ) -> Iterator[pd.DataFrame]:
        """Rows of ``table`` in the date window, in chunks of at most ``chunk_rows``."""
        raise NotImplementedError

    def append(self, table: str, frame: pd.DataFrame) -> None:
        """Append rows (audit records); the table is created from the frame's columns the first time, and a
        column the rows have but the table lacks is added (earlier rows keep NULL there): records are never lost
        to a new field."""
        _check_table(table)
        with self._transaction() as cur:
            self._ensure_table(cur, table, columns_from_frame(frame))
            self._insert_chunk(cur, table, frame)

    def query(self, sql: str) -> pd.DataFrame:
        """A read-only query, for checks and tests."""
        raise NotImplementedError

    def table_exists(self, table: str) -> bool:
        _check_table(table)
        try:
            with self._transaction(must_exist=True) as cur:
                return self._listed(cur, table)
        except WarehouseFileMissing:
            return False

    def read_window(self, table: str, date_column: str, start: date, end: date) -> pd.DataFrame:
        import pandas as pd

        frames = list(self.iter_window(table, date_column, start, end))
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def describe(self) -> str:
        raise NotImplementedError

    @contextmanager
    def session(self):
        """Calls inside share one connection where opening one costs (DuckDB): a backfill's many small calls per
        day then pay the open once per step. Elsewhere a no-op."""
        yield self

    @contextmanager
    def writer(self, run_id: str | None = None, step: str | None = None, log: Any = None):
        """Hold the warehouse's exclusive writer for the block, where the engine allows one writer process at a
        time (DuckDB: an OS lock the kernel frees when its holder dies, see ``writer_lock``). A server engine
        takes concurrent writers and locks per table inside each write: there, a no-op."""
        yield {}

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        """Inside a run, the process that uses the warehouse holds its exclusive writer while it does: for the run
        on the in-process executor, for the step on the multiprocess one (each step process sets up its own
        resources); dbt's subprocess runs inside it. Sensors and schedules (no run) take nothing. First, runs a
        crash left STARTED are marked failed (``resources.instance``): the next run is what notices them."""
        run = context.run
        if run is None:
            with super().yield_for_execution(context) as resource:
                yield resource
            return
        _mark_dead_runs(context)
        with (
            self.writer(run_id=run.run_id, step=f"job {run.job_name}", log=context.log),
            super().yield_for_execution(context) as resource,
        ):
            yield resource


def _mark_dead_runs(context: dg.InitResourceContext) -> None:
    """Set right the runs a crash left in progress; never fails the run that found them."""
    from resources.instance import reap_dead_runs

    if context.instance is None:
        return
    try:
        reap_dead_runs(context.instance, log=context.log)
    except Exception as error:  # healing is bookkeeping: the run goes on
        context.log.warning(f"could not check for runs left in progress by a crash: {error!r}")
