"""Only complete landing files land, and every value lands as the file says or is a named error.

A table's ``complete_when`` (quiet period by default, marker file, or atomic rename) says when a day's file is
complete; a file that is not complete yet, or that changes while it is read, is "not yet arrived": nothing of the
day is published (not even an empty day), what was stored is kept, no rejection is recorded, and a later run reads
the file. A CSV whose last line has no newline is refused as possibly cut; NaN and infinities in Parquet are
refused like CSV's "nan"; a 50 MB cell is read whole.

No test depends on timing: a recent modification is set with ``os.utime``, and a file grows from inside the
reading generator's own iteration, in the same process.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from assets.partitions import build_daily_partitions
from assets.raw import REJECTED_FILES, build_raw_assets
from assets.raw.wap import ingest_day
from resources.build import build_resources
from resources.source import FileNotComplete, RawSources, SourceDataError, SourceDay, SyntheticSource
from resources.source import landing as landing_module
from resources.source.declarations import DeclarationError, load_raw_tables
from resources.source.landing import CSV_BLOCK_BYTES, ROW_COLUMN, LandingFolder
from resources.source.schema import LANDING, MARKER, QUIET, RENAME, CompleteWhen, RawTable
from resources.warehouse import DuckDBWarehouse
from tests.stores import point_stores_at

DAY = date(2026, 3, 1)
OUTCOME_DAY = DAY + timedelta(days=30)
ROWS = 40
QUIET_NOW = CompleteWhen(quiet_seconds=0)  # for files each test writes whole before it reads them


@pytest.fixture(scope="module")
def declared(dbt_manifest) -> dict[str, RawTable]:
    """The loan tables as declared (origin synthetic_loans, so the default ``complete_when``), from a landing
    folder instead."""
    tables = load_raw_tables(dbt_manifest)
    return {name: dataclasses.replace(tables[f"raw.{name}"], origin=LANDING) for name in ("applications", "outcomes")}


def _table(declared: dict[str, RawTable], name: str = "applications", **rule) -> RawTable:
    return dataclasses.replace(declared[name], complete_when=CompleteWhen(**rule)) if rule else declared[name]


def applications(day: date = DAY, rows: int = ROWS) -> pd.DataFrame:
    return pd.concat(SyntheticSource(rows_per_day=rows).applications(day), ignore_index=True)


def _sources(tmp_path: Path) -> RawSources:
    return RawSources(landing_dir=str(tmp_path / "landing"), synthetic_loans=SyntheticSource())


def _warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))


def _path(tmp_path: Path, day: date = DAY, suffix: str = ".csv", of: str = "applications") -> Path:
    path = tmp_path / "landing" / "raw" / of / f"{day.isoformat()}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write(tmp_path: Path, frame: pd.DataFrame, day: date = DAY, suffix: str = ".csv", **kw) -> Path:
    path = _path(tmp_path, day, suffix, **kw)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _modified_ago(path: Path, seconds: float) -> None:
    """As if the file was last written ``seconds`` ago."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def _read(tmp_path: Path, table: RawTable, day: date = DAY) -> pd.DataFrame:
    read = _sources(tmp_path).read(table, day)
    assert read.chunks is not None, read.origin
    return pd.concat(list(read.chunks), ignore_index=True).drop(columns=[ROW_COLUMN])


def _stored(tmp_path: Path, table: RawTable, day: date = DAY) -> int:
    column = table.partition_column
    sql = f"SELECT count(*) AS n FROM {table.qualified} WHERE {column} = DATE '{day.isoformat()}'"
    return int(_warehouse(tmp_path).query(sql)["n"][0])


def _store(tmp_path: Path, table: RawTable, frame: pd.DataFrame, day: date = DAY, **kw) -> None:
    """A complete day, written long ago and published."""
    _modified_ago(_write(tmp_path, frame, day, **kw), 3600)
    result = ingest_day(table, day, _sources(tmp_path), _warehouse(tmp_path), "store")
    assert (result.problems, result.rows) == (None, len(frame))


