"""Write, audit, publish one raw table over a window of days (one day for the nightly run, many for a backfill).

Every day of the window is read and written to ONE staging table (a column says which day each row was read
for), the whole window is audited in one pass of SQL grouped by day (:mod:`assets.raw.audit`), and the days that
pass replace the stored ones, consecutive days in one statement. So a backfill costs a few statements whatever its
length, instead of a handful per day (``python -m bench.backfill``). A rejected day leaves what was stored for it
untouched and is recorded in ``audit.rejected_files``; the other days of the window are published all the same.
A day whose landing file is not complete yet (:class:`FileNotComplete`) has not arrived: nothing is published for
it (not even an empty day) and what was stored is kept, like a rejected day, but it is no rejection and is not
recorded as one; its result says so (``arrived=False``) and a later run reads the file once it is complete.

Days are read by the warehouse's ``append_produced`` with :class:`DayRows`: in this process for DuckDB and
Postgres, one task per day on the executors for Spark (which read the landing folder themselves), so a day's
rows never pass through the Dagster process there. How each read ended comes back as a status row per day.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from resources.source import FileNotComplete, PortableSources, RawSources, SourceDataError
from resources.source.schema import Column, RawTable
from resources.warehouse import Warehouse
from resources.warehouse.sql import day_window

if TYPE_CHECKING:
    import pandas as pd

REJECTED_FILES = "audit.rejected_files"
STAGING_SCHEMA = "nightjar_staging"
DAY_COLUMN = "_nightjar_day"  # the day a staged row was read for
STATUS_COLUMN = "_nightjar_read"  # on each day's one status row (its day column NULL): how its read ended
INSERT_ROWS = 100_000


@dataclass(frozen=True)
class DayResult:
    day: date
    rows: int
    origin: str
    problems: str | None = None  # why the day was rejected or skipped; None when it was published
    arrived: bool = True  # False: its file is not complete yet, so the day was skipped (``problems`` says why)


def ingest_day(table: RawTable, day: date, source: RawSources, warehouse: Warehouse, run_id: str) -> DayResult:
    """One day: see :func:`ingest_window`."""
    return ingest_window(table, [day], source, warehouse, run_id)[0]


def ingest_window(
    table: RawTable, days: Sequence[date], source: RawSources, warehouse: Warehouse, run_id: str
) -> list[DayResult]:
    """Write, audit, publish ``days`` (ascending, consecutive) of ``table``; a rejected day is recorded and returned,
    never raised; a day whose file is not complete yet is returned with ``arrived=False``, not recorded."""
    from assets.raw.audit import audit_staged

    staging = f"{STAGING_SCHEMA}.{table.schema}__{table.identifier}__{run_id.replace('-', '')[:12] or 'run'}"
    try:
        warehouse.drop_table(staging)
        columns = _staged_columns(table)
        warehouse.ensure_table(staging, columns, DAY_COLUMN)
        warehouse.append_produced(staging, list(days), DayRows(table, source.portable()), columns, INSERT_ROWS)
        outcomes = _outcomes(warehouse, staging, days)
        refused = {day for day, outcome in outcomes.items() if outcome.problems}
        audited = audit_staged(warehouse, table, staging, DAY_COLUMN, [d for d in days if d not in refused])
        results = []
        for day in days:
            rows, problems = audited.get(day, (0, []))
            outcome = outcomes[day]
            if day in refused:
                results.append(DayResult(day, 0, outcome.origin, outcome.problems, outcome.arrived))
            elif problems:
                results.append(DayResult(day, 0, outcome.origin, f"{outcome.origin}:\n  - " + "\n  - ".join(problems)))
            else:
                results.append(DayResult(day, rows, outcome.origin))
        _publish(warehouse, table, staging, [r.day for r in results if r.problems is None])
        for result in results:
            if result.problems and result.arrived:
                _record_rejection(warehouse, table, result, run_id)
        return results
    finally:
        warehouse.drop_table(staging)


@dataclass(frozen=True)
class DayRows:
    """Reads one day of a raw table, as staged rows (each with the day it was read for) followed by one status row
    (``STATUS_COLUMN``: the day, its origin, why it was refused, if it was, and whether it had arrived), so that an
    engine can run the read where the data is and the outcome still comes back through the staging table. A read
    that fails half-way leaves the rows it staged, which nothing reads (the day is refused). Pickles."""

    table: RawTable
    sources: PortableSources

    def __call__(self, day: date) -> Iterator[pd.DataFrame]:
        import pandas as pd

        table, origin = self.table, "?"
        try:
            read = self.sources.read(table, day)
            origin = read.origin
            if read.chunks is None:  # a landing table without a file that day
                if table.missing_day == "error":
                    raise SourceDataError(
                        f"no file for {table.label} {day}: {read.origin}; declare missing_day: empty if a day may "
                        "have none"
                    )
            else:  # an empty day when there is no file: its stored rows are replaced by none
                chunks = read.chunks if read.file is not None else _numbered(read.chunks, table, read.origin)
                for chunk in chunks:  # streamed: a file that fails late has staged rows, which nothing reads
                    chunk[DAY_COLUMN] = pd.Timestamp(day)
                    yield chunk
            yield _status(day, origin)
        except FileNotComplete as error:
            problems = (
                f"not yet arrived: {error}. Skipped: nothing of {day} is published and what was stored for it is "
                "kept; a later run of this day reads the file once it is complete"
            )
            yield _status(day, str(error.file or origin), problems, arrived=False)
        except SourceDataError as error:
            yield _status(day, origin, str(error))


@dataclass(frozen=True)
class _Outcome:
    origin: str
    problems: str | None = None
    arrived: bool = True


def _status(day: date, origin: str, problems: str | None = None, arrived: bool = True) -> pd.DataFrame:
    import pandas as pd

    status = {"day": day.isoformat(), "origin": origin, "problems": problems, "arrived": arrived}
    return pd.DataFrame({STATUS_COLUMN: [json.dumps(status)]})


def _outcomes(warehouse: Warehouse, staging: str, days: Sequence[date]) -> dict[date, _Outcome]:
    """Each day's read outcome, from its status row; a day without one was not read to its end."""
    found = warehouse.query(f'SELECT "{STATUS_COLUMN}" AS status FROM {staging} WHERE "{STATUS_COLUMN}" IS NOT NULL')
    outcomes = {}
    for text in found["status"]:
        status = json.loads(text)
        outcomes[date.fromisoformat(status["day"])] = _Outcome(status["origin"], status["problems"], status["arrived"])
    return {day: outcomes.get(day, _Outcome("?", "its read stopped before its end")) for day in days}


