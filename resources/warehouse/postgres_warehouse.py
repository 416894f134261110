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
        buffer = io.StringIO()
        chunk.to_csv(buffer, index=False, header=False, na_rep="\\N")
        buffer.seek(0)
        cur.copy_expert(f"COPY {table} ({_quoted(chunk.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)

    def _sql_type(self, dtype: str) -> str:
        return _PG_TYPES.get(dtype, dtype)

    def _exists(self, cur, table: str) -> bool:
        cur.execute("SELECT to_regclass(%s)", (table,))
        return cur.fetchone()[0] is not None

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