def _skipped(tmp_path: Path, table: RawTable, day: date = DAY, source=None) -> str:
    """Ingest the day; assert it was skipped as not yet arrived (not rejected, nothing recorded) and say why."""
    warehouse = _warehouse(tmp_path)
    result = ingest_day(table, day, source or _sources(tmp_path), warehouse, "skip")
    assert result.problems and not result.arrived, result
    assert result.rows == 0 and result.problems.startswith("not yet arrived: ")
    assert "nothing of" in result.problems and "what was stored for it is kept" in result.problems
    assert not warehouse.table_exists(REJECTED_FILES)
    return result.problems


# --- the contract as declared ------------------------------------------------------------------------------------


def test_the_default_is_a_quiet_period_of_60_seconds(declared):
    assert declared["applications"].complete_when == CompleteWhen(QUIET, 60) == CompleteWhen()


@pytest.fixture(scope="module")
def outcomes_node(dbt_manifest) -> dict:
    """The real manifest's raw.outcomes node, as a landing table."""
    node = json.loads(Path(dbt_manifest).read_text())["sources"]["source.nightjar.raw.outcomes"]
    node["config"]["meta"]["nightjar"]["origin"] = LANDING
    return node


def _load(tmp_path: Path, node: dict, **nightjar) -> dict[str, RawTable]:
    node = copy.deepcopy(node)
    node["config"]["meta"]["nightjar"].update(nightjar)
    node["meta"]["nightjar"] = node["config"]["meta"]["nightjar"]
    path = tmp_path / "project" / "target" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sources": {node["unique_id"]: node}}))
    return load_raw_tables(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (QUIET, CompleteWhen()),
        ({"quiet_seconds": 0}, CompleteWhen(QUIET, 0)),
        ({"quiet_seconds": 300}, CompleteWhen(QUIET, 300)),
        (MARKER, CompleteWhen(MARKER)),
        ({"marker": "_SUCCESS_{day}"}, CompleteWhen(MARKER, marker="_SUCCESS_{day}")),
        (RENAME, CompleteWhen(RENAME)),
    ],
)
def test_complete_when_declared(tmp_path, outcomes_node, value, expected):
    assert _load(tmp_path, outcomes_node, complete_when=value)["raw.outcomes"].complete_when == expected


BAD_COMPLETE_WHEN = {
    "unknown-word": ({"complete_when": "sometimes"}, "meta.nightjar.complete_when", "'sometimes' must be 'quiet'"),
    "unknown-setting": ({"complete_when": {"wait": 5}}, "meta.nightjar.complete_when", "quiet_seconds"),
    "negative-quiet": (
        {"complete_when": {"quiet_seconds": -1}},
        "meta.nightjar.complete_when.quiet_seconds",
        "-1 must be a number of seconds",
    ),
    "quiet-as-text": (
        {"complete_when": {"quiet_seconds": "60s"}},
        "meta.nightjar.complete_when.quiet_seconds",
        "'60s'",
    ),
    "marker-for-every-day": (
        {"complete_when": {"marker": "done"}},
        "meta.nightjar.complete_when.marker",
        "'{file}'",
    ),
    "marker-is-the-data-file": (
        {"complete_when": {"marker": "{day}.csv"}},
        "meta.nightjar.complete_when.marker",
        "not the data file's own name",
    ),
    "on-a-generator": (
        {"complete_when": RENAME, "origin": "synthetic_loans"},
        "meta.nightjar.complete_when",
        "needs origin 'landing'",
    ),
}


@pytest.mark.parametrize(("settings", "field_name", "what"), BAD_COMPLETE_WHEN.values(), ids=BAD_COMPLETE_WHEN.keys())
def test_a_bad_complete_when_names_the_file_the_table_and_the_field(
    tmp_path, outcomes_node, settings, field_name, what
):
    with pytest.raises(DeclarationError) as error:
        _load(tmp_path, outcomes_node, **settings)
    message = str(error.value)
    yaml_file = tmp_path / "project" / "models" / "staging" / "loans" / "__sources.yml"
    assert message.startswith(f"{yaml_file}: table raw.outcomes: field '{field_name}'"), message
    assert what in message, message


# --- quiet period (the default) ----------------------------------------------------------------------------------


