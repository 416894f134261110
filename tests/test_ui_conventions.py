"""What a user sees in the Dagster UI: dbt checks with descriptions, dbt assets with column types, schedules and
sensors that say what they do, sensor ticks that say what they alerted, a partitioned job that says how to
launch it, and `make run` whose terminal holds the summary while the runs' logs stay in the UI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.transform.translator import check_description
from resources.settings import PROJECT_ROOT, stores_under
from tests.sensor_helpers import FakeClock, checked_asset, failed_run, sensors_for, tick
from tests.stores import point_stores_at

DBT_GROUPS = {"staging", "intermediate", "marts"}


@pytest.fixture(scope="module")
def ui_defs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.Definitions]:
    """The real Definitions, as `dagster dev` loads them (stores in a temp folder), once for the module."""
    from definitions import build_definitions

    with pytest.MonkeyPatch.context() as monkeypatch:
        yield build_definitions(point_stores_at(tmp_path_factory.mktemp("ui"), monkeypatch))


def _dbt_assets(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    return [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition)
        and a.group_names_by_key
        and DBT_GROUPS & set(a.group_names_by_key.values())
    ]


def _dbt_check_specs(defs: dg.Definitions) -> dict[str, dg.AssetCheckSpec]:
    return {spec.name: spec for a in _dbt_assets(defs) for spec in a.check_specs}


# --- dbt checks and column types -----------------------------------------------------------------------------------


def test_every_dbt_check_has_a_description(ui_defs):
    specs = _dbt_check_specs(ui_defs)
    assert len(specs) >= 30
    assert [name for name, spec in specs.items() if not (spec.description or "").strip()] == []

    # Built from the generic test when the YAML gives none, naming the column, the model and the values.
    unique = specs["unique_stg_applications_application_id"].description
    assert unique.startswith("unique: every application_id of stg_applications is distinct")
    values = specs["accepted_values_stg_applications_home_ownership__RENT__MORTGAGE__OWN"].description
    assert values.startswith("accepted_values: home_ownership of stg_applications is one of RENT, MORTGAGE, OWN")
    # Generic tests say that they check the run's window (macros/test_window.sql).
    assert "Checks the run's window of application_date only" in unique
    # dbt's own `description:`, on a generic test in the model YAML or a singular test in tests/**/schema.yml.
    label = specs["accepted_values_stg_outcomes_defaulted__False__0__1"].description
    assert label.startswith("The label is 0 (repaid) or 1 (defaulted).")
    singular = specs["assert_positive_loan_amounts"].description
    assert singular == "Fails for feature rows whose loan_amount is zero or negative."


def test_a_singular_test_on_two_models_is_a_check_with_its_description(ui_defs):
    """`config.meta.dagster.ref` names the model it checks; dagster-dbt would otherwise log an observation and
    warn on every run."""
    spec = _dbt_check_specs(ui_defs)["assert_outcomes_refer_to_loaded_applications"]
    assert spec.asset_key == dg.AssetKey(["staging", "stg_outcomes"])
    assert not spec.blocking  # severity warn
    assert spec.description.startswith("Warns for outcomes of applications")


def test_check_description_fallbacks():
    manifest = {"nodes": {"model.p.orders": {"name": "orders", "config": {"meta": {}}}}}
    generic = {
        "name": "t",
        "attached_node": "model.p.orders",
        "column_name": "id",
        "config": {"where": "id > 0"},
        "test_metadata": {
            "name": "relationships",
            "namespace": None,
            "kwargs": {
                "column_name": "id",
                "to": "source('raw', 'customers')",
                "field": "cid",
                "model": "{{ get_where_subquery(ref('orders')) }}",
            },
        },
    }
    assert check_description(generic, manifest) == (
        "relationships: every id of orders is a cid of raw.customers (where id > 0)"
    )
    custom = {
        "name": "t",
        "attached_node": "model.p.orders",
        "test_metadata": {
            "name": "expression_is_true",
            "namespace": "dbt_utils",
            "kwargs": {"expression": "a >= b", "model": "{{ get_where_subquery(ref('orders')) }}"},
        },
    }
    assert check_description(custom, manifest) == "dbt_utils.expression_is_true on orders (expression=a >= b)"
    meta = {"name": "t", "meta": {"description": "from meta"}, "test_metadata": custom["test_metadata"]}
    assert check_description(meta, manifest) == "from meta"
    singular = {
        "name": "assert_x",
        "raw_code": "{{ config(severity='warn') }}\n\n-- Rows that are bad:\n-- all of them.\nselect 1\n-- not this",
    }
    assert check_description(singular, manifest) == "Rows that are bad: all of them."
    assert check_description({"name": "assert_y", "raw_code": "select 1"}, manifest) == "dbt test assert_y"


def test_dbt_models_show_their_column_types(ui_defs):
    """Types come from `data_type` in the model YAML (via the manifest): no warehouse query at load or per run."""
    shown = {}
    for assets in _dbt_assets(ui_defs):
        for key, spec in assets.specs_by_key.items():
            if spec.group_name in DBT_GROUPS:
                schema = spec.metadata.get("dagster/column_schema")
                shown[key.to_user_string()] = {c.name: c.type for c in schema.columns} if schema else {}
    marts = {k: v for k, v in shown.items() if k.startswith("marts/")}
    assert set(marts) == {"marts/fct_application_features", "marts/fct_labeled_applications"}
    assert {name: cols for name, cols in shown.items() if not cols or "?" in cols.values()} == {}
    assert marts["marts/fct_labeled_applications"]["application_date"] == "date"
    assert marts["marts/fct_labeled_applications"]["defaulted"] == "integer"
    assert marts["marts/fct_application_features"]["monthly_installment"] == "double"


@pytest.mark.slow
def test_declared_column_types_are_the_warehouse_types(ui_defs, tmp_path, monkeypatch):
    """The types the UI shows are the ones the warehouse holds (a type declared wrong would mislead)."""
    from definitions import build_definitions
    from resources.build import open_warehouse
    from tests.chain import run_days

    settings = point_stores_at(tmp_path, monkeypatch)
    defs = build_definitions(settings)
    assert run_days(defs, "ingest", date(2026, 1, 1), date(2026, 1, 4)).success
    actual = open_warehouse(settings).query(
        "SELECT table_schema || '/' || table_name AS t, column_name AS c, lower(data_type) AS type "
        "FROM information_schema.columns WHERE table_schema IN ('staging', 'intermediate', 'marts')"
    )
    in_warehouse = {(row.t, row.c): row.type for row in actual.itertuples()}
    declared = {}
    for assets in _dbt_assets(defs):
        for key, spec in assets.specs_by_key.items():
            for column in spec.metadata["dagster/column_schema"].columns:
                declared[("/".join(key.path), column.name)] = column.type
    assert declared == {k: v for k, v in in_warehouse.items() if k in declared}
    assert set(declared) <= set(in_warehouse)


# --- code references ------------------------------------------------------------------------------------------------


def test_every_asset_links_the_function_that_computes_it(ui_defs):
    """The asset page's "open source" link: a file of the repo and the line of the asset's own decorator, not the
    wrapper that records its cost (assets/step_cost.py)."""
    shown = {}
    for node in ui_defs.resolve_asset_graph().asset_nodes:
        references = node.metadata.get("dagster/code_references")
        shown[node.key.to_user_string()] = [
            (Path(r.file_path).relative_to(PROJECT_ROOT).as_posix(), r.line_number)
            for r in (references.code_references if references else [])
        ]
    assert [key for key, refs in shown.items() if len(refs) != 1] == []
    assert shown["raw/applications"][0][0] == "assets/raw/raw_assets.py"
    assert shown["marts/fct_application_features"][0][0] == "assets/transform/dbt_assets.py"
    assert shown["loan_default_risk/drift"][0][0] == "assets/monitoring/drift_assets.py"
    for file, line in (refs[0] for refs in shown.values()):
        declared = (PROJECT_ROOT / file).read_text().splitlines()[line - 1].strip()
        assert declared.startswith("@") and "asset" in declared, f"{file}:{line} is not where an asset is declared"


# --- schedules, sensors, jobs --------------------------------------------------------------------------------------


def test_every_schedule_and_sensor_has_a_description(ui_defs):
    schedules = {s.name: s.description for s in ui_defs.schedules}
    sensors = {s.name: s.description for s in ui_defs.sensors}
    assert {"nightly_schedule", "dbt_full_tests_schedule"} <= set(schedules)
    missing = [name for name, text in {**schedules, **sensors}.items() if not (text or "").strip()]
    assert missing == [], f"no description (the UI shows none): {missing}"


def test_partitioned_jobs_say_how_to_launch_them(ui_defs):
    """Launched with no partition, Dagster fails with its internal error: the job says to pick a day, and names
    the schedule whose "Preview tick result" launches yesterday's run."""
    nightly = ui_defs.resolve_job_def("nightly")
    assert nightly.partitions_def is not None
    assert "launch it for a day" in nightly.description and "nightly_schedule" in nightly.description
    assert "Preview tick result" in nightly.description
    assert "launch it for a day" in ui_defs.resolve_job_def("ingest").description
    assert any(s.name == "nightly_schedule" and s.job_name == "nightly" for s in ui_defs.schedules)


