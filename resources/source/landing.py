"""Reading any declared raw table from files dropped in a landing folder, strictly.

Layout: ``<landing>/<source>/<table>/<file_name>.csv|.parquet``, where ``file_name`` is the declaration's
template (default ``{day}``, e.g. ``2026-03-01``). Columns are matched by name; extra columns are dropped.

CSV is read strictly: a row with more or fewer fields than the header is an error naming its line; only an empty
cell is NULL (plus the table's declared ``null_markers``), so a state "NA" stays "NA". Cells are converted by the
declared type: numbers as numbers (an INTEGER must be whole), DATE and TIMESTAMP as ISO 8601 (a TIMESTAMP with an
offset is converted to UTC, one without is taken as UTC; a DATE must have no time of day), BOOLEAN as true/false,
t/f, yes/no, y/n or 1/0 in any case. A CSV whose last line has no final newline is refused: it may have been cut
while it was written (a cut inside the last field reads 537.21 as 53.0). Lines up to 512 MiB are read: the reader's
block grows to the file's longest line (measured first), and stays 16 MiB for ordinary files. In Parquet, NaN and
infinities are refused like CSV's "nan" (pandas would read a NaN as a missing value); nulls stay nulls.

Only a complete file is read, by the table's ``complete_when`` (see ``CompleteWhen``): one that is not complete yet,
or that changes while it is read, raises :class:`FileNotComplete` (the day has not arrived), never a rejection.

The file is read once, chunk by chunk; the caller stages the chunks and publishes nothing until the read has
finished without error (write, audit, publish), so a bad file raises :class:`SourceDataError` after the last
chunk at the latest, naming the file, the column, the rule and the count.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from resources.source import FileNotComplete
from resources.source.base import SourceDataError, count_rows
from resources.source.schema import MARKER, MASK, PANDAS_DTYPES, QUIET, Column, CompleteWhen, RawTable

CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 16 << 20  # pyarrow's CSV block for files whose lines are all shorter than half of it
MAX_CSV_LINE_BYTES = 512 << 20  # a longer CSV line is refused (pyarrow's block size is a 32-bit number)
FILE_SUFFIXES = (".csv", ".parquet")
# Names writers and copy tools give a file while they write it (``2026-03-01.csv.part``, ``2026-03-01.tmp``);
# names starting with "." are in progress too (rsync's ``.2026-03-01.csv.Xy12Ab``). Never read: the data file
# has its final name only.
IN_PROGRESS_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".filepart", ".crdownload", ".download", ".inprogress")
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

    def complete_file(self, table: RawTable, day: date) -> tuple[Path, FileState] | None:
        """The day's file and its state as checked, once its table's ``complete_when`` says it is complete; None
        when the day has no file. Raises :class:`FileNotComplete` when a file (or an in-progress name of it) is
        there but not complete yet."""
        file = self.file_for(table, day)
        if file is None:
            self._nothing_in_progress(table, day)
            return None
        state = FileState.of(file)
        reason = _not_complete(table.complete_when, file, state, day)
        if reason:
            raise FileNotComplete(f"{file} is not complete yet: {reason}", file)
        return file, state

    def _nothing_in_progress(self, table: RawTable, day: date) -> None:
        """A day without its file but with an in-progress name of it is being written, not missing: with
        ``missing_day: empty`` it would otherwise be published as a day without rows."""
        folder, stem = self.folder(table), table.file_name.format(day=day.isoformat())
        if not folder.is_dir():
            return
        markers = {
            table.complete_when.marker.format(file=p.name, day=day.isoformat()) for p in self.candidates(table, day)
        }
        writing = sorted(
            p.name
            for p in folder.iterdir()
            if p.name not in markers
            and (
                p.name.startswith(f".{stem}")
                or (p.name.startswith(stem) and p.name.lower().endswith(IN_PROGRESS_SUFFIXES))
            )
        )
        if writing:
            expected = " or ".join(str(p) for p in self.candidates(table, day))
            raise FileNotComplete(
                f"{expected} is not complete yet: {writing[0]} is still being written (an in-progress name; the "
                "day is read once the file has its final name)",
                folder / writing[0],
            )

    def read(self, table: RawTable, day: date, file: Path, state: FileState | None = None) -> Iterator[pd.DataFrame]:
        """The file's declared columns, converted, with ``ROW_COLUMN``; raises once the whole file is read if
        any cell failed to convert or any CSV row had the wrong number of fields, and :class:`FileNotComplete`
        (instead of any of those) if the file is not as it was in ``state`` (by default: when the read began)
        once it is read: a file still being written."""
        state = state or FileState.of(file)
        try:
            yield from self._converted(table, day, file)
        except SourceDataError as error:
            _unchanged_since(file, state, error)
            raise
        _unchanged_since(file, state)

    def _converted(self, table: RawTable, day: date, file: Path) -> Iterator[pd.DataFrame]:
        tallies = {c.name: _Tally() for c in table.file_columns}
        rows = 0
        for raw, not_finite in _raw_chunks(file, table):
            converted = {ROW_COLUMN: np.arange(rows + 1, rows + len(raw) + 1, dtype="int64")}
            for column in table.file_columns:
                values, failing = convert(raw[column.name], column)
                if column.name in not_finite:
                    failing = failing | not_finite[column.name]
                tallies[column.name].add(failing, raw[column.name], rows)
                converted[column.name] = values.reset_index(drop=True)
            if table.partition_from == "file_name":
                converted[table.partition_column] = np.full(len(raw), np.datetime64(day, "ns"))
            rows += len(raw)
            yield pd.DataFrame(converted)[[ROW_COLUMN, *table.column_names]]
        problems = [
            f"column {name!r} ({table.column(name).dtype}): cannot convert {count_rows(t.rows)}, "
            f"e.g. data row {t.first_row}: {MASK if table.column(name).sensitive else repr(t.example)}"
            for name, t in tallies.items()
            if t.rows
        ]
        if problems:
            raise SourceDataError(f"{file}: rule data_type:\n  - " + "\n  - ".join(problems))
        if not rows and table.missing_day != "empty":
            raise SourceDataError(f"{file} has a header but 0 data rows (declare missing_day: empty to allow this)")


@dataclass(frozen=True)
class FileState:
    """What two looks at a file compare: a file grown, rewritten or replaced between them differs."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, file: Path) -> FileState:
        stat = file.stat()
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ino)

    def age(self) -> float:
        """Seconds since the last modification (negative when it is in the future)."""
        return time.time() - self.mtime_ns / 1e9


