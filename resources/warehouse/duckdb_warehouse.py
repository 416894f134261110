"""The DuckDB warehouse: a local file, the embedded default.

DuckDB takes a file lock per process: connections are opened late and closed at the end of each call, never
held across steps, and every step that writes the warehouse holds its exclusive writer lock (``writer``, an OS
lock beside the file that the kernel frees when its holder dies) for the whole step, dbt's subprocess included.
"""

from __future__ import annotations

import errno
import logging
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, PrivateAttr

from resources.warehouse.base import (
    NotInWarehouse,
    Warehouse,
    WarehouseFileMissing,
    _check_table,
    _quoted,
)
from resources.warehouse.writer_lock import exclusive_writer, lock_path_for

if TYPE_CHECKING:
    import pandas as pd

_LOG = logging.getLogger("nightjar.warehouse")


class DuckDBWarehouse(Warehouse):
    """A DuckDB file: the embedded default."""

    path: str = Field(description="Path of the DuckDB database file; its folder is created if missing.")
    lock_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long opening the file waits, retrying with growing pauses, while another process holds "
        "DuckDB's single-writer lock; then it fails naming the file. 0 fails at once.",
    )
    writer_wait_seconds: float | None = Field(
        default=None,
        ge=0,
        description="How long a warehouse step waits for another step's exclusive writer lock before failing with "
        "the holder's name. None: as long as the holder lives (the lock dies with its process, so it is never "
        "stale).",
    )
    _in_session: bool = PrivateAttr(default=False)
    _session: Any = PrivateAttr(default=None)  # the session's connection, once a call inside opened it

    @contextmanager
    def session(self):
        """The file is opened by the first call inside, as that call would open it (a read does not create a
        missing warehouse), and stays open for the others until the session ends."""
        if self._in_session:  # already inside one
            yield self
            return
        self._in_session = True
        try:
            yield self
        finally:
            conn, self._session, self._in_session = self._session, None, False
            if conn is not None:
                conn.close()

    @contextmanager
    def writer(self, run_id: str | None = None, step: str | None = None, log: Any = None):
        """Hold the file's exclusive writer lock for the block (see ``writer_lock``). Once held, wait for DuckDB's
        own file lock too: a process that held the writer lock and died may have left a child (dbt) still closing
        the file; dbt's adapter, unlike ``_open_duckdb``, would fail at once on it."""
        with exclusive_writer(
            lock_path_for(self.path), run_id=run_id, step=step, wait_seconds=self.writer_wait_seconds, log=log
        ) as holder:
            db_path = Path(self.path)
            if db_path.exists() and self._session is None:
                _open_duckdb(db_path, self.lock_wait_seconds).close()
            yield holder

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
        if self._in_session:  # closed when the session ends
            self._session = conn
            yield conn
            return
        try:
            yield conn
        finally:
            conn.close()

    # --- the hooks of the shared writes (resources.warehouse.base) ------------------------------------------------

    @contextmanager
    def _transaction(self, must_exist: bool = False):
        with self._connect(must_exist=must_exist) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as error:
                _roll_back(conn, self.path, error)
                raise

    def _insert_chunk(self, cur, table: str, chunk: pd.DataFrame) -> None:
        cur.register("nightjar_chunk", chunk)
        names = _quoted(chunk.columns)
        cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM nightjar_chunk")
        cur.unregister("nightjar_chunk")

    def _rowcount(self, cur) -> int:
        return cur.fetchone()[0]  # an INSERT's result is its row count

    # --- reads ----------------------------------------------------------------------------------------------------

    def iter_window(self, table, date_column, start, end, chunk_rows=100_000):
        _check_table(table)
        with self._connect(must_exist=True) as conn:
            if not self._exists(conn, table):
                raise NotInWarehouse(f"table {table} does not exist in warehouse {self.path}")
            # A cursor of its own: in a session, the writes made between two chunks (scoring writes each chunk's
            # rows) would otherwise replace the result this read hands out.
            with conn.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {table} WHERE {self._window(date_column)} ORDER BY 1", [start, end])
                vectors = max(1, chunk_rows // 2048)  # DuckDB hands rows out in vectors of 2048
                while not (chunk := cursor.fetch_df_chunk(vectors)).empty:
                    yield chunk

    def query(self, sql):
        with self._connect(must_exist=True) as conn:
            return conn.execute(sql).fetch_df()

    def describe(self) -> str:
        return f"duckdb:{self.path}"


def _roll_back(conn, path: str, error: BaseException) -> None:
    """Roll back after ``error``. DuckDB aborts the transaction itself on some errors (a full disk among them),
    and then ROLLBACK fails with "cannot rollback - no transaction is active", which would hide the cause: that
    failure is dropped so the original error propagates, with the file and the disk's state named."""
    import duckdb

    with suppress(duckdb.Error):
        conn.execute("ROLLBACK")
    _name_disk_full(error, path)


def _name_disk_full(error: BaseException, path: str) -> None:
    """Add the warehouse file and "no space left on device" to an error a full disk caused (DuckDB reports it as
    an IO or fatal error whose text varies by version)."""
    text = str(error).lower()
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or "no space left" in text or "disk is full" in text:
        error.add_note(
            f"the warehouse {path}: no space left on device; free space there, then re-run (stored rows kept)"
        )


def _open_duckdb(db_path: Path, lock_wait_seconds: float):
    """Open ``db_path`` read-write, waiting out another process's lock with exponential backoff (0.1 s doubling
    to 5 s) for at most ``lock_wait_seconds``. The pool keeps warehouse steps apart; this covers what it cannot
    see: dbt or a notebook holding the file, a crashed run's step process still closing it."""
    import duckdb

    started = time.monotonic()
    deadline = started + lock_wait_seconds
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
                    f"{time.monotonic() - started:.0f} s, {attempts} attempts). DuckDB allows one writer process per "
                    f"file; nightjar's steps take turns on its writer lock ({lock_path_for(db_path).name}), so look "
                    f"for another program with the file open (a notebook, a dbt or duckdb shell). DuckDB said: {exc}"
                ) from exc
            if attempts == 1:
                _LOG.warning(
                    "warehouse %s is locked by another process; waiting up to %.0f s for it: %s",
                    db_path,
                    lock_wait_seconds,
                    exc,
                )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)
