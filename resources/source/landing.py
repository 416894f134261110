"""Raw rows from files dropped in a landing folder, validated against the raw tables' contract.

Layout: ``<path>/applications/<YYYY-MM-DD>.csv|.parquet`` and ``<path>/outcomes/<YYYY-MM-DD>.csv|.parquet``.
Columns are matched by name; extra columns are dropped. CSV cells are parsed strictly: numbers as numbers
(an INTEGER must be whole), DATE and TIMESTAMP as ISO 8601 (a TIMESTAMP with an offset is converted to UTC,
one without is taken as UTC; a DATE must have no time of day), BOOLEAN as true/false, t/f, yes/no, y/n or 1/0 in
any case. An empty cell, or a blank one in a VARCHAR column, is a null.

``applications`` and ``outcomes`` read the whole file once to validate it before returning, then a second time,
chunk by chunk, to yield it: a bad file raises before the caller can write anything, and memory stays bounded
by one chunk plus the file's ids (kept as Arrow strings for the duplicate check).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from resources.source.base import PANDAS_DTYPES, DataSource, SourceDataError, as_day
from resources.source.schema import APPLICATIONS, OUTCOMES, Column, TableSchema

CHUNK_ROWS = 100_000
FILE_SUFFIXES = (".csv", ".parquet")
_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


class LandingFolderSource(DataSource):
    """Applications and outcomes from daily CSV or Parquet files; see the module docstring for the rules."""

    path: str = Field(description="Landing folder holding applications/ and outcomes/ subfolders.")

    # Not generators: the file is found and validated when called, before any chunk is asked for.
    def applications(self, day: date) -> Iterator[pd.DataFrame]:
        day = as_day(day)
        file = self._day_file(APPLICATIONS, day)
        if file is None:
            expected = " or ".join(str(self._candidate(APPLICATIONS, day, suffix)) for suffix in FILE_SUFFIXES)
            raise SourceDataError(f"no applications file for {day}: expected {expected}")
        return _read_validated(file, APPLICATIONS, day)

    def outcomes(self, day: date) -> Iterator[pd.DataFrame]:
        """A day without an outcomes file has no outcomes; an outcomes file that exists must be valid."""
        day = as_day(day)
        file = self._day_file(OUTCOMES, day)
        if file is None:
            return iter(())
        return _read_validated(file, OUTCOMES, day)

    def describe(self) -> str:
        return f"landing folder {self.path}"

    def _candidate(self, table: TableSchema, day: date, suffix: str) -> Path:
        return Path(self.path) / table.name / f"{day.isoformat()}{suffix}"

    def _day_file(self, table: TableSchema, day: date) -> Path | None:
        found = [p for p in (self._candidate(table, day, s) for s in FILE_SUFFIXES) if p.is_file()]
        if len(found) > 1:
            raise SourceDataError(f"both {found[0]} and {found[1]} exist for {day}: keep only one")
        return found[0] if found else None


@dataclass
class _Tally:
    """How many rows fail one check, and the first of them."""

    rows: int = 0
    first_row: int = 0  # 1-based data row (the CSV header is not counted)
    example: object = None

    def add(self, failing: np.ndarray, values: pd.Series, offset: int) -> None:
        count = int(failing.sum())
        if count and not self.rows:
            first = int(np.argmax(failing))
            self.first_row, self.example = offset + first + 1, values.iloc[first]
        self.rows += count


@dataclass
class _Scan:
    rows: int = 0
    unconvertible: dict[str, _Tally] = field(default_factory=dict)
    nulls: dict[str, _Tally] = field(default_factory=dict)
    wrong_day: _Tally = field(default_factory=_Tally)
    ids: list[pa.Array] = field(default_factory=list)


class _NumbersDoNotParse(Exception):
    """A CSV number column holds something else; only a read as text can say which rows and how many."""


def _read_validated(file: Path, table: TableSchema, day: date) -> Iterator[pd.DataFrame]:
    # CSV numbers parse far faster in the reader than cell by cell, so try that first.
    numbers_as_text = False
    try:
        scan = _scan(file, table, day, numbers_as_text)
    except _NumbersDoNotParse:
        numbers_as_text = True
        scan = _scan(file, table, day, numbers_as_text)
    problems = _problems(scan, table, day)
    if problems:
        raise SourceDataError(f"{file} is not a valid {table.name} file for {day}:\n  - " + "\n  - ".join(problems))
    with_nulls = {name for name, tally in scan.nulls.items() if tally.rows}
    return _chunks(file, table, with_nulls, numbers_as_text)


def _scan(file: Path, table: TableSchema, day: date, numbers_as_text: bool) -> _Scan:
    scan = _Scan()
    for column in table.columns:
        scan.unconvertible[column.name], scan.nulls[column.name] = _Tally(), _Tally()
    for raw in _raw_chunks(file, table, numbers_as_text):
        for column in table.columns:
            values, failing = _convert(raw[column.name], column)
            scan.unconvertible[column.name].add(failing, raw[column.name], scan.rows)
            scan.nulls[column.name].add((values.isna() & ~failing).to_numpy(), raw[column.name], scan.rows)
            if column.name == table.partition_column:
                scan.wrong_day.add((values.notna() & (values != pd.Timestamp(day))).to_numpy(), values, scan.rows)
            if column.name == table.id_column:
                scan.ids.append(pa.array(values.dropna(), type=pa.string()))
        scan.rows += len(raw)
    if not scan.rows:
        raise SourceDataError(f"{file} has a header but 0 data rows")
    return scan


def _problems(scan: _Scan, table: TableSchema, day: date) -> list[str]:
    problems = []
    for column in table.columns:
        bad = scan.unconvertible[column.name]
        if bad.rows:
            problems.append(
                f"column {column.name!r} ({column.dtype}): cannot convert {_rows(bad.rows)}, "
                f"e.g. data row {bad.first_row}: {bad.example!r}"
            )
        null = scan.nulls[column.name]
        if null.rows and not column.nullable:
            problems.append(
                f"column {column.name!r} must not be null but is null in {_rows(null.rows)}, "
                f"first at data row {null.first_row}"
            )
    if scan.wrong_day.rows:
        problems.append(
            f"column {table.partition_column!r}: {_rows(scan.wrong_day.rows)} of another day than the file's {day}, "
            f"e.g. data row {scan.wrong_day.first_row}: {scan.wrong_day.example:%Y-%m-%d}"
        )
    ids = pa.chunked_array(scan.ids, type=pa.string())
    counts = pc.value_counts(ids)
    repeated = pc.greater(counts.field("counts"), 1)
    if len(counts) < len(ids):
        example = counts.field("values").filter(repeated)[0].as_py()
        problems.append(
            f"column {table.id_column!r}: {_rows(len(ids) - len(counts))} repeating the id of an earlier row "
            f"({pc.sum(repeated).as_py()} distinct ids repeated), e.g. {example!r}"
        )
    return problems


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _chunks(file: Path, table: TableSchema, with_nulls: set[str], numbers_as_text: bool) -> Iterator[pd.DataFrame]:
    for raw in _raw_chunks(file, table, numbers_as_text):
        converted = {}
        for column in table.columns:
            values, _ = _convert(raw[column.name], column)
            if column.name not in with_nulls:
                values = values.astype(PANDAS_DTYPES[column.dtype])
            converted[column.name] = values.reset_index(drop=True)
        yield pd.DataFrame(converted)


def _raw_chunks(file: Path, table: TableSchema, numbers_as_text: bool) -> Iterator[pd.DataFrame]:
    """The file's schema columns, chunk by chunk, as read: CSV cells as strings, except numbers unless told."""
    if file.stat().st_size == 0:
        raise SourceDataError(f"{file} is empty (0 bytes)")
    wanted = table.column_names
    try:
        if file.suffix == ".csv":
            try:
                header = pd.read_csv(file, nrows=0, encoding="utf-8-sig").columns
            except pd.errors.EmptyDataError:
                raise SourceDataError(f"{file} is empty (no header)") from None
            _check_columns(file, table, header)
            yield from _csv_chunks(file, table, numbers_as_text)
        else:
            parquet = pq.ParquetFile(file)
            _check_columns(file, table, parquet.schema_arrow.names)
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
                yield batch.to_pandas(date_as_object=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException) as error:
        raise SourceDataError(f"{file} cannot be read as {file.suffix[1:].upper()}: {error}") from error


