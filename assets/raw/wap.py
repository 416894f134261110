"""Write, audit, publish one raw table over a window of days (one day for the nightly run, many for a backfill).

Every day of the window is read and written to ONE staging table (a column says which day each row was read
for), the whole window is audited in one pass of SQL grouped by day (:mod:`assets.raw.audit`), and the days that
pass replace the stored ones, consecutive days in one statement. So a backfill costs a few statements whatever its
length, instead of a handful per day (``python -m bench.backfill``). A rejected day leaves what was stored for it
untouched and is recorded in ``audit.rejected_files``; the other days of the window are published all the same.
A day whose landing file is not complete yet (:class:`FileNotComplete`) has not arrived: nothing is published for
it (not even an empty day) and what was stored is kept, like a rejected day, but it is no rejection and is not
recorded as one; its result says so (``arrived=False``) and a later run reads the file once it is complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from resources.source import FileNotComplete, RawSources, SourceDataError
from resources.source.schema import Column, RawTable
from resources.warehouse import Warehouse

REJECTED_FILES = "audit.rejected_files"
STAGING_SCHEMA = "nightjar_staging"
DAY_COLUMN = "_nightjar_day"  # the day a staged row was read for
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
    origins: dict[date, str] = {}
    refused: dict[date, str] = {}  # days whose read failed: the rows they staged before failing are ignored
    not_arrived: set[date] = set()  # refused days whose file is not complete yet
    try:
        warehouse.drop_table(staging)
        warehouse.ensure_table(staging, _staged_columns(table), DAY_COLUMN)
        warehouse.replace_window(
            staging,
            DAY_COLUMN,
            days[0],
            days[-1] + timedelta(days=1),
            _staged_chunks(table, days, source, origins, refused, not_arrived),
            _staged_columns(table),
        )
        audited = audit_staged(warehouse, table, staging, DAY_COLUMN, [d for d in days if d not in refused])
        results = []
        for day in days:
            rows, problems = audited.get(day, (0, []))
            if day in refused:
                results.append(DayResult(day, 0, origins.get(day, "?"), refused[day], day not in not_arrived))
            elif problems:
                results.append(DayResult(day, 0, origins[day], f"{origins[day]}:\n  - " + "\n  - ".join(problems)))
            else:
                results.append(DayResult(day, rows, origins[day]))
        _publish(warehouse, table, staging, [r.day for r in results if r.problems is None])
        for result in results:
            if result.problems and result.arrived:
                _record_rejection(warehouse, table, result, run_id)
        return results
    finally:
        warehouse.drop_table(staging)


def _staged_chunks(
    table: RawTable,
    days: Sequence[date],
    source: RawSources,
    origins: dict[date, str],
    refused: dict[date, str],
    not_arrived: set[date],
) -> Iterator:
    """Every day's chunks with its day column, in one stream of inserts of about ``INSERT_ROWS`` rows (small days
    together: one insert per day cost more than the rows); a day whose read fails is noted in ``refused``, and in
    ``not_arrived`` too when its file is not complete yet."""
    pending: list = []
    pending_rows = 0
    for day in days:
        origins[day] = "?"
        try:
            read = source.read(table, day)
            origins[day] = read.origin
            if read.chunks is None:  # a landing table without a file that day
                if table.missing_day == "error":
                    raise SourceDataError(
                        f"no file for {table.label} {day}: {read.origin}; declare missing_day: empty if a day may "
                        "have none"
                    )
                continue  # an empty day: its stored rows are replaced by none
            chunks = read.chunks if read.file is not None else _numbered(read.chunks, table, read.origin)
            for chunk in chunks:  # streamed: a file that fails late has staged rows, which nothing reads
                chunk[DAY_COLUMN] = day
                pending.append(chunk)
                pending_rows += len(chunk)
                if pending_rows >= INSERT_ROWS:
                    yield _concat(pending)
                    pending, pending_rows = [], 0
        except FileNotComplete as error:
            origins[day] = str(error.file or origins[day])
            refused[day] = (
                f"not yet arrived: {error}. Skipped: nothing of {day} is published and what was stored for it is "
                "kept; a later run of this day reads the file once it is complete"
            )
            not_arrived.add(day)
        except SourceDataError as error:
            refused[day] = str(error)
    if pending:
        yield _concat(pending)


def _concat(chunks: list):
    import pandas as pd

    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


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
            where=f"\"{DAY_COLUMN}\" >= DATE '{first.isoformat()}' AND \"{DAY_COLUMN}\" < DATE '{end.isoformat()}'",
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
    return [Column(ROW_COLUMN, "BIGINT"), Column(DAY_COLUMN, "DATE"), *(Column(c.name, c.dtype) for c in table.columns)]


def _numbered(chunks, table: RawTable, origin: str):
    """A generator's chunks with the declared columns in order and a row number, for the audit's messages."""
    import numpy as np

    from resources.source.landing import ROW_COLUMN

    rows = 0
    for chunk in chunks:
        missing = [c for c in table.column_names if c not in chunk.columns]
        if missing:
            raise SourceDataError(f"{origin} yields no column(s) {', '.join(map(repr, missing))} for {table.label}")
        frame = chunk[table.column_names].reset_index(drop=True)
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