def test_a_file_modified_within_the_quiet_period_has_not_arrived_and_the_stored_day_is_kept(tmp_path, declared):
    table = _table(declared)  # the default: 60 s
    stored = applications()
    _store(tmp_path, table, stored)
    # The same day again, half written: its first 19 rows, modified 5 s ago.
    path = _write(tmp_path, stored.head(19))
    _modified_ago(path, 5)
    with pytest.raises(FileNotComplete) as waiting:
        _sources(tmp_path).read(table, DAY)
    assert str(path) in str(waiting.value) and "modified 5 s ago" in str(waiting.value)
    assert "quiet_seconds: 60" in str(waiting.value)
    problems = _skipped(tmp_path, table)
    assert str(path) in problems and "not complete yet: modified 5 s ago" in problems
    assert _stored(tmp_path, table) == ROWS
    # Once it has been quiet for the period, the next run reads it.
    _modified_ago(path, 61)
    result = ingest_day(table, DAY, _sources(tmp_path), _warehouse(tmp_path), "later")
    assert (result.problems, result.rows, result.arrived) == (None, 19, True)


def test_the_quiet_period_is_settable_and_0_reads_a_file_at_once(tmp_path, declared):
    path = _write(tmp_path, applications())
    _modified_ago(path, 100)
    with pytest.raises(FileNotComplete, match="modified 100 s ago"):
        _sources(tmp_path).read(_table(declared, quiet_seconds=300), DAY)
    _modified_ago(path, 0)
    assert len(_read(tmp_path, _table(declared, quiet_seconds=0))) == ROWS


def test_a_modification_time_in_the_future_is_not_quiet(tmp_path, declared):
    _modified_ago(_write(tmp_path, applications()), -600)
    with pytest.raises(FileNotComplete, match="600 s in the future"):
        _sources(tmp_path).read(_table(declared), DAY)


def test_a_file_not_complete_is_never_an_empty_day_even_with_missing_day_empty(tmp_path, declared):
    table = _table(declared, "outcomes")
    assert table.missing_day == "empty"
    frame = pd.concat(SyntheticSource(rows_per_day=ROWS).outcomes(OUTCOME_DAY), ignore_index=True)
    _store(tmp_path, table, frame, OUTCOME_DAY, of="outcomes")
    _modified_ago(_write(tmp_path, frame.iloc[:0], OUTCOME_DAY, of="outcomes"), 1)  # only its header so far
    assert "not complete yet" in _skipped(tmp_path, table, OUTCOME_DAY)
    assert _stored(tmp_path, table, OUTCOME_DAY) == len(frame)


# --- a file that grows while it is read --------------------------------------------------------------------------


def _first_rows_then_the_rest(tmp_path: Path) -> tuple[Path, str]:
    """The day's file with its first 19 rows and part of the 20th, as a writer leaves it mid-write; and the rest."""
    text = applications().to_csv(index=False)
    cut = text.index("\n", text.index("\n", 0) + 1)  # after the header and the first row...
    for _ in range(18):
        cut = text.index("\n", cut + 1)  # ...and 18 more rows
    cut += 25  # inside the 20th row
    path = _path(tmp_path)
    path.write_text(text[:cut])
    return path, text[cut:]


def _appending_after_the_first_chunk(chunks, path: Path, rest: str):
    """The chunks as read, while a writer appends ``rest`` once the first chunk is out."""
    for i, chunk in enumerate(chunks):
        yield chunk
        if i == 0:
            with path.open("a") as handle:
                handle.write(rest)


def test_a_file_growing_while_it_is_read_has_not_arrived(tmp_path, declared):
    table = _table(declared, quiet_seconds=0)  # the quiet period cannot see it: the file grows during the read
    path, rest = _first_rows_then_the_rest(tmp_path)
    chunks = LandingFolder(tmp_path / "landing").read(table, DAY, path)
    with pytest.raises(FileNotComplete) as waiting:
        list(_appending_after_the_first_chunk(chunks, path, rest))
    message = str(waiting.value)
    assert str(path) in message and "changed while it was read" in message and "bytes after" in message
    # Read alone, the half-written file would have been refused as cut (a rejection): growth wins over that.
    assert isinstance(waiting.value.__cause__, SourceDataError) and "row shape" in str(waiting.value.__cause__)