def _not_complete(rule: CompleteWhen, file: Path, state: FileState, day: date) -> str | None:
    """Why ``file`` is not complete yet by ``rule``; None when it is."""
    if rule.rule == QUIET:
        return _within_quiet_period(rule, state)
    if rule.rule == MARKER:
        return _marker_missing(rule, file, state, day)
    return None  # rename: the final name exists, so the writer has renamed the whole file to it


def _within_quiet_period(rule: CompleteWhen, state: FileState) -> str | None:
    if rule.quiet_seconds <= 0:
        return None
    age = state.age()
    if age < 0:
        return (
            f"its modification time is {-age:.0f} s in the future (a clock ahead?); {rule.describe()} reads it once "
            f"it is {rule.quiet_seconds:g} s in the past"
        )
    if age < rule.quiet_seconds:
        return (
            f"modified {age:.0f} s ago, less than its quiet period ({rule.describe()}): a file still being written "
            "keeps changing"
        )
    return None


def _marker_missing(rule: CompleteWhen, file: Path, state: FileState, day: date) -> str | None:
    marker = file.with_name(rule.marker.format(file=file.name, day=day.isoformat()))
    try:
        marked = marker.stat().st_mtime_ns
    except FileNotFoundError:
        return f"its marker {marker.name} is missing ({rule.describe()}): the writer creates it once the file is whole"
    if state.mtime_ns > marked:
        return (
            f"it was modified after its marker {marker.name} was written ({rule.describe()}): rewritten since it was "
            "marked complete? The writer removes the marker before rewriting and creates it again after"
        )
    return None


def _unchanged_since(file: Path, state: FileState, cause: Exception | None = None) -> None:
    """Raise :class:`FileNotComplete` if ``file`` is no longer as it was in ``state`` (it was read while it was
    being written: whatever was read, or failed, is not the file)."""
    try:
        now = FileState.of(file)
    except FileNotFoundError:
        now = None
    if now == state:
        return
    if now is None:
        change = "it was removed or renamed"
    elif now.inode != state.inode:
        change = "it was replaced by another file"
    else:
        change = f"{state.size} bytes when the read began, {now.size} bytes after"
    raise FileNotComplete(f"{file} is not complete yet: it changed while it was read ({change})", file) from cause


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
            example = values.iloc[first]
            # A numpy scalar as a plain value: messages show nan, not np.float64(nan).
            self.first_row, self.example = (
                offset + first + 1,
                example.item() if isinstance(example, np.number | np.bool_) else example,
            )
        self.rows += count


@dataclass
class _BadRows:
    """CSV rows with the wrong number of fields, by line number (the header is line 1)."""

    lines: list[tuple[int | None, int, int]] = field(default_factory=list)

    def __call__(self, row) -> str:
        self.lines.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"


def _raw_chunks(file: Path, table: RawTable) -> Iterator[tuple[pd.DataFrame, dict[str, np.ndarray]]]:
    """The file's declared columns, chunk by chunk, as read (CSV cells as strings), each with the rows per column
    that hold NaN or an infinity where pandas cannot tell them from a null (Parquet floats)."""
    if file.stat().st_size == 0:
        raise SourceDataError(f"{file} is empty (0 bytes)")
    wanted = [c.name for c in table.file_columns]
    try:
        if file.suffix == ".csv":
            for chunk in _csv_chunks(file, table, wanted):
                yield chunk, {}
        else:
            parquet = pq.ParquetFile(file)
            _check_columns(file, table, parquet.schema_arrow.names)
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
                yield batch.to_pandas(date_as_object=False), _not_finite(batch)
    except (UnicodeDecodeError, pa.ArrowException, csv.Error) as error:
        raise SourceDataError(f"{file} cannot be read as {file.suffix[1:].upper()}: {error}") from error


