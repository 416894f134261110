"""The Definitions load as `dagster dev` loads them, with the graph a user expects to see."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from resources.settings import PROJECT_ROOT


def test_definitions_load_with_the_whole_graph(defs):
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/applications", "raw/outcomes"} <= keys
    assert {"marts/fct_application_features", "marts/fct_labeled_applications"} <= keys
    assert {"loan_default_risk/training_set", "loan_default_risk/model", "loan_default_risk/predictions"} <= keys
    job_names = {job.name for job in defs.jobs}
    assert {
        "nightly",
        "train_loan_default_risk",
        "promote_loan_default_risk",
        "rollback_loan_default_risk",
    } <= job_names


def test_dbt_sources_are_the_raw_assets_and_dbt_tests_are_checks(defs):
    graph = defs.resolve_asset_graph()
    stg = dg.AssetKey(["staging", "stg_applications"])
    assert dg.AssetKey(["raw", "applications"]) in graph.get(stg).parent_keys
    check_keys = {c.name for c in graph.asset_check_keys}
    assert any(name.startswith("unique_stg_applications_application_id") for name in check_keys)
    blocking = [s for a in defs.assets if isinstance(a, dg.AssetsDefinition) for s in a.check_specs if s.blocking]
    assert blocking, "error-severity dbt tests must be blocking checks"


def test_mlflow_import_from_repo_root_is_the_library():
    """mlflow/ (the local store) must never shadow the library when the repo root is on sys.path."""
    assert not (PROJECT_ROOT / "mlflow" / "__init__.py").exists()
    out = subprocess.run(
        [sys.executable, "-c", "import mlflow, sys; print(mlflow.__file__); print(mlflow.__version__)"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "site-packages" in out[0] and out[1].startswith("3.")


# Imported only inside the functions that compute (assets, resources, generators): loading definitions costs about
# `import dagster, dagster_dbt` and nothing more. networkx / dbt.graph: dbt-core's selection engine, which
# assets/transform/dbt_selection.manifest_select_all spares the load (tests/test_dbt_selection.py).
HEAVY_AT_LOAD = (
    "mlflow",
    "evidently",
    "sklearn",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "scipy",
    "matplotlib",
    "psycopg2",
    "skops",
    "networkx",
    "dbt.graph",
)


def test_definitions_load_without_heavy_ml_imports(tmp_path):
    """Once the estimators' kinds are cached (the first load after a spec or package change inspects them:
    assets/ml/spec/estimator_kind.py), loading definitions imports none of the heavy libraries."""
    import os

    env = {**os.environ, "NIGHTJAR_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    code = f"import definitions, sys; print(sorted(m for m in {HEAVY_AT_LOAD!r} if m in sys.modules))"
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
        )
    assert out.stdout.strip() == "[]", f"imported while definitions load: {out.stdout.strip()}"


def test_the_forkserver_preload_leaves_the_jobs_resolved_and_never_stops_the_server(tmp_path):
    """The prod path's step processes fork from a server that imported jobs/forkserver_preload.py: the jobs are
    resolved and the instance's storage imported there, once. An instance that cannot be opened must not raise
    (the forkserver dies on any error but ImportError): the steps then open it themselves and say what fails."""
    import os

    code = (
        "import jobs.forkserver_preload, definitions, sys; "
        "print(definitions.defs.has_resolved_repository_def(), 'sqlalchemy' in sys.modules)"
    )
    home = tmp_path / "home"
    home.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dagster.yaml").write_text("storage: {no_such_storage: {}}\n")
    printed = []
    for dagster_home in (home, broken):
        env = {**os.environ, "NIGHTJAR_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(dagster_home)}
        out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        printed.append(out.stdout.strip().splitlines()[-1])
    assert printed[0] == "True True"
    assert printed[1].startswith("True ")


def test_definitions_load_as_dagster_dev_loads_them_from_a_venv_that_is_not_activated(tmp_path):
    """`dagster dev` re-parses dbt (prepare_if_dev) with a plain `dbt` from PATH; it must be found anyway."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    env["DAGSTER_IS_DEV_CLI"] = "1"
    env["DAGSTER_HOME"] = str(tmp_path)
    env["NIGHTJAR_DBT_PROJECT_DIR"] = str(_dbt_project_copy(tmp_path))  # the re-parse writes its own target/
    code = "import definitions; print(len(list(definitions.defs.resolve_asset_graph().get_all_asset_keys())))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 12


