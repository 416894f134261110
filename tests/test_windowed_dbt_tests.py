"""dbt tests guard a run's window, not all history; the full-history job still finds bad stored days.

A bad row that only a dbt test catches fails the build of its own day, and no longer the build of every later
day; the `dbt_full_tests` job (every test, no window) fails naming the test. Real dbt and DuckDB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jobs.dbt_full_tests import (
    DBT_FULL_TESTS_JOB_NAME,
    DbtTestOutcome,
    build_dbt_full_tests_job,
    failure_message,
    read_test_outcomes,
)
from resources.settings import DBT_PROJECT_DIR
from tests.chain import run_days, scalar

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
UNIQUE_ID_TEST = "unique_stg_applications_application_id"
TERM_TEST = "accepted_values_stg_applications_term_months__False__36__60"


def _keys(defs: dg.Definitions) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    keys = sorted(defs.resolve_job_def("ingest").asset_layer.selected_asset_keys)
    return [k for k in keys if k.path[0] == "raw"], [k for k in keys if k.path[0] != "raw"]


def _failed_checks(result: dg.ExecuteInProcessResult) -> set[str]:
    return {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}


def _full_tests_failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the full-history job should fail"
    return failures[0].step_failure_data.user_failure_data.description


def _sql(settings, statement: str) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as conn:  # as a broken upstream or a hand edit would
        conn.execute(statement)


# --- the mechanism, the job's shape and its report -----------------------------------------------------------------


@pytest.mark.slow  # two dbt invocations
def test_generic_tests_compile_to_the_window_only_when_vars_give_one(nightjar_env, tmp_path):
    """get_where_subquery (macros/test_window.sql) filters the tested model on its meta partition column."""
    dbt = Path(sys.executable).parent / "dbt"

    def compiled(target: str, window: dict[str, str]) -> str:
        dbt_vars = {"warehouse_path": str(tmp_path / "compile.duckdb"), **window}  # compile connects: any file will do
        done = subprocess.run(
            [str(dbt), "compile", "--profiles-dir", ".", "--project-dir", ".", "--target-path",
             str(tmp_path / target), "--select", f"{UNIQUE_ID_TEST} assert_positive_loan_amounts",
             "--vars", json.dumps(dbt_vars)],
            cwd=DBT_PROJECT_DIR, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        folder = tmp_path / target / "compiled" / "nightjar"
        return "\n".join(p.read_text() for p in sorted(folder.rglob("*.sql")))

    window = compiled("window", {"min_date": "2026-01-02", "max_date": "2026-01-03"})
    assert "application_date >= cast('2026-01-02' as date)" in window
    assert "application_date < cast('2026-01-03' as date)" in window
    everything = compiled("all", {})
    assert "2026-01-02" not in everything and "application_date >=" not in everything


@pytest.mark.slow  # three dbt invocations
def test_a_new_window_keeps_dbts_parse_state_where_new_vars_would_not(nightjar_env, tmp_path):
    """The window goes to `dbt build` as event-time flags, which dbt's saved parse state does not depend on: the
    next day's build does not re-parse the project (seconds). `dbt test` takes no such flags: its window goes as
    vars, and dbt re-parses."""
    from resources.dbt import dbt_resource

    dbt = dbt_resource(nightjar_env)

    def log_of(name: str, command: str, start: date, end: date) -> str:
        target = tmp_path / name
        window = {"min_date": str(start), "max_date": str(end)}
        dbt.cli_in_window([command, "--select", "tag:no_such_tag"], window, target).wait()
        dbt.save_parse_state(target)
        return (target / "dbt.log").read_text()

    log_of("d1", "build", D1, D2)
    assert "Unable to do partial parsing" not in log_of("d2", "build", D2, D3)
    assert "Unable to do partial parsing" in log_of("d3", "test", D2, D3)  # the check above can see a re-parse


@pytest.mark.slow  # three dbt invocations
def test_the_first_build_after_setup_starts_from_the_parse_state_setup_kept(nightjar_env, tmp_path):
    """`make setup` parses the project as the runs will (python -m resources.dbt_parse_state): the first build does
    not re-parse it; without that, it does (the project's own parse state was made without the runs' vars)."""
    from resources.dbt import dbt_resource

    def first_build_log(dbt, name: str) -> str:
        target = tmp_path / name
        window = {"min_date": str(D1), "max_date": str(D2)}
        dbt.cli_in_window(["build", "--select", "tag:no_such_tag"], window, target).wait()
        return (target / "dbt.log").read_text()

    seeded = dbt_resource(nightjar_env)
    assert seeded.seed_parse_state()
    assert not seeded.seed_parse_state()  # a second setup keeps what is there
    assert "Unable to do partial parsing" not in first_build_log(seeded, "seeded")

    unseeded = seeded.model_copy(update={"state_dir": str(tmp_path / "no_state")})
    assert "Unable to do partial parsing" in first_build_log(unseeded, "unseeded")


def test_full_tests_job_and_schedule_take_their_settings():
    job, schedule = build_dbt_full_tests_job("15 3 * * 6", "Europe/Paris")
    assert job.name == DBT_FULL_TESTS_JOB_NAME
    assert schedule.job_name == job.name
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 3 * * 6", "Europe/Paris")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert "dbt" in job.required_resource_keys


def test_failure_message_names_failing_tests_and_leaves_out_warnings():
    run_results = {
        "results": [
            {"unique_id": "test.nightjar.unique_stg_applications_application_id.abc", "status": "fail", "failures": 1},
            {
                "unique_id": "test.nightjar.assert_outcomes_refer_to_loaded_applications",
                "status": "warn",
                "failures": 2,
            },
            {"unique_id": "test.nightjar.not_null_stg_outcomes_outcome_date.def", "status": "pass", "failures": 0},
            {"unique_id": "model.nightjar.stg_applications", "status": "success"},
            {"unique_id": "test.nightjar.broken", "status": "error", "message": "Binder Error: no such column"},
        ]
    }
    manifest = {
        "nodes": {
            "test.nightjar.unique_stg_applications_application_id.abc": {
                "name": "unique_stg_applications_application_id",
                "attached_node": "model.nightjar.stg_applications",
            }
        }
    }
    outcomes = read_test_outcomes(run_results, manifest)
    assert [o.status for o in outcomes] == ["fail", "warn", "pass", "error"]
    assert outcomes[0] == DbtTestOutcome(
        name=UNIQUE_ID_TEST,
        unique_id="test.nightjar.unique_stg_applications_application_id.abc",
        status="fail",
        failures=1,
        message="",
        tested="stg_applications",
    )
    message = failure_message(outcomes)
    assert message.splitlines() == [
        "2 of 4 dbt tests failed over all history:",
        f"- {UNIQUE_ID_TEST} on stg_applications: 1 failing row(s)",
        "- broken: could not run: Binder Error: no such column",
    ]


# --- end to end: a bad stored day ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_duplicate_key_fails_its_day_only_and_the_full_history_job(defs, nightjar_env):
    """An application_id stored twice on D2 fails D2's build; D3 still builds; the full-history job names the test."""
    _, dbt_keys = _keys(defs)
    assert run_days(defs, "ingest", D1, D2).success
    _sql(
        nightjar_env,
        f"INSERT INTO raw.applications SELECT * FROM raw.applications WHERE application_date = DATE '{D2}' LIMIT 1",
    )

    # D2's build (dbt only: re-ingesting D2 would replace the bad row) fails on its own duplicate.
    d2 = run_days(defs, "ingest", D2, D2, asset_selection=dbt_keys, raise_on_error=False)
    assert not d2.success
    assert UNIQUE_ID_TEST in _failed_checks(d2)

    # D3's build (raw + dbt) succeeds: its tests read D3 only, and D2's duplicate is still stored.
    d3 = run_days(defs, "ingest", D3, D3)
    assert d3.success
    assert _failed_checks(d3) == set()
    assert scalar(nightjar_env, "SELECT count(*) - count(DISTINCT application_id) FROM raw.applications") == 1
    assert (
        scalar(
            nightjar_env, f"SELECT count(*) FROM marts.fct_application_features WHERE application_date = DATE '{D3}'"
        )
        > 0
    )

    # Every test over all history: fails, naming the test and the model it tests.
    full = defs.resolve_job_def(DBT_FULL_TESTS_JOB_NAME).execute_in_process(raise_on_error=False)
    assert not full.success
    description = _full_tests_failure(full)
    assert f"- {UNIQUE_ID_TEST} on stg_applications: 1 failing row(s)" in description, description


