"""The raw layer's contract, on a real DuckDB warehouse through Dagster (``dg.materialize`` of the factory's assets).

Write, audit, publish: a day that breaks its declaration leaves what was stored byte-identical, fails its step with
a message naming the file, the column, the rule and the count, is a row of ``audit.rejected_files``, fails the
asset's ``contract`` check and alerts; a later good day still ingests. CSV keeps "NA" / "None" / "null" as text and
reads only the empty cell (and declared ``null_markers``) as NULL; ``missing_day`` decides what a day without a
file means; Parquet follows the same rules. Declaration errors name the YAML file, the table and the field.

The loan tables are declared with origin synthetic_loans; here they are read from the landing folder
(``dataclasses.replace(table, origin="landing")``), laid out as <landing>/raw/<table>/<day>.csv|.parquet, with
``complete_when: {quiet_seconds: 0}``: each test writes its files whole before it ingests them (when a file is
complete is tested in ``test_landing_completeness.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.partitions import RANGE_END_TAG, RANGE_START_TAG, build_daily_partitions
from assets.raw import CONTRACT_CHECK, REJECTED_FILES, build_raw_assets
from assets.raw.wap import ingest_day
from resources.build import build_resources
from resources.settings import Settings
from resources.source import SyntheticSource
from resources.source.declarations import DeclarationError, load_raw_tables
from resources.source.schema import LANDING, CompleteWhen, RawTable
from tests.sensor_helpers import Webhook
from tests.stores import point_stores_at

DAY = date(2026, 3, 1)  # the day stored before each bad file arrives
LATER = DAY + timedelta(days=1)  # a good day ingested after the rejection
ROWS = 20
LABEL_DELAY_DAYS = 3
ORDERED = "SELECT * FROM raw.applications ORDER BY application_date, application_id"


def ordered_day(day: date) -> str:
    return ORDERED.replace("ORDER BY", f"WHERE application_date = DATE '{day.isoformat()}' ORDER BY")


# --- the harness -------------------------------------------------------------------------------------------------


@dataclass
class Contract:
    """The factory's assets for landing-origin loan tables, run with real resources and a webhook for alerts."""

    settings: Settings
    tables: dict[str, RawTable]  # "applications", "outcomes": the declarations, origin landing
    resources: dict
    webhook: Webhook
    _assets: dict = field(default_factory=dict)

    @property
    def applications(self) -> RawTable:
        return self.tables["applications"]

    @property
    def warehouse(self):
        return self.resources["warehouse"]

    def materialize(
        self, day: date, table: RawTable | None = None, last: date | None = None
    ) -> dg.ExecuteInProcessResult:
        """One run of ``table``'s raw asset for ``day`` (or the window day..last)."""
        table = table or self.applications
        key = (table.label, table.null_markers, table.missing_day)
        if key not in self._assets:
            self._assets[key] = build_raw_assets([table], build_daily_partitions(self.settings), "duckdb")
        window = (
            {"partition_key": day.isoformat()}
            if last is None
            else {"tags": {RANGE_START_TAG: day.isoformat(), RANGE_END_TAG: last.isoformat()}}
        )
        return dg.materialize(self._assets[key], resources=self.resources, raise_on_error=False, **window)

    def path(self, day: date, suffix: str = ".csv", table: str = "applications") -> Path:
        path = self.settings.landing_dir / "raw" / table / f"{day.isoformat()}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, frame: pd.DataFrame, day: date, suffix: str = ".csv", table: str = "applications") -> Path:
        path = self.path(day, suffix, table)
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        return path

    def clear(self, day: date, table: str = "applications") -> None:
        for suffix in (".csv", ".parquet"):
            self.path(day, suffix, table).unlink(missing_ok=True)

    def store(self, day: date) -> pd.DataFrame:
        """A good day of applications, written and ingested (write, audit, publish; no Dagster run needed)."""
        frame = applications(day)
        self.write(frame, day)
        result = ingest_day(self.applications, day, self.resources["source"], self.warehouse, "setup")
        assert (result.problems, result.rows) == (None, len(frame))
        return frame

    def query(self, sql: str) -> pd.DataFrame:
        return self.warehouse.query(sql)

    def rows_on(self, day: date, table: str = "raw.applications", column: str = "application_date") -> int:
        return int(self.query(f"SELECT count(*) AS n FROM {table} WHERE {column} = DATE '{day.isoformat()}'")["n"][0])


