"""Sensitive columns, declared once on a raw column (``config: {meta: {nightjar: {sensitive: true}}}``), are hidden
everywhere nightjar shows or logs data, while the warehouse keeps them and the model uses them.

The declaration: a wrong value is a named error; the loan example declares ``age``, and its marts carry it. The
chain: a copy of the dbt project declares ``annual_income`` sensitive as well, and the applications come from
landing files whose incomes hold a few distinctive values; after ingest, training, scoring and monitoring on real
dbt, DuckDB, MLflow and Evidently, none of those values is in the Dagster home, the reports or the MLflow store
(text files searched as text, gzip files unpacked, Parquet files read), though the warehouse holds them; their drift
is a figure, the report leaves them out. A rejected day shows a sensitive value as masked wherever it is reported.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resources.build import open_warehouse
from resources.manifest import load_manifest
from resources.registry import ModelRegistry
from resources.settings import DBT_PROJECT_DIR
from resources.source.declarations import DeclarationError, load_raw_tables
from resources.source.schema import MASK
from resources.source.sensitive import SensitiveDeclarationError, sensitive_columns
from tests.chain import run_days
from tests.stores import move_store_paths, point_stores_at

APPLICATIONS = "source.nightjar.raw.applications"


def _manifest_with(tmp_path: Path, node: dict) -> Path:
    path = tmp_path / "project" / "target" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"sources": {node["unique_id"]: node}}))
    return path


@pytest.fixture(scope="module")
def applications_node(dbt_manifest) -> dict:
    return json.loads(Path(dbt_manifest).read_text())["sources"][APPLICATIONS]


def test_the_loan_example_declares_age_sensitive_and_its_marts_carry_it(dbt_manifest):
    tables = load_raw_tables(dbt_manifest)
    assert tables["raw.applications"].sensitive_columns == {"age"}
    assert tables["raw.outcomes"].sensitive_columns == set()
    manifest = load_manifest(dbt_manifest)
    for model in ("stg_applications", "int_applications_featurized", "fct_application_features"):
        assert sensitive_columns(manifest, model) == {"age"}, model
        # ... declared in the model's own YAML too, as dbt shows it
        assert manifest_column(manifest, model, "age")["config"]["meta"]["nightjar"] == {"sensitive": True}
    assert "age" in sensitive_columns(manifest, "fct_labeled_applications")


def manifest_column(manifest: dict, model: str, column: str) -> dict:
    node = next(n for n in manifest["nodes"].values() if n.get("resource_type") == "model" and n["name"] == model)
    return node["columns"][column]


@pytest.mark.parametrize(
    ("settings", "field_name", "what"),
    [
        ({"sensitive": "yes"}, "columns.age.meta.nightjar.sensitive", "'yes'"),
        ({"sensitive": 1}, "columns.age.meta.nightjar.sensitive", "1"),
        ({"sensitve": True}, "columns.age.meta.nightjar.sensitve", "unknown setting (known: sensitive)"),
    ],
    ids=["yes", "one", "typo"],
)
def test_a_wrong_sensitive_declaration_names_the_file_table_column_and_field(
    tmp_path, applications_node, settings, field_name, what
):
    node = copy.deepcopy(applications_node)
    node["columns"]["age"]["config"]["meta"]["nightjar"] = settings
    node["columns"]["age"]["meta"]["nightjar"] = settings
    with pytest.raises(DeclarationError) as error:
        load_raw_tables(_manifest_with(tmp_path, node))
    yaml_file = tmp_path / "project" / "models" / "staging" / "loans" / "__sources.yml"
    message = str(error.value)
    assert message.startswith(f"{yaml_file}: table raw.applications: field '{field_name}': "), message
    assert what in message


def test_a_wrong_sensitive_value_on_a_model_column_names_the_file_model_column_and_field(dbt_manifest):
    manifest = copy.deepcopy(load_manifest(dbt_manifest))
    column = manifest_column(manifest, "fct_application_features", "age")
    column["config"]["meta"]["nightjar"] = {"sensitive": "yes"}
    with pytest.raises(SensitiveDeclarationError) as error:
        sensitive_columns(manifest, "fct_application_features", DBT_PROJECT_DIR)
    assert str(error.value) == (
        f"{DBT_PROJECT_DIR}/models/marts/loans/fct_application_features.yml: model fct_application_features: "
        "field 'columns.age.meta.nightjar.sensitive': 'yes' must be true or false"
    )


# --- the chain ------------------------------------------------------------------------------------------------------

MODEL = "loan_default_risk"
HISTORY = (date(2026, 1, 20), date(2026, 2, 14))
TRAINED_AS_OF = "2026-02-06"
SCORED = (date(2026, 2, 9), date(2026, 2, 10))
# The incomes of the landing files: six values that occur nowhere else, so a search finds any copy of them.
SECRET_INCOMES = (731942.0, 864209.0, 592718.0, 648253.0, 917364.0, 503829.0)
ORIGIN_GENERATED = "              origin: synthetic_loans\n              partition_column: application_date\n"
ORIGIN_LANDING = (
    "              origin: landing\n              complete_when: {quiet_seconds: 0}\n"
    "              partition_column: application_date\n"
)
INCOME = "          - name: annual_income\n            description: '{{ doc(\"annual_income\") }}'\n"
INCOME_RULES = "            data_type: double\n            config: {meta: {min: 0}}\n"
INCOME_SENSITIVE = "            data_type: double\n            config: {meta: {min: 0, nightjar: {sensitive: true}}}\n"


def _declared_copy(root: Path) -> Path:
    """The repo's dbt project, copied, with raw.applications read from landing files and annual_income declared
    sensitive (as a user would write it), parsed as `make setup` parses it."""
    project = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "*.lock"))
    sources = project / "models" / "staging" / "loans" / "__sources.yml"
    text = sources.read_text()
    assert text.count(ORIGIN_GENERATED) == 1 and text.count(INCOME + INCOME_RULES) == 1
    sources.write_text(
        text.replace(ORIGIN_GENERATED, ORIGIN_LANDING).replace(INCOME + INCOME_RULES, INCOME + INCOME_SENSITIVE)
    )
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run([str(dbt), "parse", "--quiet", "--profiles-dir", ".", "--project-dir", "."], cwd=project, check=True)
    return project


def _write_landing(settings, first: date, last: date) -> None:
    """The generator's applications (so its outcomes match them), each income one of SECRET_INCOMES."""
    import numpy as np
    import pandas as pd

    from resources.source import build_source

    generator = build_source(settings).synthetic_loans
    folder = settings.landing_dir / "raw" / "applications"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    day = first
    while day <= last:
        frame = pd.concat(generator.applications(day), ignore_index=True)
        frame["annual_income"] = rng.choice(SECRET_INCOMES, len(frame))
        frame.to_parquet(folder / f"{day.isoformat()}.parquet", index=False)
        day += timedelta(days=1)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("sensitive")
    project = _declared_copy(root)
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_stores_at(root, monkeypatch, NIGHTJAR_DBT_PROJECT_DIR=str(project))
        _write_landing(settings, *HISTORY)
        from definitions import build_definitions

        defs = build_definitions(settings)
        instance = dg.DagsterInstance.get()
        ingested = run_days(defs, "ingest", *HISTORY, instance=instance)
        assert ingested.success
        trained = defs.resolve_job_def(f"train_{MODEL}").execute_in_process(
            run_config={"ops": {f"{MODEL}__training_set": {"config": {"as_of": TRAINED_AS_OF}}}}, instance=instance
        )
        assert trained.success
        predictions = dg.AssetKey([MODEL, "predictions"])
        assert run_days(defs, "nightly", *SCORED, asset_selection=[predictions], instance=instance).success
        monitored = {}
        for asset in ("drift", "quality"):
            monitored[asset] = defs.resolve_job_def(f"monitor_{MODEL}").execute_in_process(
                partition_key=SCORED[0].isoformat(), asset_selection=[dg.AssetKey([MODEL, asset])], instance=instance
            )
            assert monitored[asset].success
        instance.dispose()
        yield {"settings": settings, "root": root, "ingested": ingested, "monitored": monitored}