@pytest.mark.slow
def test_a_bad_value_fails_its_day_only_and_the_full_history_job_passes_once_repaired(defs, nightjar_env):
    """A term of 48 months stored on D1 fails D1's build, not D2's; the full-history job fails until it is fixed."""
    raw_keys, dbt_keys = _keys(defs)
    assert run_days(defs, "ingest", D1, D2, asset_selection=raw_keys).success
    bad_id = scalar(
        nightjar_env, f"SELECT min(application_id) FROM raw.applications WHERE application_date = DATE '{D1}'"
    )
    _sql(nightjar_env, f"UPDATE raw.applications SET term_months = 48 WHERE application_id = '{bad_id}'")

    d1 = run_days(defs, "ingest", D1, D1, asset_selection=dbt_keys, raise_on_error=False)
    assert not d1.success
    assert TERM_TEST in _failed_checks(d1)

    d2 = run_days(defs, "ingest", D2, D2, asset_selection=dbt_keys)
    assert d2.success
    assert _failed_checks(d2) == set()

    full_tests = defs.resolve_job_def(DBT_FULL_TESTS_JOB_NAME)
    failed = full_tests.execute_in_process(raise_on_error=False)
    assert not failed.success
    assert f"- {TERM_TEST} on stg_applications: 1 failing row(s)" in _full_tests_failure(failed)

    # Repaired (staging models are views over raw): every test passes over all history.
    _sql(nightjar_env, f"UPDATE raw.applications SET term_months = 36 WHERE application_id = '{bad_id}'")
    passed = full_tests.execute_in_process()
    assert passed.success
    (output,) = [e for e in passed.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {name: value.value for name, value in output.step_output_data.metadata.items()}
    assert metadata["failed"] == 0 and metadata["passed"] >= 30, metadata
