"""The warehouse: where raw partitions, predictions and audit rows are written, and marts are read.

Two implementations behind one interface: DuckDB (a local file, the default) and Postgres (``NIGHTJAR_ENV=prod``).
Every write of a partition is one transaction that deletes the window and inserts the new rows, so re-running a
day replaces it and a failure half-way leaves the previous rows untouched.

DuckDB takes a file lock per process: connections are opened late and closed at the end of each call, never
held across steps, and every asset that touches the warehouse runs in the ``warehouse`` concurrency pool.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.source.schema import Column

if TYPE_CHECKING:  # pandas is imported where frames are made: this module is imported when definitions load
    import pandas as pd

WAREHOUSE_POOL = "warehouse"


class NotInWarehouse(LookupError):
    """The warehouse, or a table in it, is not there yet: materializing what writes it creates it, asking again
    does not (assets turn it into a failure that is never retried)."""


class WarehouseFileMissing(NotInWarehouse, FileNotFoundError):
    """The DuckDB file does not exist yet (a ``FileNotFoundError`` too, as it always was)."""

_LOG = logging.getLogger("nightjar.warehouse")

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


class Warehouse(dg.ConfigurableResource):
    """Interface shared by the DuckDB and Postgres warehouses."""

    def replace_window(
        self,
        table: str,
        date_column: str,
        start: date,
        end: date,
        chunks: Iterable[pd.DataFrame],
        columns: Sequence[Column] | None = None,
    ) -> int:
        """Atomically replace the rows with ``start <= date_column < end`` by ``chunks``; returns rows written."""
        raise NotImplementedError

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
        raise NotImplementedError

    def ensure_table(self, table: str, columns: Sequence[Column]) -> None:
        """Create ``table`` (and its schema) with the declared columns if it does not exist."""
        raise NotImplementedError

    def drop_table(self, table: str) -> None:
        """Drop ``table`` if it exists (staging tables)."""
        raise NotImplementedError

    def iter_window(
        self, table: str, date_column: str, start: date, end: date, chunk_rows: int = 100_000
    ) -> Iterator[pd.DataFrame]:
        """Rows of ``table`` in the date window, in chunks of at most ``chunk_rows``."""
        raise NotImplementedError

    def append(self, table: str, frame: pd.DataFrame) -> None:
        """Append rows (audit records); the table is created from the frame's columns the first time, and a
        column the rows have but the table lacks is added (earlier rows keep NULL there): records are never lost
        to a new field."""
        raise NotImplementedError

    def query(self, sql: str) -> pd.DataFrame:
        """A read-only query, for checks and tests."""
        raise NotImplementedError

    def table_exists(self, table: str) -> bool:
        raise NotImplementedError

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


class DuckDBWarehouse(Warehouse):
    """A DuckDB file: the embedded default."""

    path: str = Field(description="Path of the DuckDB database file; its folder is created if missing.")
    lock_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long opening the file waits, retrying with growing pauses, while another process holds "
        "DuckDB's single-writer lock; then it fails naming the file. 0 fails at once.",
    )
    _session: Any = PrivateAttr(default=None)

    @contextmanager
    def session(self):
        if self._session is not None:  # already inside one
            yield self
            return
        with self._connect() as conn:
            self._session = conn
            try:
                yield self
            finally:
                self._session = None

    @contextmanager
    def _connect(self, must_exist: bool = False):
        if self._session is not None:
            yield self._session
            return
        # Always read-write: DuckDB refuses a read-only and a read-write connection to one file in the same
        # process, and scoring reads a mart while it writes predictions.
        db_path = Path(self.path)
        if must_exist and not db_path.exists():
            raise WarehouseFileMissing(f"warehouse {db_path} does not exist yet: materialize the raw assets first")
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = _open_duckdb(db_path, self.lock_wait_seconds)
        try:
            yield conn
        finally:
            conn.close()

    def _ensure_table(self, conn, table: str, columns: Sequence[Column]) -> None:
        schema = table.split(".")[0]
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cols = ", ".join(f'"{c.name}" {c.dtype}{"" if c.nullable else " NOT NULL"}' for c in columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        present = {row[0] for row in conn.execute(_COLUMNS_SQL.replace("%s", "?"), table.split(".")).fetchall()}
        for column in _missing(columns, present):
            conn.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {column.dtype}')

    def replace_window(self, table, date_column, start, end, chunks, columns=None) -> int:
        chunks, columns = _peek_columns(_check_table(table), chunks, columns)
        written = 0
        with self._connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                if columns is not None:
                    self._ensure_table(conn, table, columns)
                if self._exists(conn, table):
                    conn.execute(f'DELETE FROM {table} WHERE "{date_column}" >= ? AND "{date_column}" < ?', [start, end])
                for chunk in chunks:
                    if chunk.empty:
                        continue
                    conn.register("nightjar_chunk", chunk)
                    names = ", ".join(f'"{c}"' for c in chunk.columns)
                    conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM nightjar_chunk")
                    conn.unregister("nightjar_chunk")
                    written += len(chunk)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return written

    def replace_window_from(self, table, date_column, start, end, source_table, where="TRUE", columns=None):
        _check_table(table), _check_table(source_table)
        window = f'"{date_column}" >= ? AND "{date_column}" < ?'
        names, selected = _column_lists(columns)
        with self._connect(must_exist=True) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {selected} FROM {source_table} WHERE FALSE")
                conn.execute(f"DELETE FROM {table} WHERE {window}", [start, end])
                conn.execute(
                    f"INSERT INTO {table} {names} SELECT {selected} FROM {source_table} WHERE {window} AND ({where})",
                    [start, end],
                )
                written = conn.execute(f"SELECT count(*) FROM {table} WHERE {window}", [start, end]).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(written)

    def ensure_table(self, table, columns):
        with self._connect() as conn:
            self._ensure_table(conn, _check_table(table), columns)

    def drop_table(self, table):
        if Path(self.path).exists():
            with self._connect() as conn:
                conn.execute(f"DROP TABLE IF EXISTS {_check_table(table)}")

    def iter_window(self, table, date_column, start, end, chunk_rows=100_000):
        _check_table(table)
        with self._connect(must_exist=True) as conn:
            if not self._exists(conn, table):
                raise NotInWarehouse(f"table {table} does not exist in warehouse {self.path}")
            result = conn.execute(
                f'SELECT * FROM {table} WHERE "{date_column}" >= ? AND "{date_column}" < ? ORDER BY 1',
                [start, end],
            )
            vectors = max(1, chunk_rows // 2048)  # DuckDB hands rows out in vectors of 2048
            while not (chunk := result.fetch_df_chunk(vectors)).empty:
                yield chunk

    def append(self, table, frame):
        _check_table(table)
        with self._connect() as conn:
            self._ensure_table(conn, table, columns_from_frame(frame))
            for column in columns_from_frame(frame):
                conn.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column.name}" {column.dtype}')
            conn.register("nightjar_chunk", frame)
            names = ", ".join(f'"{c}"' for c in frame.columns)
            conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM nightjar_chunk")
            conn.unregister("nightjar_chunk")

    def query(self, sql):
        with self._connect(must_exist=True) as conn:
            return conn.execute(sql).fetch_df()

    @staticmethod
    def _exists(conn, table: str) -> bool:
        schema, name = table.split(".")
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
        ).fetchone()
        return bool(found and found[0])

    def table_exists(self, table):
        _check_table(table)
        if not Path(self.path).exists():
            return False
        with self._connect(must_exist=True) as conn:
            return self._exists(conn, table)

    def describe(self) -> str:
        return f"duckdb:{self.path}"


def _open_duckdb(db_path: Path, lock_wait_seconds: float):
    """Open ``db_path`` read-write, waiting out another process's lock with exponential backoff (0.1 s doubling
    to 5 s) for at most ``lock_wait_seconds``. The pool keeps warehouse steps apart; this covers what it cannot
    see: dbt or a notebook holding the file, a crashed run's step process still closing it."""
    import duckdb

    deadline = time.monotonic() + lock_wait_seconds
    pause, attempts = 0.1, 0
    while True:
        attempts += 1
        try:
            return duckdb.connect(str(db_path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():  # "Could not set lock on file"
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"could not open warehouse {db_path}: another process holds its lock (waited "
                    f"{lock_wait_seconds:.0f} s, {attempts} attempts). DuckDB allows one writer process per file; "
                    f"warehouse steps run in the '{WAREHOUSE_POOL}' concurrency pool (dagster_home/dagster.yaml), "
                    f"so look for another program with the file open. DuckDB said: {exc}"
                ) from exc
            if attempts == 1:
                _LOG.warning("warehouse %s is locked by another process; waiting up to %.0f s for it: %s",
                             db_path, lock_wait_seconds, exc)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)