def _found_in(folder: Path) -> dict[str, list[str]]:
    """Each file under ``folder`` holding a SECRET_INCOMES value -> the values: text searched for the digits (in any
    file, SQLite pages and logs included), Parquet files read."""
    import pandas as pd

    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hits = set(_found(path))
        if path.suffix == ".parquet":
            values = pd.read_parquet(path).to_numpy().ravel()
            hits |= {str(int(v)) for v in SECRET_INCOMES if (values == v).any()}
        if hits:
            found[str(path.relative_to(folder))] = sorted(hits)
    return found


@pytest.mark.slow
def test_the_warehouse_keeps_the_sensitive_values_and_the_model_uses_them(chain):
    settings = chain["settings"]
    for table in ("raw.applications", "marts.fct_application_features", "marts.fct_labeled_applications"):
        stored = set(open_warehouse(settings).query(f"SELECT DISTINCT annual_income FROM {table}")["annual_income"])
        assert stored == set(SECRET_INCOMES), table
    # The search finds them where they are in the clear: the landing files.
    assert len(_found_in(settings.landing_dir)) == HISTORY[1].toordinal() - HISTORY[0].toordinal() + 1
    version = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri).version(MODEL, 1)
    assert version.tags["sensitive_features"] == "age, annual_income"
    # Still a feature of the model: in its signature, with no value in its input example.
    (mlmodel,) = (chain["root"] / "mlartifacts").rglob("MLmodel")
    signature = json.loads(yaml.safe_load(mlmodel.read_text())["signature"]["inputs"])
    assert {"annual_income", "age", "loan_amount"} <= {c["name"] for c in signature}
    (example,) = (chain["root"] / "mlartifacts").rglob("input_example.json")
    rows = json.loads(example.read_text())
    shown = dict(zip(rows["columns"], zip(*rows["data"], strict=True), strict=True))
    assert all(math.isnan(v) for v in [*shown["annual_income"], *shown["age"]])  # missing: NaN
    assert not any(math.isnan(v) for v in shown["loan_amount"])


