"""The landing-folder source: good files read back exactly; every bad file is refused before any chunk."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from resources.settings import Settings
from resources.source import LandingFolderSource, SourceDataError, SyntheticSource, build_source
from resources.source.base import PANDAS_DTYPES
from resources.source.schema import APPLICATIONS, OUTCOMES

DAY = date(2026, 3, 1)
OUTCOME_DAY = DAY + timedelta(days=30)


def _all(chunks) -> pd.DataFrame:
    return pd.concat(list(chunks), ignore_index=True)


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    return _all(SyntheticSource(rows_per_day=200).applications(DAY))


@pytest.fixture(scope="module")
def outcomes() -> pd.DataFrame:
    return _all(SyntheticSource(rows_per_day=200).outcomes(OUTCOME_DAY))


def _write(folder: Path, table: str, day: date, frame: pd.DataFrame, suffix: str = ".csv") -> Path:
    path = folder / table / f"{day.isoformat()}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as CSV cells, so a test can put any text in any column."""
    return frame.astype(str)


def _refusal(source: LandingFolderSource, day: date = DAY, table: str = "applications") -> str:
    with pytest.raises(SourceDataError) as refused:
        source.applications(day) if table == "applications" else source.outcomes(day)  # raises on the call
    return str(refused.value)


def _assert_schema_dtypes(frame: pd.DataFrame, table) -> None:
    assert list(frame.columns) == table.column_names
    assert {c.name: str(frame[c.name].dtype) for c in table.columns} == {
        c.name: PANDAS_DTYPES[c.dtype] for c in table.columns
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_day_reads_back_exactly(tmp_path, applications, outcomes, suffix):
    _write(tmp_path, "applications", DAY, applications, suffix)
    _write(tmp_path, "outcomes", OUTCOME_DAY, outcomes, suffix)
    source = LandingFolderSource(path=str(tmp_path))
    read_applications = _all(source.applications(DAY))
    read_outcomes = _all(source.outcomes(OUTCOME_DAY))
    _assert_schema_dtypes(read_applications, APPLICATIONS)
    _assert_schema_dtypes(read_outcomes, OUTCOMES)
    pd.testing.assert_frame_equal(read_applications, applications)
    pd.testing.assert_frame_equal(read_outcomes, outcomes)


def test_extra_columns_are_dropped_and_order_follows_the_schema(tmp_path, applications):
    shuffled = applications[list(reversed(applications.columns))].assign(note="hello", score_v2=1.5)
    _write(tmp_path, "applications", DAY, shuffled)
    pd.testing.assert_frame_equal(_all(LandingFolderSource(path=str(tmp_path)).applications(DAY)), applications)


def test_nulls_in_nullable_columns_are_kept(tmp_path, applications):
    text = _as_text(applications)
    text.loc[[2, 4], "credit_score"] = ""
    text.loc[3, "annual_income"] = ""
    _write(tmp_path, "applications", DAY, text)
    read = _all(LandingFolderSource(path=str(tmp_path)).applications(DAY))
    assert str(read["credit_score"].dtype) == "Int64" and read["credit_score"].isna().sum() == 2
    assert read["annual_income"].dtype == "float64" and read["annual_income"].isna().sum() == 1
    assert read["age"].dtype == "int64"


def test_text_timestamps_with_an_offset_become_utc(tmp_path, applications):
    text = _as_text(applications)
    text.loc[0, "applied_at"] = f"{DAY.isoformat()}T02:30:00+02:00"
    _write(tmp_path, "applications", DAY, text)
    read = _all(LandingFolderSource(path=str(tmp_path)).applications(DAY))
    assert read.loc[0, "applied_at"] == pd.Timestamp(f"{DAY.isoformat()} 00:30:00")


def test_missing_outcomes_file_means_no_outcomes(tmp_path):
    assert list(LandingFolderSource(path=str(tmp_path)).outcomes(OUTCOME_DAY)) == []


def test_a_large_file_is_yielded_in_bounded_chunks_and_checked_across_them(tmp_path):
    frame = _all(SyntheticSource(rows_per_day=100_001).applications(DAY))
    _write(tmp_path, "applications", DAY, frame, ".parquet")
    source = LandingFolderSource(path=str(tmp_path))
    assert [len(c) for c in source.applications(DAY)] == [100_000, 1]
    frame.loc[100_000, "application_id"] = frame.loc[0, "application_id"]
    path = _write(tmp_path, "applications", DAY, frame, ".parquet")
    message = _refusal(source)
    assert path.name in message and "application_id" in message and "1 row " in message


def test_missing_applications_file_names_the_expected_paths(tmp_path):
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert f"{DAY.isoformat()}.csv" in message and f"{DAY.isoformat()}.parquet" in message


def test_both_csv_and_parquet_for_a_day(tmp_path, applications):
    _write(tmp_path, "applications", DAY, applications, ".csv")
    _write(tmp_path, "applications", DAY, applications, ".parquet")
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert f"{DAY.isoformat()}.csv" in message and f"{DAY.isoformat()}.parquet" in message


def test_missing_column(tmp_path, applications):
    path = _write(tmp_path, "applications", DAY, applications.drop(columns=["credit_score", "channel"]))
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
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
        (_bad_cells("annual_income", [5, 6, 9], "lots"), "annual_income", "3 rows", "'lots'"),
        (_bad_cells("term_months", [7], "36.5"), "term_months", "1 row", "36.5"),
        (_bad_cells("applied_at", [1, 2], "yesterday"), "applied_at", "2 rows", "'yesterday'"),
        (_bad_cells("application_id", [3, 8], ""), "application_id", "2 rows", "null"),
        (_bad_cells("applied_at", [4], ""), "applied_at", "1 row", "null"),
        (_duplicate_ids, "application_id", "4 rows", "repeat"),
        (_bad_cells("application_date", [0, 1, 2, 3, 4], "2026-02-28"), "application_date", "5 rows", "2026-02-28"),
        (_bad_cells("application_date", [6], "2026-03-01 12:00:00"), "application_date", "1 row", "convert"),
    ],
    ids=["text-in-double", "fraction-in-integer", "bad-timestamp", "null-id", "null-required", "duplicate-ids",
         "wrong-partition-day", "time-in-date"],
)
def test_bad_csv_is_refused_with_file_column_and_row_count(tmp_path, applications, edit, column, count, detail):
    path = _write(tmp_path, "applications", DAY, edit(_as_text(applications)))
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert path.name in message and f"'{column}'" in message and count in message and detail in message