# --- sensor ticks ---------------------------------------------------------------------------------------------------


def test_a_checks_sensor_tick_that_alerted_says_so(webhook, dagster_instance):
    sensor = sensors_for(["demo_model"], FakeClock(datetime.now(UTC)))["monitoring_checks_sensor"]
    alerts = webhook.alerts()
    _, cursor = tick(sensor, dagster_instance, alerts, None)

    @dg.asset
    def quiet_asset() -> None:
        pass

    assert dg.materialize([quiet_asset], instance=dagster_instance).success
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert result.skip_reason.skip_message == "1 finished run(s), no failed check: nothing alerted"

    orders = checked_asset(["orders"], "row_count", dg.AssetCheckSeverity.ERROR)
    assert dg.materialize([orders], instance=dagster_instance, partition_key="2026-03-09").success
    result, cursor = tick(sensor, dagster_instance, alerts, cursor)
    assert len(webhook.posts) == 1 and not result.run_requests
    assert result.skip_reason.skip_message == (
        "alerted: 1 failed check(s): orders row_count (2026-03-09) (from 1 finished run(s)); no retraining"
    )

    # A tick that also requested a training run shows that run (Dagster allows no skip text beside it).
    drift = checked_asset(["demo_model", "drift"], "data_drift", dg.AssetCheckSeverity.ERROR)
    assert dg.materialize([drift], instance=dagster_instance, partition_key="2026-03-09").success
    result, _ = tick(sensor, dagster_instance, alerts, cursor)
    assert [r.job_name for r in result.run_requests] == ["train_demo_model"] and result.skip_reason is None