@pytest.mark.slow
def test_no_sensitive_value_is_in_the_dagster_home_the_reports_or_the_mlflow_store(chain):
    settings, root = chain["settings"], chain["root"]
    stores = {
        "dagster home": root / "dagster_home",
        "reports": settings.reports_dir,
        "mlflow artifacts": root / "mlartifacts",
    }
    assert all(folder.is_dir() and any(folder.rglob("*")) for folder in stores.values()), stores
    for name, folder in stores.items():
        assert _found_in(folder) == {}, name
    assert _found(root / "mlflow.db") == []


def _found(path: Path) -> list[str]:
    """The SECRET_INCOMES values written in ``path`` as digits (a gzip file: in what it holds)."""
    numbers = "|".join(f"{int(v)}" for v in SECRET_INCOMES)
    pattern = re.compile(rf"(?<![0-9A-Za-z.])({numbers})(?![0-9A-Za-z])".encode())
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return sorted({m.decode() for m in pattern.findall(data)})


@pytest.mark.slow
def test_the_raw_preview_masks_the_sensitive_columns(chain):
    materialization = chain["ingested"].asset_materializations_for_node("raw__applications")[-1]
    preview = next(v.value for k, v in materialization.metadata.items() if k.startswith("preview"))
    header, _, *rows = preview.splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    for column in ("annual_income", "age"):
        at = columns.index(column)
        assert {row.strip("|").split("|")[at].strip() for row in rows} == {MASK}
    assert {row.strip("|").split("|")[columns.index("loan_amount")].strip() for row in rows} != {MASK}


@pytest.mark.slow
def test_the_drift_of_a_sensitive_feature_is_a_figure_and_its_report_leaves_it_out(chain):
    drift = chain["monitored"]["drift"].asset_materializations_for_node(f"{MODEL}__drift")[0].metadata
    assert drift["sensitive_columns"].value.startswith(
        "annual_income, age: drift compared against the holdout window's rows of the training mart"
    )
    # Counted like any feature: a figure each, in the share the data_drift check grades.
    assert {"drift_annual_income", "drift_age", "drift_loan_amount"} <= set(drift)
    assert drift["checked_columns"].value == 18 and drift["excluded_columns"].value == "none"
    assert 0 <= drift["drift_age"].value < 1 and drift["drift_annual_income"].value < 0.1
    drifts = open_warehouse(chain["settings"]).query(
        f"SELECT column_name FROM monitoring.{MODEL}_drift WHERE day = DATE '{SCORED[0].isoformat()}'"
    )
    assert {"age", "annual_income", "loan_amount"} <= set(drifts["column_name"])
    # The report a person opens compares the other features only.
    (report,) = (chain["settings"].reports_dir / MODEL / "drift").glob(f"{SCORED[0].isoformat()}*")
    text = gzip.decompress(report.read_bytes())
    assert b'"loan_amount"' in text and b'"annual_income"' not in text and b'"age"' not in text


