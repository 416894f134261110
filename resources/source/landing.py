"""Reading any declared raw table from files dropped in a landing folder, strictly.

Layout: ``<landing>/<source>/<table>/<file_name>.csv|.parquet``, where ``file_name`` is the declaration's
template (default ``{day}``, e.g. ``2026-03-01``). Columns are matched by name; extra columns are dropped.

CSV is read strictly: a row with more or fewer fields than the header is an error naming its line; only an empty
cell is NULL (plus the table's declared ``null_markers``), so a state "NA" stays "NA". Cells are converted by the
declared type: numbers as numbers (an INTEGER must be whole), DATE and TIMESTAMP as ISO 8601 (a TIMESTAMP with an
offset is converted to UTC, one without is taken as UTC; a DATE must have no time of day), BOOLEAN as true/false,
t/f, yes/no, y/n or 1/0 in any case.

The file is read once, chunk by chunk; the caller stages the chunks and publishes nothing until the read has
finished without error (write, audit, publish), so a bad file raises :class:`SourceDataError` after the last
chunk at the latest, naming the file, the column, the rule and the count.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from resources.source.base import SourceDataError, count_rows
from resources.source.schema import PANDAS_DTYPES, Column, RawTable

CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 16 << 20
FILE_SUFFIXES = (".csv", ".parquet")
ROW_COLUMN = "_nightjar_row"  # 1-based data row of the file (the CSV header not counted), for messages
_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


class LandingFolder:
    """Files of one landing folder; see the module docstring for the rules."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def folder(self, table: RawTable) -> Path:
        return self.path / table.source / table.name

    def candidates(self, table: RawTable, day: date) -> list[Path]:
        stem = table.file_name.format(day=day.isoformat())
        return [self.folder(table) / f"{stem}{suffix}" for suffix in FILE_SUFFIXES]

    def file_for(self, table: RawTable, day: date) -> Path | None:
        found = [p for p in self.candidates(table, day) if p.is_file()]
        if len(found) > 1:
            raise SourceDataError(f"both {found[0]} and {found[1]} exist for {table.label} {day}: keep only one")
        return found[0] if found else None

    def read(self, table: RawTable, day: date, file: Path) -> Iterator[pd.DataFrame]:
        """The file's declared columns, converted, with ``ROW_COLUMN``; raises once the whole file is read if
        any cell failed to convert or any CSV row had the wrong number of fields."""
        tallies = {c.name: _Tally() for c in table.file_columns}
        rows = 0
        for raw in _raw_chunks(file, table):
            converted = {ROW_COLUMN: np.arange(rows + 1, rows + len(raw) + 1, dtype="int64")}
            for column in table.file_columns:
                values, failing = convert(raw[column.name], column)
                tallies[column.name].add(failing, raw[column.name], rows)
                converted[column.name] = values.reset_index(drop=True)
            if table.partition_from == "file_name":
                converted[table.partition_column] = np.full(len(raw), np.datetime64(day, "ns"))
            rows += len(raw)
            yield pd.DataFrame(converted)[[ROW_COLUMN, *table.column_names]]
        problems = [
            f"column {name!r} ({table.column(name).dtype}): cannot convert {count_rows(t.rows)}, "
            f"e.g. data row {t.first_row}: {t.example!r}"
            for name, t in tallies.items()
            if t.rows
        ]
        if problems:
            raise SourceDataError(f"{file}: rule data_type:\n  - " + "\n  - ".join(problems))
        if not rows and table.missing_day != "empty":
            raise SourceDataError(f"{file} has a header but 0 data rows (declare missing_day: empty to allow this)")


@dataclass
class _Tally:
    """How many rows fail one check, and the first of them."""

    rows: int = 0
    first_row: int = 0
    example: object = None

    def add(self, failing: np.ndarray, values: pd.Series, offset: int) -> None:
        count = int(failing.sum())
        if count and not self.rows:
            first = int(np.argmax(failing))
            self.first_row, self.example = offset + first + 1, values.iloc[first]
        self.rows += count


@dataclass
class _BadRows:
    """CSV rows with the wrong number of fields, by line number (the header is line 1)."""

    lines: list[tuple[int | None, int, int]] = field(default_factory=list)

    def __call__(self, row) -> str:
        self.lines.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"


def _raw_chunks(file: Path, table: RawTable) -> Iterator[pd.DataFrame]:
    """The file's declared columns, chunk by chunk, as read: CSV cells as strings."""
    if file.stat().st_size == 0:
        raise SourceDataError(f"{file} is empty (0 bytes)")
    wanted = [c.name for c in table.file_columns]
    try:
        if file.suffix == ".csv":
            yield from _csv_chunks(file, table, wanted)
        else:
            parquet = pq.ParquetFile(file)
            _check_columns(file, table, parquet.schema_arrow.names)
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
                yield batch.to_pandas(date_as_object=False)
    except (UnicodeDecodeError, pa.ArrowException, csv.Error) as error:
        raise SourceDataError(f"{file} cannot be read as {file.suffix[1:].upper()}: {error}") from error