class _AppendingSource:
    """The real landing source, while a writer appends the rest of the day's file during the ingest's read."""

    def __init__(self, source: RawSources, rest: str) -> None:
        self.source, self.rest = source, rest

    def portable(self) -> "_AppendingSource":
        return self  # read in this process (DuckDB)

    def read(self, table: RawTable, day: date) -> SourceDay:
        read = self.source.read(table, day)
        return dataclasses.replace(read, chunks=_appending_after_the_first_chunk(read.chunks, read.file, self.rest))


def test_a_file_growing_during_the_ingest_never_replaces_the_stored_day(tmp_path, declared):
    table = _table(declared, quiet_seconds=0)
    _store(tmp_path, table, applications())
    path, rest = _first_rows_then_the_rest(tmp_path)
    problems = _skipped(tmp_path, table, source=_AppendingSource(_sources(tmp_path), rest))
    assert str(path) in problems and "changed while it was read" in problems
    assert _stored(tmp_path, table) == ROWS
    # The file is whole now: the next run publishes all of it.
    result = ingest_day(table, DAY, _sources(tmp_path), _warehouse(tmp_path), "next")
    assert (result.problems, result.rows) == (None, ROWS)


def test_a_run_says_the_day_is_not_complete_yet_and_keeps_the_stored_day(tmp_path, monkeypatch, declared):
    """Through Dagster, with no retries left: the step fails naming the file and why, the stored day is untouched,
    nothing is recorded as rejected; a later run of the day publishes it."""
    monkeypatch.setattr("assets.raw.raw_assets.NOT_ARRIVED_RETRIES", 0)
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_LANDING_DIR=str(tmp_path / "landing"))
    table = _table(declared)
    assets = build_raw_assets([table], build_daily_partitions(settings), settings.warehouse_kind)
    built = build_resources(settings)
    resources = {k: built[k] for k in ("source", "warehouse", "alerts")}
    _modified_ago(_write(tmp_path, applications()), 3600)
    assert dg.materialize(assets, resources=resources, partition_key=DAY.isoformat()).success

    _modified_ago(_write(tmp_path, applications().head(19)), 2)
    result = dg.materialize(assets, resources=resources, partition_key=DAY.isoformat(), raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "not yet arrived" in message and "not complete yet: modified 2 s ago" in message
    warehouse = resources["warehouse"]
    count = f"SELECT count(*) AS n FROM raw.applications WHERE application_date = DATE '{DAY.isoformat()}'"
    assert int(warehouse.query(count)["n"][0]) == ROWS
    assert not warehouse.table_exists(REJECTED_FILES)


# --- marker ------------------------------------------------------------------------------------------------------


def test_marker_a_file_is_read_once_its_marker_is_there(tmp_path, declared):
    table = _table(declared, rule=MARKER)
    path = _write(tmp_path, applications())
    _modified_ago(path, 3600)  # however old the file, without its marker it is not complete
    with pytest.raises(FileNotComplete, match=r"its marker 2026-03-01\.csv\.done is missing"):
        _sources(tmp_path).read(table, DAY)
    marker = path.with_name("2026-03-01.csv.done")
    marker.touch()
    assert len(_read(tmp_path, table)) == ROWS  # at once: no quiet period
    # Rewritten after its marker: not complete again until the marker is renewed.
    _write(tmp_path, applications().head(5))
    _modified_ago(marker, 10)
    with pytest.raises(FileNotComplete, match="modified after its marker"):
        _sources(tmp_path).read(table, DAY)
    marker.touch()
    assert len(_read(tmp_path, table)) == 5


def test_marker_named_by_the_declaration(tmp_path, declared):
    table = _table(declared, rule=MARKER, marker="_SUCCESS_{day}")
    path = _write(tmp_path, applications())
    _skipped(tmp_path, table)
    path.with_name(f"_SUCCESS_{DAY.isoformat()}").touch()
    assert len(_read(tmp_path, table)) == ROWS


# --- rename ------------------------------------------------------------------------------------------------------


def test_rename_in_progress_names_are_never_read_and_the_final_name_is_read_at_once(tmp_path, declared):
    table = _table(declared, rule=RENAME)
    final = _path(tmp_path)
    part = final.with_name(final.name + ".part")
    applications().to_csv(part, index=False)
    _modified_ago(part, 3600)  # however old: until it has its final name, it is not complete
    problems = _skipped(tmp_path, table)
    assert "2026-03-01.csv.part is still being written" in problems
    os.replace(part, final)
    # Beside a final file, an in-progress name (a new version on its way) is ignored, and never read.
    final.with_name(".2026-03-01.csv.Xy12Ab").write_text("not,a,csv\n")
    final.with_name("2026-03-01.csv.tmp").write_text("not,a,csv\n")
    os.utime(final)  # just renamed
    pd.testing.assert_frame_equal(_read(tmp_path, table), applications())  # read at once, all of it


def test_rename_an_in_progress_file_is_not_an_empty_day_with_missing_day_empty(tmp_path, declared):
    table = _table(declared, "outcomes", rule=RENAME)
    frame = pd.concat(SyntheticSource(rows_per_day=ROWS).outcomes(OUTCOME_DAY), ignore_index=True)
    _store(tmp_path, table, frame, OUTCOME_DAY, of="outcomes")
    _path(tmp_path, OUTCOME_DAY, of="outcomes").unlink()
    temp = _path(tmp_path, OUTCOME_DAY, ".tmp", of="outcomes")
    frame.to_csv(temp, index=False)
    assert f"{temp.name} is still being written" in _skipped(tmp_path, table, OUTCOME_DAY)
    assert _stored(tmp_path, table, OUTCOME_DAY) == len(frame)
    temp.unlink()  # no file at all: missing_day empty publishes the day without rows, as before
    result = ingest_day(table, OUTCOME_DAY, _sources(tmp_path), _warehouse(tmp_path), "empty")
    assert (result.problems, result.rows) == (None, 0)


# --- values as the file says -------------------------------------------------------------------------------------


def test_a_csv_cut_inside_its_last_field_is_refused(tmp_path, declared):
    table = _table(declared, quiet_seconds=0)
    frame = applications()
    frame = frame[[c for c in frame.columns if c != "loan_amount"] + ["loan_amount"]]  # a number last
    frame.loc[ROWS - 1, "loan_amount"] = 537.21
    text = frame.to_csv(index=False)
    assert text.endswith(",537.21\n")
    path = _path(tmp_path)
    path.write_text(text[: -len("7.21\n")])  # cut inside the last field: every row still has all its fields
    message = _refusal(tmp_path, table)
    assert str(path) in message and "rule final newline" in message
    assert f"the last line (line {ROWS + 1}) has no newline at its end" in message and "cut" in message


def test_a_csv_without_a_final_newline_is_refused_even_when_whole(tmp_path, declared):
    table = _table(declared, quiet_seconds=0)
    path = _path(tmp_path)
    path.write_text(applications().to_csv(index=False).rstrip("\n"))
    with pytest.raises(SourceDataError, match="has no newline at its end"):
        _read(tmp_path, table)
    path.write_text(path.read_text() + "\r\n")  # ended: read
    assert len(_read(tmp_path, table)) == ROWS


def _refusal(tmp_path: Path, table: RawTable) -> str:
    result = ingest_day(table, DAY, _sources(tmp_path), _warehouse(tmp_path), "refuse")
    assert result.problems and result.arrived and result.rows == 0
    return result.problems


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("annual_income", np.nan, "nan"),
        ("loan_amount", np.inf, "inf"),
        ("interest_rate", -np.inf, "-inf"),
        ("credit_score", np.nan, "nan"),  # an INTEGER column delivered as floats
    ],
)
def test_parquet_nan_and_infinity_are_refused_like_csv(tmp_path, declared, column, value, shown):
    table = _table(declared, quiet_seconds=0)
    frame = applications().astype({column: "float64"})
    frame.loc[3, column] = value
    frame.loc[5, column] = value
    frame.loc[8, column] = None  # a null among them stays a null, not a failure
    path = _path(tmp_path, suffix=".parquet")
    _write_parquet_keeping_nan(frame, column, nulls=[8], path=path)
    message = _refusal(tmp_path, table)
    assert str(path) in message and "rule data_type" in message and f"'{column}'" in message
    assert f"cannot convert 2 rows, e.g. data row 4: {shown}" in message
    # The same as CSV text.
    path.unlink()
    cells = frame[column].map(str)  # NaN as "nan" (pandas would write an empty cell)...
    cells[8] = ""  # ...and the null as an empty cell
    _write(tmp_path, frame.assign(**{column: cells}))
    assert f"cannot convert 2 rows, e.g. data row 4: '{shown}'" in _refusal(tmp_path, table)


