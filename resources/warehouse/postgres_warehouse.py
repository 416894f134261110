"""The Postgres warehouse (``NIGHTJAR_ENV=prod``): psycopg2 is imported when a connection is opened."""

from __future__ import annotations

import io
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from resources.warehouse.base import NotInWarehouse, Warehouse, _check_table, _quoted

if TYPE_CHECKING:
    import pandas as pd

_PG_TYPES = {"DOUBLE": "DOUBLE PRECISION"}
_PG_UNDEFINED_TABLE = "42P01"  # SQLSTATE of a query on a table that does not exist
_COPY_BLOCK = 1 << 20  # bytes per read of the COPY buffer (psycopg2's default, 8 KiB, costs a Python call each)
_SLICE_ROWS = 5_000  # rows formatted at a time while the server parses the previous ones (see _CsvSlices)


class PostgresWarehouse(Warehouse):
    """A Postgres database (``NIGHTJAR_ENV=prod``); the password comes through ``dagster.EnvVar``."""

    host: str
    port: int = 5432
    user: str
    password: str
    dbname: str

    _PARAM: ClassVar[str] = "%s"

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

    # --- the hooks of the shared writes (resources.warehouse.base) ------------------------------------------------

    @contextmanager
    def _transaction(self, must_exist: bool = False):
        # psycopg2 runs every statement of a connection in one transaction until commit; closing without commit
        # (the block raised) rolls it back.
        with self._connect() as conn, conn.cursor() as cur:
            yield cur
            conn.commit()

    def _lock(self, cur, table: str) -> None:
        """Writers of one table take turns until commit: under READ COMMITTED, two overlapping delete-then-insert
        transactions on the same window would each miss the other's rows and both inserts would stay."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))

    def _insert_chunk(self, cur, table: str, chunk: pd.DataFrame) -> None:
        """COPY the rows as CSV. pyarrow formats them in C++ (about 10x faster than ``DataFrame.to_csv``) when
        every column's text is known to store the value pandas' text stores (see :func:`_arrow_csv`); any other
        frame takes pandas' route, the reference."""
        columns = _quoted(chunk.columns)
        text = _arrow_csv(chunk, _column_types(cur, table))
        if text is not None:
            cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", text, size=_COPY_BLOCK)
            return
        null = _null_marker(chunk)
        buffer = io.StringIO()
        chunk.to_csv(buffer, index=False, header=False, na_rep=null)
        buffer.seek(0)
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '{null}')", buffer)

    def _sql_type(self, dtype: str) -> str:
        return _PG_TYPES.get(dtype, dtype)

    def _exists(self, cur, table: str) -> bool:
        cur.execute("SELECT to_regclass(%s)", (table,))
        return cur.fetchone()[0] is not None

    def _index_window(self, cur, table: str, date_column: str) -> None:
        """A B-tree index on the window column, unless an index already starts with it (a DBA's own counts): without
        one, every nightly DELETE and read of a day scans the whole table, a year of days for one. Made at the
        table's first window write after this version (inside the writers' turn: ``_lock``), so a warehouse from
        before gets it too."""
        cur.execute(
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = to_regclass(%s) AND a.attname = %s",
            (table, date_column),
        )
        if cur.fetchone() is None:
            cur.execute(
                f'CREATE INDEX IF NOT EXISTS "{window_index_name(table, date_column)}" ON {table} ("{date_column}")'
            )

    # --- reads ----------------------------------------------------------------------------------------------------

    def iter_window(self, table, date_column, start, end, chunk_rows=100_000):
        import pandas as pd

        _check_table(table)
        with self._connect() as conn, conn.cursor(name="nightjar_window") as cur:
            cur.itersize = chunk_rows
            try:
                cur.execute(f"SELECT * FROM {table} WHERE {self._window(date_column)}", (start, end))
            except Exception as exc:
                if getattr(exc, "pgcode", None) == _PG_UNDEFINED_TABLE:
                    raise NotInWarehouse(f"table {table} does not exist in warehouse {self.describe()}") from exc
                raise
            while rows := cur.fetchmany(chunk_rows):
                yield _like_duckdb(pd.DataFrame(rows, columns=[d.name for d in cur.description]))

    def query(self, sql):
        import pandas as pd

        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
            return _like_duckdb(pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description]))

    def describe(self) -> str:
        return f"postgres:{self.user}@{self.host}:{self.port}/{self.dbname}"


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