def _csv_chunks(file: Path, table: RawTable, wanted: list[str]) -> Iterator[pd.DataFrame]:
    with file.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise SourceDataError(f"{file} is empty (no header)")
    _check_columns(file, table, header)
    bad = _BadRows()
    reader = pacsv.open_csv(
        file,
        # use_threads=False: the invalid-row handler then learns each bad row's line number.
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False, encoding="utf-8-sig"),
        parse_options=pacsv.ParseOptions(invalid_row_handler=bad),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in wanted},
            include_columns=wanted,
            null_values=["", *table.null_markers],
            strings_can_be_null=True,
        ),
    )
    for batch in reader:
        frame = batch.to_pandas()
        for lo in range(0, len(frame), CHUNK_ROWS):
            yield frame.iloc[lo : lo + CHUNK_ROWS]
    if bad.lines:
        expected = bad.lines[0][1]
        first = ", ".join(f"line {n} has {got} fields" for n, _, got in bad.lines[:3])
        raise SourceDataError(
            f"{file}: rule row shape: {count_rows(len(bad.lines))} with other than the header's {expected} fields "
            f"({first}{', ...' if len(bad.lines) > 3 else ''}); a file cut short or a stray delimiter?"
        )


def _check_columns(file: Path, table: RawTable, present: list[str]) -> None:
    present = [str(p) for p in present]
    missing = [c.name for c in table.file_columns if c.name not in present]
    if missing:
        raise SourceDataError(
            f"{file} lacks the {table.label} column(s) {', '.join(map(repr, missing))} (it has: {', '.join(present)})"
        )
    repeated = sorted({p for p in present if present.count(p) > 1 and p in table.column_names})
    if repeated:
        raise SourceDataError(f"{file} has the column(s) {', '.join(map(repr, repeated))} more than once")


def convert(raw: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray]:
    """The column in its pandas dtype and a mask of values that do not convert. Nullable variants
    (``Int64``, ``boolean``) only where the column holds nulls."""
    present = raw.notna().to_numpy()
    if column.dtype == "VARCHAR":
        values = raw.astype(object).where(~present, raw.astype(str))
        return values, np.zeros(len(raw), dtype=bool)
    if column.dtype in ("DOUBLE", "INTEGER", "BIGINT"):
        numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        failing = present & ~np.isfinite(numbers)
        if column.dtype == "DOUBLE":
            return pd.Series(numbers, index=raw.index), failing
        limit = 2.0**31 if column.dtype == "INTEGER" else 2.0**63
        failing |= present & ((numbers != np.round(numbers)) | (np.abs(numbers) >= limit))
        missing = ~present | failing
        if not missing.any():
            return pd.Series(numbers.astype("int64"), index=raw.index), failing
        whole = pd.arrays.IntegerArray(np.where(missing, 0, numbers).astype("int64"), missing)
        return pd.Series(whole, index=raw.index), failing
    if column.dtype == "BOOLEAN":
        if pd.api.types.is_bool_dtype(raw):
            values = raw.astype("boolean")
        else:
            values = raw.astype(str).str.strip().str.lower().map(_BOOLEAN_WORDS).where(present).astype("boolean")
        failing = present & values.isna().to_numpy()
        if not (~present | failing).any():
            values = values.astype(PANDAS_DTYPES["BOOLEAN"])
        return values, failing
    return _convert_datetime(raw, column, present)


def _convert_datetime(raw: pd.Series, column: Column, present: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_numeric_dtype(raw):  # epoch numbers are ambiguous (which unit?), so refuse them
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"), present
    if not pd.api.types.is_datetime64_any_dtype(raw):
        # A value without an offset is UTC: said explicitly per value, because pandas reads a naive value in the
        # offset of an earlier value of the same column.
        text = raw.astype(str).str.strip()
        has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
        has_time = text.str.contains(r"^\d{4}-\d{2}-\d{2}[T ]\d", regex=True)
        text = text.where(has_offset, text.where(has_time, text + "T00:00:00") + "+00:00")
        raw = pd.to_datetime(text.where(present), errors="coerce", utc=True, format="ISO8601")
    if raw.dt.tz is not None:
        raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    values = raw.astype("datetime64[ns]")
    failing = present & values.isna().to_numpy()
    if column.dtype == "DATE":
        failing |= (values.notna() & (values != values.dt.normalize())).to_numpy()
        values = values.mask(failing)
    return values, failing