def test_wrong_type_in_parquet(tmp_path, applications):
    frame = applications.astype({"loan_amount": object})
    frame.loc[[1, 2], "loan_amount"] = "n/a-ish"
    path = _write(tmp_path, "applications", DAY, frame.astype({"loan_amount": str}), ".parquet")
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert path.name in message and "'loan_amount'" in message and "2 rows" in message


def test_several_problems_are_reported_together(tmp_path, applications):
    text = _bad_cells("age", [1], "old")(_bad_cells("channel", [2], "")(_as_text(applications)))
    text.loc[3, "application_id"] = ""
    _write(tmp_path, "applications", DAY, text)
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert "'age'" in message and "'application_id'" in message
    assert "'channel'" not in message  # channel is nullable


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_zero_byte_file(tmp_path, suffix):
    path = tmp_path / "applications" / f"{DAY.isoformat()}{suffix}"
    path.parent.mkdir()
    path.touch()
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert path.name in message and "0 bytes" in message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_header_only_file(tmp_path, applications, suffix):
    path = _write(tmp_path, "applications", DAY, applications.iloc[:0], suffix)
    message = _refusal(LandingFolderSource(path=str(tmp_path)))
    assert path.name in message and "0 data rows" in message


def test_empty_outcomes_file_still_fails(tmp_path, outcomes):
    path = _write(tmp_path, "outcomes", OUTCOME_DAY, outcomes.iloc[:0])
    message = _refusal(LandingFolderSource(path=str(tmp_path)), OUTCOME_DAY, table="outcomes")
    assert path.name in message and "0 data rows" in message


def test_bad_outcomes_boolean(tmp_path, outcomes):
    text = _as_text(outcomes)
    text.loc[[0, 1, 2], "defaulted"] = "maybe"
    path = _write(tmp_path, "outcomes", OUTCOME_DAY, text)
    message = _refusal(LandingFolderSource(path=str(tmp_path)), OUTCOME_DAY, table="outcomes")
    assert path.name in message and "'defaulted'" in message and "3 rows" in message


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "applications" / f"{DAY.isoformat()}.parquet"
    path.parent.mkdir()
    path.write_bytes(b"not a parquet file at all")
    assert path.name in _refusal(LandingFolderSource(path=str(tmp_path)))


def test_build_source_follows_settings(tmp_path):
    base = Settings.from_env()
    landing = build_source(dataclasses.replace(base, source="landing", landing_dir=tmp_path))
    assert isinstance(landing, LandingFolderSource) and landing.path == str(tmp_path)
    synthetic = build_source(
        dataclasses.replace(base, source="synthetic", rows_per_day=50, seed=3, drift_start=date(2026, 5, 1))
    )
    assert isinstance(synthetic, SyntheticSource)
    assert (synthetic.rows_per_day, synthetic.seed, synthetic.drift_start) == (50, 3, "2026-05-01")
    assert "seed=3" in synthetic.describe()