def _not_finite(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """Per floating-point column holding any, the mask of its NaN and infinite values (nulls not among them):
    pandas reads a NaN as a missing value, so without this a Parquet NaN would be stored as NULL."""
    masks = {}
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_floating(values.type):
            mask = pc.fill_null(pc.invert(pc.is_finite(values)), False)
            if pc.any(mask).as_py():
                masks[name] = mask.to_numpy(zero_copy_only=False)
    return masks


def _csv_chunks(file: Path, table: RawTable, wanted: list[str]) -> Iterator[pd.DataFrame]:
    lines = _Lines.of(file)
    with file.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise SourceDataError(f"{file} is empty (no header)")
    _check_columns(file, table, header)
    bad = _BadRows()
    block = _block_bytes(file, lines)
    rows = 0
    try:
        reader = pacsv.open_csv(
            file,
            # use_threads=False: the invalid-row handler then learns each bad row's line number.
            read_options=pacsv.ReadOptions(block_size=block, use_threads=False, encoding="utf-8-sig"),
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
            rows += len(frame)
    except pa.ArrowInvalid as error:
        if "straddl" not in str(error):
            raise
        raise SourceDataError(_row_too_long(file, lines, block, rows + len(bad.lines) + 2)) from error
    problems = [_row_shape(bad)] if bad.lines else []
    if not lines.ends_with_newline:
        problems.append(
            f"rule final newline: the last line (line {lines.count}) has no newline at its end: the file may have "
            "been cut while it was written (a value cut inside the last field would be read wrong, e.g. 537.21 as "
            "53.0); if it is complete, end it with a newline"
        )
    if problems:
        raise SourceDataError(
            f"{file}: {problems[0]}" if len(problems) == 1 else f"{file}:\n  - " + "\n  - ".join(problems)
        )


def _row_shape(bad: _BadRows) -> str:
    expected = bad.lines[0][1]
    first = ", ".join(f"line {n} has {got} fields" for n, _, got in bad.lines[:3])
    return (
        f"rule row shape: {count_rows(len(bad.lines))} with other than the header's {expected} fields "
        f"({first}{', ...' if len(bad.lines) > 3 else ''}); a file cut short or a stray delimiter?"
    )


@dataclass(frozen=True)
class _Lines:
    """A CSV file's lines as bytes: how many, the longest (its newline included) and whether the last one ends."""

    count: int
    longest: int
    longest_at: int  # its line number, 1-based
    ends_with_newline: bool

    @classmethod
    def of(cls, file: Path) -> _Lines:
        """One pass over the file in blocks of ``CSV_BLOCK_BYTES`` with numpy (about 0.1 s per 100 MB once the
        file is cached, small beside the parse), memory bounded by the block whatever the lines."""
        count = longest = longest_at = line_start = offset = 0
        last = b""
        with file.open("rb") as handle:
            while block := handle.read(CSV_BLOCK_BYTES):
                ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")) + offset
                if len(ends):
                    lengths = np.diff(ends, prepend=line_start - 1)
                    at = int(np.argmax(lengths))
                    if lengths[at] > longest:
                        longest, longest_at = int(lengths[at]), count + at + 1
                    count, line_start = count + len(ends), int(ends[-1]) + 1
                offset += len(block)
                last = block[-1:]
        tail = offset - line_start  # bytes after the last newline
        if tail:
            count += 1
            if tail > longest:
                longest, longest_at = tail, count
        return cls(count, longest, longest_at, ends_with_newline=not tail or last == b"\r")


def _block_bytes(file: Path, lines: _Lines) -> int:
    """pyarrow's CSV reader fails ("straddling object straddles two block boundaries") on a row longer than its
    block, so the block is twice the longest line when that is more than ``CSV_BLOCK_BYTES``: ordinary files keep
    16 MiB blocks (bounded memory), a file with a 50 MB cell is read in 100 MB blocks."""
    if 2 * lines.longest <= CSV_BLOCK_BYTES:
        return CSV_BLOCK_BYTES
    if lines.longest > MAX_CSV_LINE_BYTES:
        raise SourceDataError(
            f"{file}: line {lines.longest_at} is {lines.longest / 2**20:.0f} MiB long, more than the "
            f"{MAX_CSV_LINE_BYTES >> 20} MiB a CSV line may have here: deliver the day as Parquet, or keep such "
            "values out of the file"
        )
    return 2 * lines.longest


def _row_too_long(file: Path, lines: _Lines, block: int, near_line: int) -> str:
    return (
        f"{file}: a row near line {near_line} is longer than the reader's block of {block / 2**20:.0f} MiB (the "
        f"longest line is line {lines.longest_at}, {lines.longest / 2**20:.1f} MiB): a quoted value holding "
        "newlines? Deliver the day as Parquet, or keep newlines out of the values"
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