def _null_marker(chunk: pd.DataFrame) -> str:
    """The text that stands for NULL in pandas' CSV: ``\\N``, lengthened until no string of the frame equals it (an
    unquoted field equal to it is read as NULL, so a stored ``\\N`` would otherwise come back NULL)."""
    import pandas as pd

    texts = [
        chunk.iloc[:, i]
        for i, dtype in enumerate(chunk.dtypes)
        if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
    ]
    marker = "\\N"
    while any((column == marker).any() for column in texts):
        marker += "_"
    return marker


# Postgres column types into which Arrow's CSV text of a column stores exactly what pandas' ``to_csv`` text
# stores, by the column's Arrow type: floats are written as the shortest digits that round-trip by both (only the
# notation may differ, "1e-05" / "0.00001": the same double or real once parsed, not the same NUMERIC or VARCHAR),
# integers with the same digits, booleans as true / True, naive timestamps with the same digits, strings quoted.
_FLOAT_TARGETS = ("double precision", "real")
_INTEGER_TARGETS = ("bigint", "integer", "smallint", "numeric", *_FLOAT_TARGETS)
_TIMESTAMP_TARGETS = ("timestamp without time zone", "timestamp with time zone")
_STRING_TARGETS = ("character varying", "text", "character")


def _exact_targets(arrow_type) -> tuple[str, ...]:
    import pyarrow as pa

    if pa.types.is_float64(arrow_type) or pa.types.is_float32(arrow_type):  # float16 takes pandas' route
        return _FLOAT_TARGETS
    if pa.types.is_integer(arrow_type):
        return _INTEGER_TARGETS
    if pa.types.is_boolean(arrow_type):
        return ("boolean",)
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:  # pandas writes local time, Arrow UTC
        return ("date", *_TIMESTAMP_TARGETS)  # a DATE takes the date of either text, the time ignored
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _STRING_TARGETS
    if pa.types.is_date32(arrow_type):
        return ("date", *_TIMESTAMP_TARGETS, *_STRING_TARGETS)
    return ()


def _column_types(cur, table: str) -> dict[str, str]:
    schema, name = table.lower().split(".")  # unquoted names, as Postgres folds them
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    )
    return dict(cur.fetchall())


def _arrow_csv(chunk: pd.DataFrame, targets: dict[str, str]):
    """The rows of ``chunk`` as a file of CSV for ``COPY ... (FORMAT csv)`` (NULL is an unquoted empty field, an
    empty string is ``""``), or None when a column is not one whose stored value is known to equal pandas'
    route: a type outside :func:`_exact_targets` for its target column (or no such column), an object column
    Arrow cannot type or types otherwise than string / date, a duplicated column name. Strings are quoted, so
    none is read as NULL."""
    import pyarrow as pa

    if not chunk.columns.is_unique:
        return None
    try:
        frame = pa.Table.from_pandas(chunk, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    arrays = []
    for name, dtype, array in zip(chunk.columns, chunk.dtypes, frame.columns, strict=True):
        if pa.types.is_null(array.type):  # no value but NULL: written as NULL into any column
            arrays.append(array)
            continue
        if dtype == object and not (pa.types.is_string(array.type) or pa.types.is_date32(array.type)):
            return None  # e.g. Python bools or floats in an object column: pandas writes str() of each
        if targets.get(str(name)) not in _exact_targets(array.type):
            return None
        arrays.append(array)
    return _CsvSlices(pa.table(arrays, names=[str(n) for n in chunk.columns]))


class _CsvSlices:
    """A file for ``copy_expert`` whose CSV is formatted ``_SLICE_ROWS`` rows at a time as COPY reads it: the
    server parses one slice while pyarrow formats the next (about 1.5x faster than formatting the whole chunk
    first at 200,000 rows), and the text in memory stays a few slices long."""

    def __init__(self, table) -> None:
        self._table, self._at, self._pending = table, 0, bytearray()

    def read(self, size: int = -1) -> bytes:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        while (size < 0 or len(self._pending) < size) and self._at < self._table.num_rows:
            sink = pa.BufferOutputStream()
            options = pa_csv.WriteOptions(include_header=False)
            pa_csv.write_csv(self._table.slice(self._at, _SLICE_ROWS), sink, options)
            self._pending += sink.getvalue()
            self._at += _SLICE_ROWS
        size = len(self._pending) if size < 0 else size
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out


def window_index_name(table: str, date_column: str) -> str:
    """``<table>__<column>`` (Postgres keeps 63 bytes of a name: a longer one is cut and told apart by a hash)."""
    import hashlib

    name = f"{table.split('.')[-1]}__{date_column}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha1(f"{table}.{date_column}".encode()).hexdigest()[:8]
    return f"{name.encode()[:54].decode(errors='ignore')}_{digest}"
