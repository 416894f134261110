"""The dbt project on Spark, through a real Spark Connect server: the same models and tests as on DuckDB, the marts
replacing their window by overwriting day partitions (macros/window_mart_config.sql), and the same rows.

The raw days are ingested into DuckDB by the real ingest job, copied into Spark with their declared types, then
`dbt build` runs on each engine: all history, then a window of two days again. Both marts must hold the same rows
on both engines after each build, with no duplicate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from resources.build import open_warehouse
from resources.settings import DBT_PROJECT_DIR
from resources.source.declarations import load_raw_tables
from tests.chain import run_days
from tests.stores import TEST_ROWS_PER_DAY

pytestmark = pytest.mark.slow

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 6)
MARTS = {"fct_application_features": "application_date", "fct_labeled_applications": "outcome_date"}
_SPARK_TYPES = {
    "VARCHAR": "string",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "double",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "BOOLEAN": "boolean",
}


def _copy_raw_into_spark(spark, settings) -> None:
    """Each declared raw table, with its declared types, from the DuckDB warehouse into the Spark catalog."""
    from pyspark.sql import functions as F

    warehouse = open_warehouse(settings)
    spark.sql("CREATE SCHEMA IF NOT EXISTS raw")
    for table in load_raw_tables(DBT_PROJECT_DIR / "target" / "manifest.json").values():
        frame = warehouse.query(f"SELECT * FROM {table.qualified}")
        columns = [F.col(c.name).cast(_SPARK_TYPES[c.dtype]).alias(c.name) for c in table.columns]
        spark.createDataFrame(frame).select(*columns).write.mode("overwrite").saveAsTable(table.qualified)


def _dbt_build(target: str, env: dict, target_path: Path, window: tuple[date, date] | None = None) -> None:
    dbt = Path(sys.executable).parent / "dbt"
    command = [str(dbt), "build", "--target", target, "--profiles-dir", ".", "--project-dir", "."]
    command += ["--target-path", str(target_path)]
    if window:
        command += ["--vars", f'{{"min_date": "{window[0]}", "max_date": "{window[1]}"}}']
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "ERROR=0" in done.stdout and "SKIP=0" in done.stdout


def _same_rows(spark, settings, mart: str) -> int:
    duck = open_warehouse(settings).query(f"SELECT * FROM marts.{mart}")
    spark.catalog.refreshTable(f"marts.{mart}")  # dbt rewrote its files through another session
    sparked = spark.table(f"marts.{mart}").toPandas()  # a few days of test rows
    assert sorted(duck.columns) == sorted(sparked.columns), mart
    assert sparked["application_id"].is_unique, f"{mart}: duplicate rows on Spark"
    key = ["application_id"]
    duck = duck.sort_values(key).reset_index(drop=True)
    sparked = sparked[duck.columns].sort_values(key).reset_index(drop=True)
    for column in duck.columns:  # types differ by engine (DATE vs date objects): compare as values
        left, right = duck[column], sparked[column]
        if pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left):
            pd.testing.assert_series_equal(left.astype(float), right.astype(float), check_names=False, rtol=1e-12)
        elif "date" in column or column.endswith("_at"):
            assert (pd.to_datetime(left) == pd.to_datetime(right)).all(), (mart, column)
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), (mart, column)
    return len(duck)


def test_the_dbt_project_builds_the_same_marts_on_spark(nightjar_env, defs, spark, spark_server, tmp_path):
    raw = [dg.AssetKey(["raw", "applications"]), dg.AssetKey(["raw", "outcomes"])]
    with dg.DagsterInstance.get() as instance:
        run_days(defs, "ingest", FIRST, LAST, instance, asset_selection=raw)
    _copy_raw_into_spark(spark, nightjar_env)

    spark_env = {**os.environ, "SPARK_REMOTE": spark_server.remote, "NIGHTJAR_SPARK_REMOTE": spark_server.remote}
    duck_env = {**os.environ, "NIGHTJAR_WAREHOUSE_PATH": str(nightjar_env.warehouse_path)}
    for window in (None, (date(2026, 1, 3), date(2026, 1, 5))):  # all history, then two days again
        _dbt_build("spark", spark_env, tmp_path / "spark-target", window)
        _dbt_build("dev", duck_env, tmp_path / "duck-target", window)
        features = _same_rows(spark, nightjar_env, "fct_application_features")
        assert features == (LAST - FIRST).days * TEST_ROWS_PER_DAY + TEST_ROWS_PER_DAY
        assert _same_rows(spark, nightjar_env, "fct_labeled_applications") > 0
    # The window's days were overwritten, the others kept: partitions of the window column on Spark.
    partitions = spark.sql("SHOW PARTITIONS marts.fct_application_features").toPandas()
    assert len(partitions) == (LAST - FIRST).days + 1