_PG_TYPES = {"DOUBLE": "DOUBLE PRECISION"}
_PG_UNDEFINED_TABLE = "42P01"  # SQLSTATE of a query on a table that does not exist


class PostgresWarehouse(Warehouse):
    """A Postgres database (``NIGHTJAR_ENV=prod``); the password comes through ``dagster.EnvVar``."""

    host: str
    port: int = 5432
    user: str
    password: str
    dbname: str

    @contextmanager
    def _connect(self):
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.dbname
        )
        try:
            yield conn
        finally:
            conn.close()

    def _ensure_table(self, cur, table: str, columns: Sequence[Column]) -> None:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        cols = ", ".join(
            f'"{c.name}" {_PG_TYPES.get(c.dtype, c.dtype)}{"" if c.nullable else " NOT NULL"}' for c in columns
        )
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        cur.execute(_COLUMNS_SQL, table.split("."))
        present = {row[0] for row in cur.fetchall()}
        for column in _missing(columns, present):
            cur.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {_PG_TYPES.get(column.dtype, column.dtype)}')

    @staticmethod
    def _lock(cur, table: str) -> None:
        """Writers of one table take turns until commit: under READ COMMITTED, two overlapping delete-then-insert
        transactions on the same window would each miss the other's rows and both inserts would stay."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))

    @staticmethod
    def _copy(cur, table: str, chunk: pd.DataFrame) -> None:
        buffer = io.StringIO()
        chunk.to_csv(buffer, index=False, header=False, na_rep="\\N")
        buffer.seek(0)
        names = ", ".join(f'"{c}"' for c in chunk.columns)
        cur.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)

    def replace_window(self, table, date_column, start, end, chunks, columns=None) -> int:
        chunks, columns = _peek_columns(_check_table(table), chunks, columns)
        written = 0
        with self._connect() as conn, conn.cursor() as cur:
            self._lock(cur, table)
            if columns is not None:
                self._ensure_table(cur, table, columns)
            cur.execute("SELECT to_regclass(%s)", (table,))
            if cur.fetchone()[0] is not None:
                cur.execute(f'DELETE FROM {table} WHERE "{date_column}" >= %s AND "{date_column}" < %s', (start, end))
            for chunk in chunks:
                if not chunk.empty:
                    self._copy(cur, table, chunk)
                    written += len(chunk)
            conn.commit()  # psycopg2 runs all of the above in one transaction; closing without commit rolls back
        return written

    def replace_window_from(self, table, date_column, start, end, source_table, where="TRUE", columns=None):
        _check_table(table), _check_table(source_table)
        window = f'"{date_column}" >= %s AND "{date_column}" < %s'
        names, selected = _column_lists(columns)
        with self._connect() as conn, conn.cursor() as cur:
            self._lock(cur, table)
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {selected} FROM {source_table} WHERE FALSE")
            cur.execute(f"DELETE FROM {table} WHERE {window}", (start, end))
            cur.execute(
                f"INSERT INTO {table} {names} SELECT {selected} FROM {source_table} WHERE {window} AND ({where})",
                (start, end),
            )
            written = cur.rowcount
            conn.commit()
        return int(written)

    def ensure_table(self, table, columns):
        with self._connect() as conn, conn.cursor() as cur:
            self._ensure_table(cur, _check_table(table), columns)
            conn.commit()

    def drop_table(self, table):
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {_check_table(table)}")
            conn.commit()

    def iter_window(self, table, date_column, start, end, chunk_rows=100_000):
        import pandas as pd

        _check_table(table)
        with self._connect() as conn, conn.cursor(name="nightjar_window") as cur:
            cur.itersize = chunk_rows
            try:
                cur.execute(f'SELECT * FROM {table} WHERE "{date_column}" >= %s AND "{date_column}" < %s', (start, end))
            except Exception as exc:
                if getattr(exc, "pgcode", None) == _PG_UNDEFINED_TABLE:
                    raise NotInWarehouse(f"table {table} does not exist in warehouse {self.describe()}") from exc
                raise
            while rows := cur.fetchmany(chunk_rows):
                yield _like_duckdb(pd.DataFrame(rows, columns=[d.name for d in cur.description]))

    def append(self, table, frame):
        _check_table(table)
        with self._connect() as conn, conn.cursor() as cur:
            self._ensure_table(cur, table, columns_from_frame(frame))
            for column in columns_from_frame(frame):
                sql_type = _PG_TYPES.get(column.dtype, column.dtype)
                cur.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column.name}" {sql_type}')
            self._copy(cur, table, frame)
            conn.commit()

    def query(self, sql):
        import pandas as pd

        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
            return _like_duckdb(pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description]))

    def table_exists(self, table):
        schema, name = _check_table(table).split(".")
        frame = self.query(
            "SELECT count(*) AS n FROM information_schema.tables "
            f"WHERE table_schema = '{schema}' AND table_name = '{name}'"
        )
        return bool(frame["n"].iloc[0])

    def describe(self) -> str:
        return f"postgres:{self.user}@{self.host}:{self.port}/{self.dbname}"


_COLUMNS_SQL = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"


def _missing(columns: Sequence[Column], present: set[str]) -> list[Column]:
    """Declared columns a table made by an earlier version lacks: added (nullable, so stored rows stay valid)
    instead of failing the write; columns the declaration dropped stay, NULL in new rows."""
    return [c for c in columns if c.name not in present]


def _column_lists(columns: Sequence[str] | None) -> tuple[str, str]:
    """The ``(a, b)`` insert list and ``a, b`` select list for ``columns``; all columns when None."""
    if columns is None:
        return "", "*"
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f"({quoted})", quoted


def _like_duckdb(frame: pd.DataFrame) -> pd.DataFrame:
    """psycopg2 returns DATE as ``datetime.date`` and NUMERIC as ``Decimal`` in object columns; give them the
    dtypes DuckDB gives (datetime64, float64) so callers see the same frames from either warehouse."""
    import pandas as pd

    for name in frame.columns:
        values = frame[name].dropna()
        if frame[name].dtype != object or values.empty:
            continue
        first = values.iloc[0]
        if isinstance(first, (date, datetime)):
            frame[name] = pd.to_datetime(frame[name])
        elif isinstance(first, Decimal):
            frame[name] = frame[name].astype("float64")
    return frame


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