def test_a_sensitive_feature_without_reference_rows_is_not_compared_and_the_rest_is_checked(
    chain, tmp_path, monkeypatch
):
    """The training mart no longer holds the version's holdout window (rebuilt, retention): the sensitive features
    have nothing to be compared with, so the day's drift says so and checks the other features, instead of failing
    on Evidently's empty reference column. On this test's own copy of the chain's stores."""
    root = chain["root"]
    for name in ("data", "mlartifacts", "dagster_home", "dbt_project"):
        shutil.copytree(root / name, tmp_path / name)
    shutil.copy(root / "mlflow.db", tmp_path / "mlflow.db")
    move_store_paths(tmp_path / "mlflow.db", str(root), str(tmp_path))
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_DBT_PROJECT_DIR=str(tmp_path / "dbt_project"))
    import duckdb

    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("DELETE FROM marts.fct_labeled_applications")
    from definitions import build_definitions

    instance = dg.DagsterInstance.get()
    result = (
        build_definitions(settings)
        .resolve_job_def(f"monitor_{MODEL}")
        .execute_in_process(
            partition_key=SCORED[1].isoformat(), asset_selection=[dg.AssetKey([MODEL, "drift"])], instance=instance
        )
    )
    instance.dispose()
    assert result.success
    drift = result.asset_materializations_for_node(f"{MODEL}__drift")[0].metadata
    assert drift["sensitive_columns"].value.startswith("annual_income, age: not compared (no values on one side: 0 ")
    assert "drift_loan_amount" in drift and "drift_age" not in drift and "drift_annual_income" not in drift


# --- a rejected day ------------------------------------------------------------------------------------------------

REJECTED_DAY = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("bad", "found"),
    [(987654, rb"(?<![0-9A-Za-z.])987654(?![0-9A-Za-z])"), ("x987654x", rb"x987654x")],
    ids=["above-max", "not-a-number"],
)
def test_a_rejected_sensitive_value_is_named_by_its_row_never_shown(nightjar_env, instance, webhook, bad, found):
    """A day whose age breaks its rule (above max: the audit in SQL; not a number: the landing reader) is rejected
    naming the column, the rule and the row, with the value masked in the failure, the check, the alert, the audit
    table and the Dagster home."""
    import dataclasses

    import pandas as pd

    from assets.partitions import build_daily_partitions
    from assets.raw import CONTRACT_CHECK, REJECTED_FILES, build_raw_assets
    from resources.build import build_resources
    from resources.source import SyntheticSource
    from resources.source.schema import LANDING, CompleteWhen

    settings = nightjar_env
    declared = load_raw_tables(settings.manifest_path)["raw.applications"]
    table = dataclasses.replace(declared, origin=LANDING, complete_when=CompleteWhen(quiet_seconds=0))
    frame = pd.concat(SyntheticSource(rows_per_day=20).applications(REJECTED_DAY), ignore_index=True)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = bad
    landing = settings.landing_dir / "raw" / "applications"
    landing.mkdir(parents=True)
    frame.to_csv(landing / f"{REJECTED_DAY.isoformat()}.csv", index=False)
    built = build_resources(settings)
    resources = {"source": built["source"], "warehouse": built["warehouse"], "alerts": webhook.alerts()}
    result = dg.materialize(
        build_raw_assets([table], build_daily_partitions(settings), "duckdb"),
        resources=resources,
        partition_key=REJECTED_DAY.isoformat(),
        raise_on_error=False,
        instance=instance,
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "column 'age'" in message and f"data row 4: {MASK}" in message, message
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CONTRACT_CHECK]
    audited = open_warehouse(settings).query(f"SELECT * FROM {REJECTED_FILES}")
    assert len(audited) == 1
    shown = [message, str(check.metadata), json.dumps(webhook.posts), audited.to_json()]
    assert webhook.posts and all(re.search(found, text.encode()) is None for text in shown), shown
    home = Path(instance.root_directory)  # the test's Dagster home
    stored = [p for p in home.rglob("*") if p.is_file() and re.search(found, p.read_bytes())]
    assert stored == []
    assert any(MASK.encode() in p.read_bytes() for p in home.rglob("*") if p.is_file())  # the events are there