def _write_parquet_keeping_nan(frame: pd.DataFrame, column: str, nulls: list[int], path: Path) -> None:
    """``frame`` as Parquet with ``column``'s NaN kept as NaN (pandas would write NULL) and ``nulls`` as NULL."""
    values = frame[column].to_numpy(dtype="float64")
    mask = np.zeros(len(values), dtype=bool)
    mask[nulls] = True
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, mask=mask))
    pq.write_table(table, path)
    written = pq.read_table(path)[column]
    assert written.null_count == len(nulls) and pc.sum(pc.invert(pc.is_finite(written))).as_py() == 2


def test_parquet_nulls_stay_nulls(tmp_path, declared):
    table = _table(declared, quiet_seconds=0)
    frame = applications()
    frame.loc[[2, 7], "annual_income"] = None
    _write(tmp_path, frame, suffix=".parquet")
    read = _read(tmp_path, table)
    assert read["annual_income"].isna().tolist() == [i in (2, 7) for i in range(ROWS)]


BIG_CELL = 50_000_000


@pytest.fixture(scope="module")
def big_cell_csv(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A valid CSV whose row 7 holds a 50 MB text cell (its 'state'), in a landing folder."""
    root = tmp_path_factory.mktemp("big")
    frame = applications()
    frame.loc[6, "state"] = "x" * (BIG_CELL - 1) + "y"
    path = _path(root)
    frame.to_csv(path, index=False)
    return root, frame


def test_a_50_mb_cell_is_read_whole(big_cell_csv, declared):
    root, frame = big_cell_csv
    table = _table(declared, quiet_seconds=0)
    read = _read(root, table)
    assert len(read) == ROWS and len(read.loc[6, "state"]) == BIG_CELL and read.loc[6, "state"].endswith("xy")
    pd.testing.assert_frame_equal(read, frame)
    # Through the warehouse too.
    result = ingest_day(table, DAY, _sources(root), _warehouse(root), "big")
    assert (result.problems, result.rows) == (None, ROWS)
    assert _warehouse(root).query("SELECT max(length(state)) AS n FROM raw.applications")["n"][0] == BIG_CELL


def test_ordinary_csv_files_keep_the_usual_block(tmp_path, declared):
    """Memory stays bounded: only a file whose lines need it gets a larger block than 16 MiB."""
    path = _write(tmp_path, applications(rows=20_000))
    lines = landing_module._Lines.of(path)
    assert lines.count == 20_001 and lines.ends_with_newline
    assert landing_module._block_bytes(path, lines) == CSV_BLOCK_BYTES


def test_a_line_too_long_to_read_names_the_file_and_the_line(big_cell_csv, declared, monkeypatch):
    root, _ = big_cell_csv
    monkeypatch.setattr(landing_module, "MAX_CSV_LINE_BYTES", 10 << 20)  # the real limit is 512 MiB
    with pytest.raises(SourceDataError) as refused:
        _read(root, _table(declared, quiet_seconds=0))
    message = str(refused.value)
    assert str(_path(root)) in message and "line 8 is 48 MiB long" in message and "Parquet" in message


def test_a_run_waits_out_the_quiet_period_and_then_publishes_the_day(tmp_path, monkeypatch, declared):
    """A file still inside its quiet period is not an error: the step asks Dagster to run it again once the period
    has passed, and then publishes it, in the same run."""
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_LANDING_DIR=str(tmp_path / "landing"))
    table = _table(declared, quiet_seconds=1)
    assets = build_raw_assets([table], build_daily_partitions(settings), settings.warehouse_kind)
    built = build_resources(settings)
    resources = {k: built[k] for k in ("source", "warehouse", "alerts")}
    _modified_ago(_write(tmp_path, applications()), 0)  # written just now: inside its quiet period of 1 s
    result = dg.materialize(assets, resources=resources, partition_key=DAY.isoformat())
    assert result.success
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retried, "the step did not wait for the quiet period"
    count = f"SELECT count(*) AS n FROM raw.applications WHERE application_date = DATE '{DAY.isoformat()}'"
    assert int(resources["warehouse"].query(count)["n"][0]) == ROWS