def _publish(warehouse: Warehouse, table: RawTable, staging: str, days: list[date]) -> None:
    """Replace the stored rows of ``days`` by their staged rows: each run of consecutive days in one transaction."""
    if not days:
        return
    warehouse.ensure_table(table.qualified, table.columns, table.partition_column)
    for first, last in _runs(days):
        end = last + timedelta(days=1)
        warehouse.replace_window_from(
            table.qualified,
            table.partition_column,
            first,
            end,
            staging,
            where=day_window(f'"{DAY_COLUMN}"', first, end),
            columns=table.column_names,
        )


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _staged_columns(table: RawTable) -> list[Column]:
    from resources.source.landing import ROW_COLUMN

    # Staged columns accept nulls: the audit counts them per rule instead of failing at the first.
    return [
        Column(ROW_COLUMN, "BIGINT"),
        Column(DAY_COLUMN, "DATE"),
        *(Column(c.name, c.dtype) for c in table.columns),
        Column(STATUS_COLUMN, "VARCHAR"),
    ]


def _numbered(chunks, table: RawTable, origin: str):
    """A generator's chunks with the declared columns in order and a row number, for the audit's messages."""
    import numpy as np
    import pandas as pd

    from resources.source.landing import ROW_COLUMN

    rows = 0
    for chunk in chunks:
        missing = [c for c in table.column_names if c not in chunk.columns]
        if missing:
            raise SourceDataError(f"{origin} yields no column(s) {', '.join(map(repr, missing))} for {table.label}")
        # a copy only where the generator's frame is not already the declared columns in order on a fresh index
        frame = chunk if list(chunk.columns) == table.column_names else chunk[table.column_names]
        if not frame.index.equals(pd.RangeIndex(len(frame))):
            frame = frame.reset_index(drop=True)
        elif frame is chunk:
            frame = chunk.copy(deep=False)  # the row number goes into this frame, not the generator's
        frame.insert(0, ROW_COLUMN, np.arange(rows + 1, rows + len(frame) + 1, dtype="int64"))
        rows += len(frame)
        yield frame


def _record_rejection(warehouse: Warehouse, table: RawTable, result: DayResult, run_id: str) -> None:
    import pandas as pd

    reason = result.problems or ""
    warehouse.append(
        REJECTED_FILES,
        pd.DataFrame(
            {
                "rejected_at": [datetime.now(UTC).replace(tzinfo=None)],
                "table_name": [table.qualified],
                "partition_day": [pd.Timestamp(result.day)],
                "origin": [result.origin],
                "rules_broken": [max(1, reason.count("\n  - "))],
                "reason": [reason],
                "dagster_run_id": [run_id],
            }
        ),
    )