def _csv_chunks(file: Path, table: TableSchema, numbers_as_text: bool) -> Iterator[pd.DataFrame]:
    # INTEGER parses as float64 too: a non-whole number then fails in _convert, counted, as in the text read.
    numeric = () if numbers_as_text else ("DOUBLE", "INTEGER")
    dtypes = {c.name: "float64" if c.dtype in numeric else str for c in table.columns}
    reader = pd.read_csv(file, usecols=table.column_names, dtype=dtypes, chunksize=CHUNK_ROWS, encoding="utf-8-sig")
    with reader:
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except ValueError as error:
                if numbers_as_text or isinstance(error, pd.errors.ParserError):
                    raise
                raise _NumbersDoNotParse from error
            yield chunk


def _check_columns(file: Path, table: TableSchema, present: Iterable[str]) -> None:
    present = list(present)
    missing = [name for name in table.column_names if name not in present]
    if missing:
        raise SourceDataError(
            f"{file} lacks the {table.name} column(s) {', '.join(map(repr, missing))} "
            f"(it has: {', '.join(map(str, present))})"
        )


def _convert(raw: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray]:
    """The column in its pandas dtype (nullable variant for INTEGER/BOOLEAN) and a mask of values that fail."""
    present = raw.notna().to_numpy()
    if column.dtype == "VARCHAR":
        values = raw.astype(object).where(~present, raw.astype(str))
        text = pa.array(values, type=pa.string(), from_pandas=True)
        blank = pc.or_(pc.utf8_is_space(text), pc.equal(pc.utf8_length(text), 0))
        return values.mask(blank.fill_null(False).to_numpy(zero_copy_only=False)), np.zeros(len(raw), dtype=bool)
    if column.dtype in ("DOUBLE", "INTEGER"):
        numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        failing = present & ~np.isfinite(numbers)
        if column.dtype == "DOUBLE":
            return pd.Series(numbers, index=raw.index), failing
        failing |= present & ((numbers != np.round(numbers)) | (np.abs(numbers) >= 2.0**63))
        missing = ~present | failing
        whole = pd.arrays.IntegerArray(np.where(missing, 0, numbers).astype("int64"), missing)
        return pd.Series(whole, index=raw.index), failing
    if column.dtype == "BOOLEAN":
        if pd.api.types.is_bool_dtype(raw):
            values = raw.astype("boolean")
        else:
            values = raw.astype(str).str.strip().str.lower().map(_BOOLEAN_WORDS).where(present).astype("boolean")
        return values, present & values.isna().to_numpy()
    return _convert_datetime(raw, column, present)


def _convert_datetime(raw: pd.Series, column: Column, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_numeric_dtype(raw):  # epoch numbers are ambiguous (which unit?), so refuse them
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"), present
    if not pd.api.types.is_datetime64_any_dtype(raw):
        raw = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    if raw.dt.tz is not None:
        raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    values = raw.astype("datetime64[ns]")
    failing = present & values.isna().to_numpy()
    if column.dtype == "DATE":
        failing |= (values.notna() & (values != values.dt.normalize())).to_numpy()
        values = values.mask(failing)
    return values, failing