def applications(day: date, rows: int = ROWS) -> pd.DataFrame:
    return pd.concat(SyntheticSource(rows_per_day=rows).applications(day), ignore_index=True)


def outcomes(day: date) -> pd.DataFrame:
    source = SyntheticSource(rows_per_day=ROWS, label_delay_days=LABEL_DELAY_DAYS)
    return pd.concat(source.outcomes(day), ignore_index=True)


@pytest.fixture
def contract(tmp_path, monkeypatch, webhook) -> Contract:
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_LANDING_DIR=str(tmp_path / "landing"))
    declared = load_raw_tables(settings.manifest_path)
    tables = {
        name: dataclasses.replace(declared[f"raw.{name}"], origin=LANDING, complete_when=CompleteWhen(quiet_seconds=0))
        for name in ("applications", "outcomes")
    }
    built = build_resources(settings)
    resources = {"source": built["source"], "warehouse": built["warehouse"], "alerts": webhook.alerts()}
    return Contract(settings, tables, resources, webhook)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = result.get_step_failure_events()
    assert failures, "the step did not fail"
    return "\n".join(
        (f.step_failure_data.user_failure_data.description if f.step_failure_data.user_failure_data else None)
        or f.step_failure_data.error.message
        for f in failures
    )


def contract_check(result: dg.ExecuteInProcessResult):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CONTRACT_CHECK]
    return evaluation


def assert_published(contract: Contract, result: dg.ExecuteInProcessResult, day: date, rows: int) -> None:
    assert result.success, failure_message(result)
    evaluation = contract_check(result)
    assert evaluation.passed and evaluation.metadata["days_rejected"].value == 0
    assert contract.rows_on(day) == rows


# --- bad input: rejected, stored day unchanged, recorded, checked, alerted; a later good day still ingests ------------


@dataclass(frozen=True)
class Case:
    """``write`` puts the bad input in the landing folder and returns the day it is for, the file(s) it touched
    and, optionally, more strings to expect that only it knows (the line it broke); the failure message, the
    recorded reason and the alert must contain every one of them and of ``expect``."""

    write: Callable[[Contract, pd.DataFrame], tuple]
    expect: tuple[str, ...]