def test_a_missing_predictions_tick_that_alerted_says_so(webhook, dagster_instance):
    sensor = sensors_for(["demo_model"], FakeClock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC)))[
        "missing_predictions_sensor"
    ]
    result, cursor = tick(sensor, dagster_instance, webhook.alerts(), None)
    assert result.skip_reason.skip_message == "alerted: predictions for 2026-03-09 missing: demo_model"
    result, _ = tick(sensor, dagster_instance, webhook.alerts(), cursor)
    assert not result.skip_reason.skip_message.startswith("alerted")  # alerted once


def test_a_run_failure_tick_that_alerted_acts_on_the_run(webhook, dagster_instance):
    """Dagster's run-status convention: the tick is a success naming the failed run, not a skip."""
    sensor = sensors_for(["demo_model"], FakeClock(datetime.now(UTC)))["alert_on_run_failure"]
    resources = {"alerts": webhook.alerts()}
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=dagster_instance, resources=resources))

    failed = failed_run(dagster_instance)
    data = sensor.evaluate_tick(
        dg.build_sensor_context(instance=dagster_instance, cursor=first.cursor, resources=resources)
    )
    assert [r.dagster_run.run_id for r in data.dagster_run_reactions] == [failed.run_id]
    assert data.dagster_run_reactions[0].error is None and not data.skip_message
    assert [p["details"]["run_id"] for p in webhook.posts] == [failed.run_id]


# --- make run's terminal -------------------------------------------------------------------------------------------


def test_bootstrap_terminal_gets_the_summary_and_the_ui_keeps_the_run_output(tmp_path):
    """Output a run prints (dbt's, through dagster-dbt) goes to the run's compute logs, which the UI shows, and
    not to the terminal of `make run`, which gets the summary lines."""
    env = {**stores_under(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    script = textwrap.dedent("""
        import dagster as dg
        from jobs.bootstrap import summary_only_on_stdout

        @dg.op
        def chatty():
            print("13:01:02  1 of 39 START sql view model staging.stg_applications")

        @dg.job
        def job():
            chatty()

        with dg.DagsterInstance.get() as instance, summary_only_on_stdout() as out:
            result = job.execute_in_process(instance=instance)
            print(f"  job: run {result.run_id} succeeded", file=out)
        print("after")
    """)
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("  job: run ") and lines[1] == "after", run.stdout
    run_id = lines[0].split()[2]
    logs = list((Path(env["DAGSTER_HOME"]) / "storage" / run_id / "compute_logs").glob("*.out"))
    assert any("1 of 39 START sql view model" in log.read_text() for log in logs)


# --- metadata a person reads ---------------------------------------------------------------------------------------

# Objects dagster-dbt keeps on each dbt asset for its own use, which the Dagster UI hides by name.
DBT_INTERNAL_METADATA = {"dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator"}
SHOWN_AS_IS = (dg.MetadataValue, str, int, float, bool, dg.TableSchema)


def test_dbt_assets_carry_no_unserializable_metadata(ui_defs):
    """Every metadata entry the UI shows on a dbt asset is a value, none an object it would print as
    "[DbtProject] (unserializable)"."""
    specs = [spec for a in _dbt_assets(ui_defs) for spec in a.specs]
    assert len(specs) >= 5  # the models
    objects = {
        f"{spec.key.to_user_string()}: {key}"
        for spec in specs
        for key, value in spec.metadata.items()
        if key not in DBT_INTERNAL_METADATA and not isinstance(value, SHOWN_AS_IS)
    }
    assert objects == set()
    assert not any("dagster_dbt/project" in spec.metadata for spec in specs)
