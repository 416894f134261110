"""The prod configuration on real servers: Postgres as warehouse, dbt target and Dagster storage, switched on
by NIGHTJAR_ENV=prod and connection variables alone, with the same code as the embedded default."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import dagster as dg
import pytest

from resources.settings import PROJECT_ROOT
from tests.chain import run_days
from tests.postgres_server import postgres_bin, running_postgres
from tests.stores import TEST_ROWS_PER_DAY, point_stores_at

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        postgres_bin() is None, reason="PostgreSQL server binaries not installed (.ci/run installs them)"
    ),
]

MODEL = "loan_default_risk"
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 30)


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    root = tmp_path_factory.mktemp("prod")
    with running_postgres(["warehouse", "dagster"]) as server, pytest.MonkeyPatch.context() as mp:
        home = root / "dagster_home"
        home.mkdir()
        env = {"NIGHTJAR_ENV": "prod", **server.env("NIGHTJAR_PG", "warehouse"), **server.env("DAGSTER_PG", "dagster")}
        settings = point_stores_at(root, mp, **env)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        from definitions import build_definitions

        yield settings, build_definitions(settings)


def test_warehouse_writes_are_atomic_and_idempotent_on_postgres(prod):
    from resources.build import open_warehouse

    settings, _ = prod
    warehouse = open_warehouse(settings)
    assert warehouse.describe().startswith("postgres:")
    import pandas as pd

    from resources.source import SyntheticSource
    from resources.source.declarations import load_raw_tables

    columns = load_raw_tables(settings.manifest_path)["raw.applications"].columns
    day = date(2026, 2, 1)
    rows = pd.concat(SyntheticSource(rows_per_day=50).applications(day), ignore_index=True)
    for _ in range(2):
        written = warehouse.replace_window(
            "raw.applications", "application_date", day, day + timedelta(days=1), [rows], columns
        )
        assert written == 50
    assert (
        warehouse.query("SELECT count(*) AS n FROM raw.applications WHERE application_date = DATE '2026-02-01'")["n"][0]
        == 50
    )
    back = warehouse.read_window("raw.applications", "application_date", day, day + timedelta(days=1))
    assert sorted(back["application_id"]) == sorted(rows["application_id"])

    def broken():
        yield rows.head(10)
        raise RuntimeError("source failed half-way")

    with pytest.raises(RuntimeError):
        warehouse.replace_window(
            "raw.applications", "application_date", day, day + timedelta(days=1), broken(), columns
        )
    assert (
        warehouse.query("SELECT count(*) AS n FROM raw.applications WHERE application_date = DATE '2026-02-01'")["n"][0]
        == 50
    )
    warehouse.replace_window("raw.applications", "application_date", day, day + timedelta(days=1), [], columns)


def test_the_whole_chain_runs_on_postgres_with_dagster_storage_there_too(prod):
    settings, defs = prod
    from resources.build import open_warehouse

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert run_days(defs, "ingest", FIRST, LAST, instance=instance).success
        assert defs.resolve_job_def(f"train_{MODEL}").execute_in_process(instance=instance).success
        day = LAST + timedelta(days=1)
        nightly = run_days(defs, "nightly", day, day, instance=instance)
        assert nightly.success
        assert len(instance.get_runs()) == 3

    warehouse = open_warehouse(settings)
    count = lambda sql: int(warehouse.query(sql).iloc[0, 0])  # noqa: E731
    assert count("SELECT count(*) FROM marts.fct_application_features") == 31 * TEST_ROWS_PER_DAY
    assert count(f"SELECT count(*) FROM predictions.{MODEL} WHERE model_version = 1") == TEST_ROWS_PER_DAY
    assert count("SELECT count(*) FROM audit.model_alias_changes") == 2
    checks = [c for c in nightly.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks)
    # A day is found by an index, not a scan of the whole table (the marts' window and unique key, nightjar's
    # tables' window column), as `\d` shows a DBA.
    indexed = warehouse.query("SELECT schemaname || '.' || tablename AS t, indexdef FROM pg_indexes")
    on = lambda table: " ".join(indexed.loc[indexed["t"] == table, "indexdef"])  # noqa: E731
    assert "(application_date)" in on("marts.fct_application_features")
    assert "(application_id)" in on("marts.fct_application_features")
    assert "(outcome_date)" in on("marts.fct_labeled_applications")
    assert "(application_date)" in on(f"predictions.{MODEL}")
