"""The landing folder: good files read back exactly; every bad file is refused, naming the file, the column, the
rule and the count, and nothing of the day is published.

The loan tables are declared with origin synthetic_loans; these tests read them from a landing folder instead
(``dataclasses.replace(table, origin="landing")``), with ``complete_when: {quiet_seconds: 0}``: each test writes its
files whole before it reads them (the completeness rules are tested in ``test_landing_completeness.py``). Conversion and row-shape problems are found while the file is
read (``LandingFolder``), declared rules (nulls, keys, partition day, allowed values, ranges) by the SQL audit of
the staged day (``ingest_day``): ``_refusal`` goes through both, as the raw assets do."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from assets.raw.wap import ingest_day, ingest_window
from resources.settings import Settings
from resources.source import RawSources, SourceDataError, SyntheticSource, build_source
from resources.source.declarations import load_raw_tables
from resources.source.landing import ROW_COLUMN, LandingFolder
from resources.source.schema import LANDING, PANDAS_DTYPES, CompleteWhen, RawTable
from resources.warehouse import DuckDBWarehouse

DAY = date(2026, 3, 1)
OUTCOME_DAY = DAY + timedelta(days=30)


@pytest.fixture(scope="module")
def tables(dbt_manifest) -> dict[str, RawTable]:
    declared = load_raw_tables(dbt_manifest)
    return {
        name: dataclasses.replace(declared[f"raw.{name}"], origin=LANDING, complete_when=CompleteWhen(quiet_seconds=0))
        for name in ("applications", "outcomes")
    }


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    return _all(SyntheticSource(rows_per_day=200).applications(DAY))


@pytest.fixture(scope="module")
def outcomes() -> pd.DataFrame:
    return _all(SyntheticSource(rows_per_day=200).outcomes(OUTCOME_DAY))


def _all(chunks) -> pd.DataFrame:
    return pd.concat(list(chunks), ignore_index=True)


def _landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def _sources(tmp_path: Path) -> RawSources:
    return RawSources(landing_dir=str(_landing(tmp_path)), synthetic_loans=SyntheticSource())


def _warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))


def _write(tmp_path: Path, table: str, day: date, frame: pd.DataFrame, suffix: str = ".csv") -> Path:
    """A file where the landing layout wants it: <landing>/<source>/<table>/<day>.csv|.parquet."""
    path = _landing(tmp_path) / "raw" / table / f"{day.isoformat()}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _read(tmp_path: Path, table: RawTable, day: date) -> pd.DataFrame:
    """The day as the source resource reads it, without the row number the audit's messages use."""
    read = _sources(tmp_path).read(table, day)
    assert read.chunks is not None, read.origin
    chunks = list(read.chunks)
    assert all(list(c.columns) == [ROW_COLUMN, *table.column_names] for c in chunks)
    return _all(chunks).drop(columns=[ROW_COLUMN])


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as CSV cells, so a test can put any text in any column."""
    return frame.astype(str)


def _refusal(tmp_path: Path, table: RawTable, day: date = DAY) -> str:
    """Why ``ingest_day`` (read, stage, audit) rejects the day; asserts nothing of it was published."""
    warehouse = _warehouse(tmp_path)
    result = ingest_day(table, day, _sources(tmp_path), warehouse, "test-run")
    assert result.problems, f"{table.label} {day} was published ({result.rows} rows)"
    assert result.rows == 0
    if warehouse.table_exists(table.qualified):
        stored = warehouse.query(
            f"SELECT count(*) AS n FROM {table.qualified} WHERE {table.partition_column} = DATE '{day.isoformat()}'"
        )
        assert stored["n"][0] == 0
    return result.problems


def _assert_schema_dtypes(frame: pd.DataFrame, table: RawTable) -> None:
    assert list(frame.columns) == table.column_names
    assert {c.name: str(frame[c.name].dtype) for c in table.columns} == {
        c.name: PANDAS_DTYPES[c.dtype] for c in table.columns
    }


def test_landing_layout_is_source_table_day(tmp_path, tables):
    folder = LandingFolder(_landing(tmp_path))
    expected = _landing(tmp_path) / "raw" / "applications"
    assert folder.candidates(tables["applications"], DAY) == [
        expected / "2026-03-01.csv",
        expected / "2026-03-01.parquet",
    ]
    assert folder.file_for(tables["applications"], DAY) is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_day_reads_back_exactly(tmp_path, tables, applications, outcomes, suffix):
    _write(tmp_path, "applications", DAY, applications, suffix)
    _write(tmp_path, "outcomes", OUTCOME_DAY, outcomes, suffix)
    read_applications = _read(tmp_path, tables["applications"], DAY)
    read_outcomes = _read(tmp_path, tables["outcomes"], OUTCOME_DAY)
    _assert_schema_dtypes(read_applications, tables["applications"])
    _assert_schema_dtypes(read_outcomes, tables["outcomes"])
    pd.testing.assert_frame_equal(read_applications, applications)
    pd.testing.assert_frame_equal(read_outcomes, outcomes)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_day_is_published_by_ingest_day(tmp_path, tables, applications, suffix):
    path = _write(tmp_path, "applications", DAY, applications, suffix)
    result = ingest_day(tables["applications"], DAY, _sources(tmp_path), _warehouse(tmp_path), "test-run")
    assert (result.problems, result.rows, result.origin) == (None, len(applications), str(path))
    stored = _warehouse(tmp_path).query("SELECT * FROM raw.applications ORDER BY application_id")
    assert list(stored["application_id"]) == list(applications["application_id"])


def test_extra_columns_are_dropped_and_order_follows_the_schema(tmp_path, tables, applications):
    shuffled = applications[list(reversed(applications.columns))].assign(note="hello", score_v2=1.5)
    _write(tmp_path, "applications", DAY, shuffled)
    pd.testing.assert_frame_equal(_read(tmp_path, tables["applications"], DAY), applications)


def test_nulls_in_nullable_columns_are_kept(tmp_path, tables, applications):
    text = _as_text(applications)
    text.loc[[2, 4], "credit_score"] = ""
    text.loc[3, "annual_income"] = ""
    _write(tmp_path, "applications", DAY, text)
    read = _read(tmp_path, tables["applications"], DAY)
    assert str(read["credit_score"].dtype) == "Int64" and read["credit_score"].isna().sum() == 2
    assert read["annual_income"].dtype == "float64" and read["annual_income"].isna().sum() == 1
    assert read["age"].dtype == "int64"


def test_text_timestamps_with_an_offset_become_utc(tmp_path, tables, applications):
    text = _as_text(applications)
    text.loc[0, "applied_at"] = f"{DAY.isoformat()}T02:30:00+02:00"
    _write(tmp_path, "applications", DAY, text)
    read = _read(tmp_path, tables["applications"], DAY)
    assert read.loc[0, "applied_at"] == pd.Timestamp(f"{DAY.isoformat()} 00:30:00")


def test_a_timestamp_without_offset_is_utc_even_after_one_with_an_offset(tmp_path, tables, applications):
    text = _as_text(applications)
    text.loc[[0, 1, 2], "applied_at"] = ["2026-03-01 10:00:00", "2026-03-01T10:00:00+02:00", "2026-03-01 11:00:00"]
    _write(tmp_path, "applications", DAY, text)
    read = _read(tmp_path, tables["applications"], DAY)
    assert read.loc[:2, "applied_at"].tolist() == [pd.Timestamp(f"2026-03-01 {h}:00:00") for h in (10, 8, 11)]


def test_missing_outcomes_file_means_no_outcomes(tmp_path, tables):
    outcomes_table = tables["outcomes"]
    assert outcomes_table.missing_day == "empty"
    assert _sources(tmp_path).read(outcomes_table, OUTCOME_DAY).chunks is None
    result = ingest_day(outcomes_table, OUTCOME_DAY, _sources(tmp_path), _warehouse(tmp_path), "test-run")
    assert (result.problems, result.rows) == (None, 0)


def test_a_large_file_is_yielded_in_bounded_chunks_and_checked_across_them(tmp_path, tables, applications):
    frame = applications.sample(100_001, replace=True, random_state=0, ignore_index=True)
    frame["application_id"] = [f"{DAY:%Y%m%d}-{i:07d}" for i in range(len(frame))]
    table = tables["applications"]
    path = _write(tmp_path, "applications", DAY, frame, ".parquet")
    assert [len(c) for c in LandingFolder(_landing(tmp_path)).read(table, DAY, path)] == [100_000, 1]
    # A conversion problem in the first and in the last chunk is counted once for the file.
    typed = frame.astype({"credit_score": str})
    typed.loc[[0, 100_000], "credit_score"] = "excellent"
    _write(tmp_path, "applications", DAY, typed, ".parquet")
    with pytest.raises(SourceDataError) as refused:
        list(LandingFolder(_landing(tmp_path)).read(table, DAY, path))
    message = str(refused.value)
    assert path.name in message and "'credit_score'" in message and "2 rows" in message and "data row 1:" in message
    # A key repeated across chunks is found by the audit of the whole staged day.
    frame.loc[100_000, "application_id"] = frame.loc[0, "application_id"]
    _write(tmp_path, "applications", DAY, frame, ".parquet")
    message = _refusal(tmp_path, table)
    assert path.name in message and "application_id" in message and "2 rows share 1 key" in message


def test_missing_applications_file_names_the_expected_paths(tmp_path, tables):
    message = _refusal(tmp_path, tables["applications"])
    folder = _landing(tmp_path) / "raw" / "applications"
    assert str(folder / f"{DAY.isoformat()}.csv") in message and str(folder / f"{DAY.isoformat()}.parquet") in message


def test_both_csv_and_parquet_for_a_day(tmp_path, tables, applications):
    _write(tmp_path, "applications", DAY, applications, ".csv")
    _write(tmp_path, "applications", DAY, applications, ".parquet")
    with pytest.raises(SourceDataError):
        _sources(tmp_path).read(tables["applications"], DAY)
    message = _refusal(tmp_path, tables["applications"])
    assert f"{DAY.isoformat()}.csv" in message and f"{DAY.isoformat()}.parquet" in message


def test_missing_column(tmp_path, tables, applications):
    path = _write(tmp_path, "applications", DAY, applications.drop(columns=["credit_score", "channel"]))
    message = _refusal(tmp_path, tables["applications"])
    assert path.name in message and "'credit_score'" in message and "'channel'" in message


def _bad_cells(column: str, rows: list[int], value: str):
    def edit(text: pd.DataFrame) -> pd.DataFrame:
        text.loc[rows, column] = value
        return text

    return edit


def _duplicate_ids(text: pd.DataFrame) -> pd.DataFrame:
    text.loc[[10, 11, 12, 13], "application_id"] = text.loc[0, "application_id"]
    return text


@pytest.mark.parametrize(
    ("edit", "column", "count", "detail"),
    [
        (_bad_cells("annual_income", [5, 6, 9], "lots"), "'annual_income'", "3 rows", "'lots'"),
        (_bad_cells("term_months", [7], "36.5"), "'term_months'", "1 row", "36.5"),
        (_bad_cells("applied_at", [1, 2], "yesterday"), "'applied_at'", "2 rows", "'yesterday'"),
        (_bad_cells("application_id", [3, 8], ""), "'application_id'", "2 rows", "not_null"),
        (_bad_cells("applied_at", [4], ""), "'applied_at'", "1 row", "not_null"),
        (_duplicate_ids, "application_id", "5 rows", "unique within the day"),
        (_bad_cells("application_date", [0, 1, 2, 3, 4], "2026-02-28"), "'application_date'", "5 rows", "2026-02-28"),
        (_bad_cells("application_date", [6], "2026-03-01 12:00:00"), "'application_date'", "1 row", "convert"),
    ],
    ids=[
        "text-in-double",
        "fraction-in-integer",
        "bad-timestamp",
        "null-id",
        "null-required",
        "duplicate-ids",
        "wrong-partition-day",
        "time-in-date",
    ],
)
def test_bad_csv_is_refused_with_file_column_and_row_count(tmp_path, tables, applications, edit, column, count, detail):
    path = _write(tmp_path, "applications", DAY, edit(_as_text(applications)))
    message = _refusal(tmp_path, tables["applications"])
    assert path.name in message and column in message and count in message and detail in message


def test_wrong_type_in_parquet(tmp_path, tables, applications):
    frame = applications.astype({"loan_amount": object})
    frame.loc[[1, 2], "loan_amount"] = "n/a-ish"
    path = _write(tmp_path, "applications", DAY, frame.astype({"loan_amount": str}), ".parquet")
    message = _refusal(tmp_path, tables["applications"])
    assert path.name in message and "'loan_amount'" in message and "2 rows" in message


def test_several_problems_are_reported_together(tmp_path, tables, applications):
    # Problems found while reading are reported together...
    text = _bad_cells("age", [1], "old")(_bad_cells("credit_score", [5], "good")(_as_text(applications)))
    _write(tmp_path, "applications", DAY, text)
    message = _refusal(tmp_path, tables["applications"])
    assert "'age'" in message and "'credit_score'" in message
    # ...and so are the broken rules the audit finds; an empty cell in a nullable column is none of them.
    text = _bad_cells("purpose", [2], "yacht")(_bad_cells("channel", [2], "")(_as_text(applications)))
    text.loc[3, "application_id"] = ""
    _write(tmp_path, "applications", DAY, text)
    message = _refusal(tmp_path, tables["applications"])
    assert "'purpose'" in message and "'application_id'" in message
    assert "'channel'" not in message  # channel is nullable


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_zero_byte_file(tmp_path, tables, suffix):
    path = _landing(tmp_path) / "raw" / "applications" / f"{DAY.isoformat()}{suffix}"
    path.parent.mkdir(parents=True)
    path.touch()
    message = _refusal(tmp_path, tables["applications"])
    assert path.name in message and "0 bytes" in message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_header_only_file(tmp_path, tables, applications, suffix):
    path = _write(tmp_path, "applications", DAY, applications.iloc[:0], suffix)
    message = _refusal(tmp_path, tables["applications"])
    assert path.name in message and "0 data rows" in message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_header_only_file_is_an_empty_day_where_missing_day_is_empty(tmp_path, tables, outcomes, suffix):
    _write(tmp_path, "outcomes", OUTCOME_DAY, outcomes.iloc[:0], suffix)
    result = ingest_day(tables["outcomes"], OUTCOME_DAY, _sources(tmp_path), _warehouse(tmp_path), "test-run")
    assert (result.problems, result.rows) == (None, 0)


def test_bad_outcomes_boolean(tmp_path, tables, outcomes):
    text = _as_text(outcomes)
    text.loc[[0, 1, 2], "defaulted"] = "maybe"
    path = _write(tmp_path, "outcomes", OUTCOME_DAY, text)
    message = _refusal(tmp_path, tables["outcomes"], OUTCOME_DAY)
    assert path.name in message and "'defaulted'" in message and "3 rows" in message


def test_corrupt_parquet(tmp_path, tables):
    path = _landing(tmp_path) / "raw" / "applications" / f"{DAY.isoformat()}.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a parquet file at all")
    assert path.name in _refusal(tmp_path, tables["applications"])


def test_build_source_follows_settings(tmp_path, tables):
    base = Settings.from_env()
    source = build_source(
        dataclasses.replace(base, landing_dir=tmp_path, rows_per_day=50, seed=3, drift_start=date(2026, 5, 1))
    )
    assert isinstance(source, RawSources) and source.landing_dir == str(tmp_path)
    synthetic = source.synthetic_loans
    assert isinstance(synthetic, SyntheticSource)
    assert (synthetic.rows_per_day, synthetic.seed, synthetic.drift_start) == (50, 3, "2026-05-01")
    assert "seed=3" in synthetic.describe()
    assert str(tmp_path / "raw" / "applications") in source.describe(tables["applications"])
    generated = dataclasses.replace(tables["applications"], origin="synthetic_loans")
    assert "generator synthetic_loans" in source.describe(generated) and "seed=3" in source.describe(generated)


def test_a_window_publishes_its_good_days_and_keeps_what_was_stored_for_a_bad_one(tmp_path, tables):
    """A backfill's window is written, audited and published together: a bad day in the middle (a malformed file,
    a key repeated from an earlier day of the window) keeps its stored rows; the days around it are published."""
    table = tables["applications"]
    source = SyntheticSource(rows_per_day=50)
    days = [DAY + timedelta(days=i) for i in range(4)]
    frames = {day: _all(source.applications(day)) for day in days}
    for day in days:
        _write(tmp_path, "applications", day, frames[day])
    warehouse = _warehouse(tmp_path)
    first = ingest_window(table, days, _sources(tmp_path), warehouse, "first-run")
    assert [(r.day, r.rows, r.problems) for r in first] == [(d, 50, None) for d in days]

    _write(tmp_path, "applications", days[1], _as_text(frames[days[1]]).assign(loan_amount="lots"))  # not a number
    repeated = frames[days[3]].copy()
    repeated.loc[0, "application_id"] = frames[days[2]]["application_id"].iloc[0]  # a key of the day before
    _write(tmp_path, "applications", days[3], repeated)
    fresh = frames[days[0]].head(10)
    _write(tmp_path, "applications", days[0], fresh)
    second = ingest_window(table, days, _sources(tmp_path), warehouse, "second-run")

    by_day = {r.day: r for r in second}
    assert (by_day[days[0]].rows, by_day[days[0]].problems) == (10, None)
    assert by_day[days[1]].problems and "loan_amount" in by_day[days[1]].problems
    assert by_day[days[2]].problems is None
    assert "rule unique across days" in by_day[days[3]].problems and str(days[2]) in by_day[days[3]].problems
    stored = warehouse.query(
        f"SELECT {table.partition_column} AS day, count(*) AS n FROM {table.qualified} GROUP BY 1 ORDER BY 1"
    )
    assert dict(zip(stored["day"].dt.date, stored["n"], strict=True)) == {
        days[0]: 10,  # replaced by the new file
        days[1]: 50,  # rejected: the first run's rows kept
        days[2]: 50,
        days[3]: 50,  # rejected: the first run's rows kept
    }
    rejected = warehouse.query("SELECT partition_day FROM audit.rejected_files ORDER BY 1")
    assert list(rejected["partition_day"].dt.date) == [days[1], days[3]]
