"""End to end on real dbt and DuckDB: raw days through the marts, re-runs without duplicates, dbt checks passing."""

from __future__ import annotations

from datetime import date

import pytest

from tests.chain import run_days, scalar
from tests.stores import TEST_LABEL_DELAY_DAYS, TEST_ROWS_PER_DAY

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 6)
DAYS = (LAST - FIRST).days + 1

pytestmark = pytest.mark.slow


def _counts(settings) -> dict[str, int]:
    tables = {
        "raw_applications": "raw.applications",
        "raw_outcomes": "raw.outcomes",
        "features": "marts.fct_application_features",
        "labeled": "marts.fct_labeled_applications",
    }
    counts = {name: int(scalar(settings, f"SELECT count(*) FROM {table}")) for name, table in tables.items()}
    counts["features_distinct_ids"] = int(
        scalar(settings, "SELECT count(DISTINCT application_id) FROM marts.fct_application_features")
    )
    return counts


def test_days_flow_from_raw_to_marts_and_rerun_is_idempotent(defs, nightjar_env):
    result = run_days(defs, "ingest", FIRST, LAST)
    assert result.success

    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 10, "dbt tests should run as asset checks"
    failed = [c.check_name for c in checks if not c.passed]
    assert failed == []

    counts = _counts(nightjar_env)
    assert counts["raw_applications"] == DAYS * TEST_ROWS_PER_DAY
    assert counts["features"] == counts["raw_applications"] == counts["features_distinct_ids"]
    # Outcomes arrive TEST_LABEL_DELAY_DAYS after the application; earlier outcome days refer to days before the
    # history starts and are empty.
    assert counts["raw_outcomes"] == (DAYS - TEST_LABEL_DELAY_DAYS) * TEST_ROWS_PER_DAY
    assert counts["labeled"] == counts["raw_outcomes"]

    # Re-running one day (raw and dbt) leaves every table as it was: the day is replaced, not appended.
    day = date(2026, 1, 5)
    before_day = scalar(
        nightjar_env,
        "SELECT sum(loan_amount) FROM marts.fct_application_features WHERE application_date = DATE '2026-01-05'",
    )
    assert run_days(defs, "ingest", day, day).success
    assert _counts(nightjar_env) == counts
    after_day = scalar(
        nightjar_env,
        "SELECT sum(loan_amount) FROM marts.fct_application_features WHERE application_date = DATE '2026-01-05'",
    )
    assert after_day == pytest.approx(before_day)


def test_a_failing_dbt_test_blocks_downstream_models(defs, nightjar_env):
    """Bad raw data (an unknown home_ownership) fails a blocking dbt check; the marts are not built from it."""
    import duckdb

    from resources.build import open_warehouse

    keys = sorted(defs.resolve_job_def("ingest").asset_layer.selected_asset_keys)
    raw_keys = [k for k in keys if k.path[0] == "raw"]
    assert run_days(defs, "ingest", FIRST, FIRST, asset_selection=raw_keys).success
    with duckdb.connect(str(nightjar_env.warehouse_path)) as conn:  # corrupt the day as a broken upstream would
        conn.execute("UPDATE raw.applications SET home_ownership = 'CASTLE' WHERE application_id LIKE '%0000001'")
    warehouse = open_warehouse(nightjar_env)

    dbt_keys = [k for k in keys if k.path[0] != "raw"]
    result = run_days(defs, "ingest", FIRST, FIRST, asset_selection=dbt_keys, raise_on_error=False)
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert any("accepted_values" in name and "home_ownership" in name for name in failed), failed
    assert not warehouse.table_exists("marts.fct_application_features")
