"""The whole chain on Spark through a real Spark Connect server, switched on by NIGHTJAR_ENGINE=spark alone, against
the same days on DuckDB: same marts, same training set, same ids, scores (to 1e-9) and decisions, in the champion's
predictions and the challenger's shadow, the same drift verdicts, and the same audit verdict on a rejected file.

Each engine runs what a user runs: ingest (raw from the generator, dbt build with its tests, then every dbt test over
all history as the weekly job runs them), train (version 1,
the champion), nightly (scoring, drift), a weak retraining (version 2, refused by the gate: the challenger), nightly
again (the challenger scores in shadow), the day's drift checks, then a landing file with a bad row for a stored
day. One server for the
module; each engine's stores (warehouse or Spark catalog, MLflow, Dagster home) are the test's own.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from jobs.dbt_full_tests import DBT_FULL_TESTS_JOB_NAME
from resources.settings import MODEL_SPECS_DIR
from tests.chain import run_days
from tests.stores import TEST_ROWS_PER_DAY, point_stores_at

pytestmark = pytest.mark.slow

MODEL = "loan_default_risk"
# Two weeks of history: every stored day is a partition of each Spark table, written and listed on every step, and
# the comparison needs no more; the spec holds out 5 of its labeled days (the shipped 14 would leave none to train).
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 14)
SCORED = LAST + timedelta(days=1)
REJECTED_DAY = date(2026, 1, 10)
HOLDOUT_DAYS = 5


def _write_spec(folder: Path, weak: bool) -> None:
    """The shipped spec, holding out HOLDOUT_DAYS; ``weak``: three uninformative features, a challenger the gate
    refuses."""
    spec = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    spec["evaluation"]["holdout_days"] = HOLDOUT_DAYS
    if weak:
        spec["features"] = {"numeric": ["age"], "categorical": ["state", "channel"]}
        spec["evaluation"]["segments"] = ["state"]
        spec["promotion"]["min_primary"] = 0.3
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loan_default.yaml").write_text(yaml.safe_dump(spec))


def _reject_a_landing_file(settings, landing: Path) -> dg.ExecuteInProcessResult:
    """raw.applications of a stored day read from a landing file with one negative income: refused."""
    from assets.partitions import build_daily_partitions
    from assets.raw import build_raw_assets
    from resources.build import build_resources, build_warehouse
    from resources.source.declarations import load_raw_tables
    from resources.source.schema import CompleteWhen

    with build_warehouse(settings).process_config_and_initialize_cm() as warehouse:
        stored = warehouse.read_window(
            "raw.applications", "application_date", REJECTED_DAY, REJECTED_DAY + timedelta(days=1)
        )
    bad = stored.drop(columns=[c for c in stored.columns if c.startswith("_")]).sort_values("application_id")
    bad.loc[bad.index[3], "annual_income"] = -5.0
    path = landing / "raw" / "applications" / f"{REJECTED_DAY.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    bad.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    table = dataclasses.replace(
        load_raw_tables(settings.manifest_path)["raw.applications"],
        origin="landing",
        complete_when=CompleteWhen(quiet_seconds=0),
    )
    assets = build_raw_assets([table], build_daily_partitions(settings), settings.warehouse_kind)
    resources = {k: v for k, v in build_resources(settings).items() if k in ("source", "warehouse", "alerts")}
    return dg.materialize(assets, resources=resources, partition_key=REJECTED_DAY.isoformat(), raise_on_error=False)


def _run_chain(root: Path, **env: str) -> dict:
    """Every step on one engine; what a user would look at afterwards."""
    from definitions import build_definitions
    from resources.build import build_warehouse

    specs, landing = root / "specs", root / "landing"
    _write_spec(specs, weak=False)
    out: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        settings = point_stores_at(
            root, mp, NIGHTJAR_MODEL_SPECS_DIR=str(specs), NIGHTJAR_LANDING_DIR=str(landing), **env
        )
        defs = build_definitions(settings)
        with dg.DagsterInstance.get() as instance:
            ingest = run_days(defs, "ingest", FIRST, LAST, instance)
            assert ingest.success
            out["dbt_checks"] = sorted(
                (c.asset_key.to_user_string(), c.check_name, c.passed) for c in ingest.get_asset_check_evaluations()
            )
            # Every dbt test over all history (no window vars), as the weekly job runs it.
            full = defs.resolve_job_def(DBT_FULL_TESTS_JOB_NAME).execute_in_process(instance=instance)
            assert full.success
            [tested] = [e for e in full.all_events if e.event_type_value == "STEP_OUTPUT"]
            out["dbt_full_tests"] = {
                k: v.value for k, v in tested.event_specific_data.metadata.items() if k in ("tests", "passed", "failed")
            }
            assert defs.resolve_job_def(f"train_{MODEL}").execute_in_process(instance=instance).success
            first = run_days(defs, "nightly", SCORED, SCORED, instance)
            assert first.success
            _write_spec(specs, weak=True)
            weak = build_definitions(settings)
            weak.resolve_job_def(f"train_{MODEL}").execute_in_process(instance=instance, raise_on_error=False)
            second = run_days(weak, "nightly", SCORED, SCORED, instance)
            assert second.success
            drift = run_days(weak, f"monitor_{MODEL}", SCORED, SCORED, instance, [dg.AssetKey([MODEL, "drift"])])
            out["drift"] = sorted(
                (c.check_name, c.passed, str(c.severity)) for c in drift.get_asset_check_evaluations()
            )
        rejected = _reject_a_landing_file(settings, landing)
        assert not rejected.success
        with build_warehouse(settings).process_config_and_initialize_cm() as warehouse:  # its session closed after
            query = warehouse.query
            for mart in ("fct_application_features", "fct_labeled_applications"):
                out[mart] = query(f"SELECT * FROM marts.{mart}")
            out["training"] = query(f"SELECT * FROM ml.{MODEL}_training_set")
            for table in (MODEL, f"{MODEL}_shadow", f"{MODEL}_review_queue"):
                out[table] = query(
                    f"SELECT application_id, application_date, score, decision, model_version, decided_by "
                    f"FROM predictions.{table}"
                )
            out["rejections"] = query("SELECT * FROM audit.rejected_files")
            out["rejected_day"] = query(
                f"SELECT application_id, annual_income FROM raw.applications "
                f"WHERE application_date = DATE '{REJECTED_DAY.isoformat()}'"
            )
            out["describe"] = warehouse.describe()
    return out


def _same(left: pd.DataFrame, right: pd.DataFrame, what: str, key: str = "application_id") -> None:
    """The same rows, matched by ``key``, every column equal (numbers to 1e-9; dates and times as instants)."""
    assert sorted(left.columns) == sorted(right.columns), what
    assert len(left) == len(right) and left[key].is_unique and right[key].is_unique, what
    left = left.sort_values(key, ignore_index=True)
    right = right[left.columns].sort_values(key, ignore_index=True)
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            pd.testing.assert_series_equal(a.astype(float), b.astype(float), check_names=False, rtol=0, atol=1e-9)
        elif pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            assert (pd.to_datetime(a) == pd.to_datetime(b)).all(), (what, column)
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), (what, column)


def test_the_chain_on_spark_gives_what_it_gives_on_duckdb(spark_server, tmp_path):
    spark = _run_chain(tmp_path / "spark", NIGHTJAR_ENGINE="spark", NIGHTJAR_SPARK_REMOTE=spark_server.remote)
    duck = _run_chain(tmp_path / "duckdb")
    assert spark["describe"] == f"spark:{spark_server.remote}" and duck["describe"].startswith("duckdb:")

    assert spark["dbt_checks"] == duck["dbt_checks"] and all(passed for *_, passed in spark["dbt_checks"])
    tested = spark["dbt_full_tests"]
    assert tested == duck["dbt_full_tests"] and tested["tests"] > 10 and tested["passed"] == tested["tests"]
    for mart in ("fct_application_features", "fct_labeled_applications"):
        _same(spark[mart], duck[mart], mart)
    assert len(spark["fct_application_features"]) == ((SCORED - FIRST).days + 1) * TEST_ROWS_PER_DAY
    _same(spark["training"], duck["training"], "training set")

    # Scored by version 1, the champion; version 2 (refused) in shadow; the review band copied to the queue.
    _same(spark[MODEL], duck[MODEL], "predictions")
    assert len(spark[MODEL]) == TEST_ROWS_PER_DAY and set(spark[MODEL]["model_version"]) == {1}
    _same(spark[f"{MODEL}_shadow"], duck[f"{MODEL}_shadow"], "shadow")
    assert set(spark[f"{MODEL}_shadow"]["model_version"]) == {2}
    _same(spark[f"{MODEL}_review_queue"], duck[f"{MODEL}_review_queue"], "review queue")
    assert spark["drift"] == duck["drift"] and spark["drift"]

    # The rejected file: the same verdict, and the day stored before it unchanged on both.
    broken = []
    for engine in (spark, duck):
        assert len(engine["rejections"]) == 1
        reason = engine["rejections"]["reason"].iloc[0]  # "<file>:" then one line per broken rule
        assert "annual_income" in reason and "min 0" in reason and "data row 4" in reason, reason
        broken.append(reason.split("\n", 1)[1])
    assert broken[0] == broken[1]
    _same(spark["rejected_day"], duck["rejected_day"], "the stored day a file was refused for")
    assert (spark["rejected_day"]["annual_income"] >= 0).all()


def test_the_local_spark_server_keeps_its_scratch_files_in_its_own_folder(spark_server):
    """Spark's block manager and shipped-code folders and Hive's per-session folders go under the server's folder,
    not the machine's /tmp: a server stopped by SIGKILL (a test's teardown, a crash) left them there for good."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(spark_server.remote).getOrCreate()
    assert "default" in {row[0] for row in session.sql("SHOW DATABASES").collect()}  # Hive makes its folders
    scratch = {path.name.split("-")[0] for path in spark_server.temp_dir.iterdir()}
    assert {"blockmgr", "spark"} <= scratch, sorted(scratch)
    assert any(spark_server.temp_dir.glob("*_resources")), sorted(scratch)