def edited(edit: Callable[[pd.DataFrame], None], suffix: str = ".csv", day: date = DAY):
    """Good applications of ``day`` with ``edit`` applied, as one file."""

    def write(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
        frame = applications(day)
        edit(frame)
        return day, [contract.write(frame, day, suffix)]

    return write


def cells(column: str, rows: list[int], value, as_text: bool = False):
    def edit(frame: pd.DataFrame) -> None:
        if as_text:
            frame[column] = frame[column].astype(str)
        frame.loc[rows, column] = value

    return edit


def duplicate_ids(frame: pd.DataFrame) -> None:
    frame.loc[[5, 6], "application_id"] = frame.loc[0, "application_id"]


def drop_id_column(frame: pd.DataFrame) -> None:
    frame.drop(columns=["application_id"], inplace=True)


def ids_of_the_stored_day(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
    frame = applications(LATER)
    frame.loc[[0, 1, 2], "application_id"] = stored.loc[[3, 4, 5], "application_id"].to_numpy()
    return LATER, [contract.write(frame, LATER)]


def cut_in_half(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path], str]:
    text = applications(DAY).to_csv(index=False)
    half = text[: len(text) // 2]
    last_line = half.rsplit("\n", 1)[1]
    assert last_line and last_line.count(",") < text.split("\n", 1)[0].count(","), "the cut must fall inside a row"
    path = contract.path(DAY)
    path.write_text(half)
    line = half.count("\n") + 1  # the header is line 1
    return DAY, [path], f"line {line} has {last_line.count(',') + 1} fields"


def short_and_long_rows(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
    lines = applications(DAY).to_csv(index=False).splitlines(keepends=True)
    lines[4] = lines[4].rsplit(",", 1)[0] + "\n"  # line 5: one field short
    lines[9] = lines[9].rstrip("\n") + ",surplus\n"  # line 10: one field too many
    path = contract.path(DAY)
    path.write_text("".join(lines))
    return DAY, [path]


def empty_file(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
    path = contract.path(DAY)
    path.write_bytes(b"")
    return DAY, [path]


def header_only(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
    return DAY, [contract.write(applications(DAY).iloc[:0], DAY)]


def csv_and_parquet(contract: Contract, stored: pd.DataFrame) -> tuple[date, list[Path]]:
    frame = applications(DAY)
    return DAY, [contract.write(frame, DAY, ".csv"), contract.write(frame, DAY, ".parquet")]


CASES = {
    "unseen-category": Case(
        edited(cells("purpose", [2, 5], "yacht")), ("'purpose'", "rule accepted_values", "2 rows", "'yacht'")
    ),
    "unseen-category-parquet": Case(
        edited(cells("purpose", [2, 5], "yacht"), ".parquet"),
        ("'purpose'", "rule accepted_values", "2 rows", "'yacht'"),
    ),
    "negative-loan-amount": Case(
        edited(cells("loan_amount", [3], -250.0)), ("'loan_amount'", "rule min 0", "1 row", "-250.0")
    ),
    "loan-amount-minus-1e12": Case(
        edited(cells("loan_amount", [4, 8], -1e12)), ("'loan_amount'", "rule min 0", "2 rows", "-1000000000000.0")
    ),
    "loan-amount-plus-1e12": Case(
        edited(cells("loan_amount", [4], 1e12)), ("'loan_amount'", "rule max 10000000", "1 row", "1000000000000.0")
    ),
    "ids-stored-on-another-day": Case(
        ids_of_the_stored_day, ("application_id", "rule unique across days", "3 rows", DAY.isoformat())
    ),
    "duplicate-ids-in-the-file": Case(
        edited(duplicate_ids), ("application_id", "rule unique within the day", "3 rows share 1 key")
    ),
    "duplicate-ids-in-the-file-parquet": Case(
        edited(duplicate_ids, ".parquet"), ("application_id", "rule unique within the day", "3 rows share 1 key")
    ),
    "csv-cut-in-half": Case(cut_in_half, ("rule row shape", "1 row", "cut short")),
    "short-and-long-row": Case(
        short_and_long_rows, ("rule row shape", "2 rows", "line 5 has 18 fields", "line 10 has 20 fields")
    ),
    "number-that-does-not-convert": Case(
        edited(cells("credit_score", [1, 4, 7], "excellent", as_text=True)),
        ("'credit_score'", "rule data_type", "cannot convert 3 rows", "'excellent'"),
    ),
    "number-that-does-not-convert-parquet": Case(
        edited(cells("credit_score", [1, 4, 7], "excellent", as_text=True), ".parquet"),
        ("'credit_score'", "rule data_type", "cannot convert 3 rows", "'excellent'"),
    ),
    "missing-required-column": Case(edited(drop_id_column), ("lacks", "'application_id'")),
    "missing-required-column-parquet": Case(edited(drop_id_column, ".parquet"), ("lacks", "'application_id'")),
    "wrong-partition-day": Case(
        edited(cells("application_date", [0, 1, 2, 3], pd.Timestamp(DAY - timedelta(days=1)))),
        ("'application_date'", f"rule partition day {DAY}", "4 rows", "2026-02-28"),
    ),
    "empty-file": Case(empty_file, ("empty", "0 bytes")),
    "header-only-file": Case(header_only, ("0 data rows",)),
    "csv-and-parquet-both-present": Case(csv_and_parquet, ("both", "keep only one")),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_rejected_recorded_checked_and_alerted_and_the_stored_day_kept(contract, case):
    stored_frame = contract.store(DAY)
    before = contract.query(ORDERED)
    assert len(before) == ROWS

    contract.clear(DAY)  # the stored day's good file: each case brings its own
    written = case.write(contract, stored_frame)
    bad_day, files = written[0], written[1]
    expect = (*case.expect, *written[2:])  # a writer may add what only it knows (the broken line)
    result = contract.materialize(bad_day)

    # The step fails, naming the file(s), the column, the rule and the count.
    assert not result.success
    message = failure_message(result)
    for text in (*map(str, files), *expect):
        assert text in message, f"{text!r} not in the failure message:\n{message}"
    # What was stored is byte-identical.
    pd.testing.assert_frame_equal(contract.query(ORDERED), before, check_exact=True)
    assert not contract.warehouse.table_exists(f"nightjar_staging.raw__applications__{bad_day:%Y%m%d}")
    # The rejection is a row of audit.rejected_files.
    rejected = contract.query(f"SELECT table_name, partition_day, reason FROM {REJECTED_FILES}")
    assert len(rejected) == 1
    assert rejected["table_name"][0] == "raw.applications"
    assert pd.Timestamp(rejected["partition_day"][0]) == pd.Timestamp(bad_day)
    for text in (str(files[0]), *expect):
        assert text in rejected["reason"][0]
    # The contract check failed.
    evaluation = contract_check(result)
    assert not evaluation.passed and evaluation.asset_key == dg.AssetKey(["raw", "applications"])
    assert evaluation.metadata["days_rejected"].value == 1
    assert str(files[0]) in evaluation.metadata["rejected"].value
    # The alert went out.
    (alert,) = contract.webhook.posts
    assert alert["severity"] == "error" and alert["title"] == f"raw.applications {bad_day}: data rejected"
    assert alert["details"]["table"] == "raw.applications" and alert["details"]["day"] == bad_day.isoformat()
    for text in (str(files[0]), *expect):
        assert text in alert["message"]

    # A later good day still ingests, and the stored day is still what it was.
    contract.clear(LATER)
    contract.write(applications(LATER), LATER)
    assert_published(contract, contract.materialize(LATER), LATER, ROWS)
    pd.testing.assert_frame_equal(contract.query(ordered_day(DAY)), before, check_exact=True)
    assert len(contract.webhook.posts) == 1


def test_a_window_publishes_its_good_days_and_fails_for_the_bad_one(contract):
    contract.store(DAY)
    before = contract.query(ORDERED)
    frame = applications(DAY)
    frame.loc[1, "purpose"] = "yacht"
    bad = contract.write(frame, DAY)
    contract.write(applications(LATER), LATER)
    result = contract.materialize(DAY, last=LATER)
    assert not result.success
    assert "1 of 2 day(s) rejected" in failure_message(result) and str(bad) in failure_message(result)
    assert contract.rows_on(LATER) == ROWS  # published although the step failed
    pd.testing.assert_frame_equal(contract.query(ordered_day(DAY)), before, check_exact=True)
    evaluation = contract_check(result)
    assert not evaluation.passed
    assert (evaluation.metadata["days_published"].value, evaluation.metadata["days_rejected"].value) == (1, 1)


# --- CSV nulls ---------------------------------------------------------------------------------------------------


def test_csv_text_that_looks_null_stays_text_and_only_the_empty_cell_is_null(contract):
    frame = applications(DAY).astype({"state": object, "credit_score": object})
    frame.loc[[0, 1, 2, 3, 4], "state"] = ["NA", "None", "null", None, "n/a"]  # None: written as an empty cell
    path = contract.write(frame, DAY)
    assert '"' not in path.read_text()  # the cells are bare, not quoted
    assert_published(contract, contract.materialize(DAY), DAY, ROWS)
    stored = contract.query("SELECT state, credit_score FROM raw.applications ORDER BY application_id")
    assert stored["state"][:3].tolist() == ["NA", "None", "null"]
    assert pd.isna(stored["state"][3]) and stored["state"][4] == "n/a"
    assert int(stored["state"].isna().sum()) == 1

    # A declared null marker is NULL too, in any column; the other texts stay text.
    frame.loc[5, "credit_score"] = "n/a"
    contract.write(frame, DAY)
    marked = dataclasses.replace(contract.applications, null_markers=("n/a",))
    assert_published(contract, contract.materialize(DAY, table=marked), DAY, ROWS)
    stored = contract.query("SELECT state, credit_score FROM raw.applications ORDER BY application_id")
    assert stored["state"][:3].tolist() == ["NA", "None", "null"]
    assert pd.isna(stored["state"][3]) and pd.isna(stored["state"][4]) and pd.isna(stored["credit_score"][5])
    assert int(stored["credit_score"].isna().sum()) == 1


def test_a_null_marker_is_not_null_for_a_table_that_does_not_declare_it(contract):
    frame = applications(DAY).astype({"credit_score": object})
    frame.loc[5, "credit_score"] = "n/a"
    path = contract.write(frame, DAY)
    result = contract.materialize(DAY)
    assert not result.success
    message = failure_message(result)
    assert str(path) in message and "'credit_score'" in message and "cannot convert 1 row" in message


# --- missing days --------------------------------------------------------------------------------------------------


def test_missing_day_empty_without_a_file_publishes_no_rows_and_deletes_what_was_stored(contract):
    table = contract.tables["outcomes"]
    assert table.missing_day == "empty"

    def published(day: date, rows: int) -> dg.ExecuteInProcessResult:
        result = contract.materialize(day, table=table)
        assert result.success, failure_message(result)
        assert contract_check(result).passed
        assert contract.rows_on(day, "raw.outcomes", "outcome_date") == rows
        (materialization,) = result.asset_materializations_for_node(result.get_step_success_events()[0].step_key)
        assert (
            materialization.metadata["dagster/row_count"].value == rows and materialization.partition == day.isoformat()
        )
        return result

    contract.write(outcomes(DAY), DAY, table="outcomes")
    published(DAY, ROWS)
    contract.clear(DAY, table="outcomes")
    published(DAY, 0)  # the day's stored rows are gone
    published(LATER, 0)  # a day that never had a file is empty too
    assert not contract.warehouse.table_exists(REJECTED_FILES) and not contract.webhook.posts


def test_missing_day_error_without_a_file_fails_naming_the_expected_paths(contract):
    assert contract.applications.missing_day == "error"
    contract.store(DAY)
    before = contract.query(ORDERED)
    contract.clear(DAY)
    result = contract.materialize(DAY)
    assert not result.success
    message = failure_message(result)
    for suffix in (".csv", ".parquet"):
        assert str(contract.path(DAY, suffix)) in message
    assert "missing_day: empty" in message
    pd.testing.assert_frame_equal(contract.query(ORDERED), before, check_exact=True)
    assert not contract_check(result).passed
    rejected = contract.query(f"SELECT table_name, partition_day, reason FROM {REJECTED_FILES}")
    assert rejected["table_name"].tolist() == ["raw.applications"]
    assert str(contract.path(DAY, ".parquet")) in rejected["reason"][0]
    assert len(contract.webhook.posts) == 1


# --- Parquet -------------------------------------------------------------------------------------------------------


def test_a_parquet_day_is_published_like_a_csv_day(contract):
    frame = applications(DAY)
    contract.write(frame, DAY, ".parquet")
    assert_published(contract, contract.materialize(DAY), DAY, ROWS)
    contract.write(applications(LATER), LATER, ".csv")
    assert_published(contract, contract.materialize(LATER), LATER, ROWS)
    stored = contract.query(ORDERED)
    from_parquet = stored[stored["application_date"] == pd.Timestamp(DAY)].reset_index(drop=True)
    from_csv = stored[stored["application_date"] == pd.Timestamp(LATER)].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_parquet, frame, check_dtype=False)
    pd.testing.assert_frame_equal(from_csv, applications(LATER), check_dtype=False)
    assert from_parquet.dtypes.equals(from_csv.dtypes)


# --- declaration errors -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcomes_node(dbt_manifest) -> dict:
    """The real manifest's node of the raw.outcomes source, to edit into broken declarations."""
    return json.loads(Path(dbt_manifest).read_text())["sources"]["source.nightjar.raw.outcomes"]


def fake_manifest(tmp_path: Path, node: dict, edit: Callable[[dict, dict], None]) -> Path:
    """A manifest holding ``node`` after ``edit(node, nightjar_settings)``; at <project>/target/manifest.json."""
    node = copy.deepcopy(node)
    settings = node["config"]["meta"]["nightjar"]
    node["meta"]["nightjar"] = settings  # dbt puts it in both places; nightjar reads config.meta first
    edit(node, settings)
    path = tmp_path / "project" / "target" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"sources": {node["unique_id"]: node}}))
    return path


def test_an_unedited_fake_manifest_declares_the_real_table(tmp_path, outcomes_node, dbt_manifest):
    tables = load_raw_tables(fake_manifest(tmp_path, outcomes_node, lambda node, nightjar: None))
    real = load_raw_tables(dbt_manifest)["raw.outcomes"]
    assert tables["raw.outcomes"] == dataclasses.replace(
        real, declared_in=str(tmp_path / "project" / "models" / "staging" / "loans" / "__sources.yml")
    )


def _set(key, value):
    return lambda node, nightjar: nightjar.__setitem__(key, value)


def _column(name, edit):
    return lambda node, nightjar: edit(node["columns"][name])


DECLARATION_ERRORS = {
    "unknown-meta-key": (_set("partition_col", "outcome_date"), "meta.nightjar.partition_col", "unknown setting"),
    "missing-data-type": (_column("defaulted", lambda c: c.pop("data_type")), "columns.defaulted.data_type", "missing"),
    "unknown-data-type": (
        _column("defaulted", lambda c: c.update(data_type="jsonb")),
        "columns.defaulted.data_type",
        "'jsonb'",
    ),
    "partition-column-not-a-date": (
        _set("partition_column", "observed_at"),
        "meta.nightjar.partition_column",
        "data_type date",
    ),
    "partition-column-not-declared": (_set("partition_column", "day"), "meta.nightjar.partition_column", "'day'"),
    "key-names-an-unknown-column": (_set("key", ["application_id", "loan_id"]), "meta.nightjar.key", "'loan_id'"),
    "unknown-origin": (_set("origin", "ftp"), "meta.nightjar.origin", "'ftp'"),
    "unknown-missing-day": (_set("missing_day", "skip"), "meta.nightjar.missing_day", "'skip'"),
    "unknown-column-rule": (
        _column("application_id", lambda c: c["config"]["meta"].update(pattern="^[0-9]+$")),
        "columns.application_id.meta.pattern",
        "unknown rule",
    ),
    "bound-on-a-text-column": (
        _column("application_id", lambda c: c["config"]["meta"].update(min=0)),
        "columns.application_id.meta.min",
        "numeric column",
    ),
}


@pytest.mark.parametrize(("edit", "field_name", "what"), DECLARATION_ERRORS.values(), ids=DECLARATION_ERRORS.keys())
def test_a_declaration_error_names_the_file_the_table_and_the_field(tmp_path, outcomes_node, edit, field_name, what):
    manifest = fake_manifest(tmp_path, outcomes_node, edit)
    with pytest.raises(DeclarationError) as error:
        load_raw_tables(manifest)
    message = str(error.value)
    yaml_file = tmp_path / "project" / "models" / "staging" / "loans" / "__sources.yml"
    assert message.startswith(f"{yaml_file}: table raw.outcomes: field '{field_name}'"), message
    assert what in message


def test_every_error_of_a_declaration_is_named_at_once(tmp_path, outcomes_node):
    def edit(node, nightjar):
        nightjar.update(missing_day="skip", partition_col="outcome_date")
        node["columns"]["defaulted"]["data_type"] = "jsonb"

    with pytest.raises(DeclarationError) as error:
        load_raw_tables(fake_manifest(tmp_path, outcomes_node, edit))
    lines = str(error.value).splitlines()
    prefix = f"{tmp_path / 'project' / 'models' / 'staging' / 'loans' / '__sources.yml'}: table raw.outcomes: field "
    assert all(line.startswith(prefix) for line in lines), lines
    named = sorted(line[len(prefix) :].split(":")[0] for line in lines)
    assert named == ["'columns.defaulted.data_type'", "'meta.nightjar.missing_day'", "'meta.nightjar.partition_col'"]
    assert "'skip'" in str(error.value) and "'jsonb'" in str(error.value)