def test_dagster_devs_reparse_replaces_the_manifest_whole_and_keeps_it_when_dbt_fails(tmp_path):
    """While `dagster dev` re-parses, other processes load definitions from target/manifest.json: they must read
    the old manifest or the new one, never a half-written file, and a parse that fails leaves the old one."""
    import json

    from dagster_dbt import DbtProject
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    from resources.dbt import VenvDbtPreparer

    project_dir = _dbt_project_copy(tmp_path)
    manifest = project_dir / "target" / "manifest.json"
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target="dev")
    old = manifest.stat()
    with open(manifest) as reader:  # a process that opened the manifest before the re-parse
        VenvDbtPreparer().prepare(project)
        assert "nodes" in json.load(reader)  # still reads the whole old file: dbt did not write into it
    published = manifest.stat()
    assert published.st_ino != old.st_ino  # the new manifest came in by a rename, never written in place
    assert "nodes" in json.loads(manifest.read_text())
    assert not list(manifest.parent.glob(".parse-*"))

    (project_dir / "models" / "broken.sql").write_text("select * from {{ ref('no_such_model') }}")
    try:
        VenvDbtPreparer().prepare(project)
    except DagsterDbtCliRuntimeError:
        pass
    else:
        raise AssertionError("a project that does not parse must fail the re-parse")
    assert manifest.stat().st_ino == published.st_ino and manifest.stat().st_mtime_ns == published.st_mtime_ns
    assert "nodes" in json.loads(manifest.read_text())
    assert not list(manifest.parent.glob(".parse-*"))


def _dbt_project_copy(root):
    import shutil

    from resources.settings import DBT_PROJECT_DIR

    copy = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("logs", "sqlfluff", "*.lock", ".parse-*"))
    return copy


def test_two_definitions_built_from_different_settings_differ_in_one_process(nightjar_env, tmp_path):
    """Settings flow in: nothing is read from the environment at import or inside the factories."""
    import dataclasses
    from datetime import date

    import yaml

    from definitions import build_definitions
    from resources.settings import MODEL_SPECS_DIR

    specs = tmp_path / "other_specs"
    specs.mkdir()
    spec = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    spec["name"] = "other_model"
    (specs / "other.yaml").write_text(yaml.safe_dump(spec))
    other = dataclasses.replace(
        nightjar_env, start_date=date(2025, 6, 1), end_date=date(2025, 12, 31), model_specs_dir=specs, dbt_target="prod"
    )
    first, second = build_definitions(nightjar_env), build_definitions(other)

    def partitions(defs: dg.Definitions) -> dg.PartitionsDefinition:
        return defs.resolve_assets_def(dg.AssetKey(["raw", "applications"])).partitions_def

    assert partitions(first).get_first_partition_key() == "2026-01-01"
    assert partitions(second).get_first_partition_key() == "2025-06-01"
    assert partitions(second).get_last_partition_key() == "2025-12-31"
    keys = [{k.path[0] for k in d.resolve_asset_graph().get_all_asset_keys()} for d in (first, second)]
    assert "loan_default_risk" in keys[0] and "other_model" not in keys[0]
    assert "other_model" in keys[1] and "loan_default_risk" not in keys[1]
    assert first.resources["dbt"].target == "dev" and second.resources["dbt"].target == "prod"


def test_a_spec_naming_a_column_its_mart_lacks_fails_at_load(nightjar_env, tmp_path):
    import dataclasses

    import pytest
    import yaml

    from assets.ml.spec import SpecError
    from definitions import build_definitions
    from resources.settings import MODEL_SPECS_DIR

    spec = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    spec["features"]["numeric"].append("shoe_size")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=r"bad\.yaml.*fct_labeled_applications.*field 'features.numeric': 'shoe_size'"):
        build_definitions(dataclasses.replace(nightjar_env, model_specs_dir=tmp_path))


def test_the_engine_is_one_setting_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    import pytest

    from resources.build import build_resources
    from resources.warehouse import SparkWarehouse
    from tests.stores import point_stores_at

    remote = "sc://spark.example.internal:15002"
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_ENGINE="spark", NIGHTJAR_SPARK_REMOTE=remote)
    resources = build_resources(settings)
    assert isinstance(resources["warehouse"], SparkWarehouse) and resources["warehouse"].remote == remote
    # dbt follows: the spark target, handed the same server, and no DuckDB file
    assert resources["dbt"].target == "spark" and resources["dbt"].spark_remote == remote
    assert resources["dbt"].warehouse_path is None and settings.warehouse_kind == "spark"
    monkeypatch.setenv("NIGHTJAR_ENGINE", "sparks")
    from resources.settings import Settings

    with pytest.raises(ValueError, match="NIGHTJAR_ENGINE='sparks' must be one of"):
        Settings.from_env()
