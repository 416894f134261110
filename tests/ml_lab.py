"""A fast, standalone model lab for tests: a test's own warehouse (the labeled mart as dbt builds it, written
straight into it: tests/dbt_marts.py) and MLflow store (SQLite under tmp_path, copied from an empty one made once
per session), the real Definitions, and the real jobs: ``train_<model>`` (training set -> model, judged by the gate
-> champion), ``promote_<model>``, ``rollback_<model>``.

Its fixtures, ``empty_mlflow_db`` (the empty store, once per session) and ``lab`` (a test's own :class:`Lab`), are
registered for every test module by ``pytest_plugins`` in conftest.py.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.settings import MODEL_SPECS_DIR
from tests.dbt_marts import labeled_applications
from tests.stores import point_stores_at

MODEL = "loan_default_risk"
MODEL_STEP = f"{MODEL}__model"
CHAMPION_STEP = f"{MODEL}__champion"
GATE = "champion_challenger_gate"
MART_DAYS = 30  # 16 days to train on before the 14-day holdout: a model well above the shipped floor
# The shipped spec's estimator, but one that fits (and is scored by the gate) in a fraction of the time.
FAST_ESTIMATOR = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500, "C": 0.5}}
# Three uninformative features: a model clearly worse than the spec's, yet above this lowered floor.
WEAK = {
    "features": {"numeric": ["age"], "categorical": ["state", "channel"]},
    "evaluation": {"segments": ["state"]},
    "promotion": {"min_primary": 0.3},
    "fairness": {"max_approval_rate_gap": None},  # it decides by state: that gap is reported, not limited
}


def make_empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new MLflow SQLite store, to make once per session: creating one runs MLflow's migrations (seconds); a
    copy is instant."""
    db = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    ModelRegistry(tracking_uri=f"sqlite:///{db}").client().search_registered_models()
    return db


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_empty_mlflow_db(tmp_path_factory)


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path) -> Lab:
    return Lab(tmp_path, monkeypatch, empty_mlflow_db)


def _sqlite_path(tracking_uri: str) -> Path:
    assert tracking_uri.startswith("sqlite:///"), tracking_uri
    return Path(tracking_uri.removeprefix("sqlite:///"))


class Lab:
    """One test's stores, spec and jobs. Runs share one Dagster instance, as runs of a deployment do (the gate
    finds the version the model asset last materialized)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path) -> None:
        from resources.build import open_warehouse

        self.specs = root / "specs"
        self.specs.mkdir()
        spec = self.write_spec()
        self.settings = point_stores_at(root, monkeypatch, NIGHTJAR_MODEL_SPECS_DIR=str(self.specs))
        shutil.copy(empty_mlflow_db, _sqlite_path(self.settings.mlflow_tracking_uri))  # this test's own store
        self.registry = ModelRegistry(
            tracking_uri=self.settings.mlflow_tracking_uri, artifact_root=self.settings.mlflow_artifact_root
        )
        self.warehouse = open_warehouse(self.settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.write_mart(MART_DAYS)
        self.timestamp = spec["timestamp"]

    def write_mart(self, days: int) -> pd.DataFrame:
        """The labeled mart with ``days`` days of applications (the same rows for the same days)."""
        from assets.ml.training_set import MARTS_SCHEMA

        spec = yaml.safe_load((self.specs / "loan_default.yaml").read_text())
        mart = labeled_applications(days)
        dates = pd.to_datetime(mart[spec["timestamp"]])
        self.warehouse.replace_window(
            f"{MARTS_SCHEMA}.{spec['training_mart']}",
            spec["timestamp"],
            dates.min().date(),
            dates.max().date() + timedelta(days=1),
            [mart],
        )
        return mart

    def write_spec(self, promotion: dict | None = None, **changes: dict) -> dict:
        """The shipped spec with the fast estimator; ``promotion`` and each of ``changes`` update that section."""
        spec = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
        spec["estimator"] = FAST_ESTIMATOR
        for section, values in {**changes, "promotion": promotion or {}}.items():
            spec[section] = {**spec[section], **values} if isinstance(spec.get(section), dict) else values
        (self.specs / "loan_default.yaml").write_text(yaml.safe_dump(spec))
        return spec

    def defs(self) -> dg.Definitions:
        from definitions import build_definitions

        return build_definitions(self.settings)

    def run_training(
        self, promotion: dict | None = None, *, retrain: bool = False, tags: dict | None = None, **changes: dict
    ) -> dg.ExecuteInProcessResult:
        """The real training job, with the spec changed as asked; ``retrain`` registers a version even on the data
        and spec of the champion (the model asset's ``retrain_unchanged``)."""
        self.write_spec(promotion, **changes)
        config = {"ops": {MODEL_STEP: {"config": {"retrain_unchanged": retrain}}}}
        return (
            self.defs()
            .resolve_job_def(f"train_{MODEL}")
            .execute_in_process(run_config=config, instance=self.instance, tags=tags, raise_on_error=False)
        )

    def train(self, promotion: dict | None = None, *, retrain: bool = False, **changes: dict) -> int:
        """The version the training job's model asset materialized (a new one unless nothing changed)."""
        result = self.run_training(promotion, retrain=retrain, **changes)
        materialized = result.asset_materializations_for_node(MODEL_STEP)  # even if the gate then refuses
        assert materialized, [str(e.event_specific_data) for e in result.all_events if e.is_failure]
        return int(materialized[0].metadata["model_version"].value)

    def promote(self, **config) -> dg.ExecuteInProcessResult:
        return (
            self.defs()
            .resolve_job_def(f"promote_{MODEL}")
            .execute_in_process(run_config=config, instance=self.instance, raise_on_error=False)
        )

    def rollback(self, **config) -> dg.ExecuteInProcessResult:
        return (
            self.defs()
            .resolve_job_def(f"rollback_{MODEL}")
            .execute_in_process(run_config=config, instance=self.instance, raise_on_error=False)
        )

    def champion(self) -> int | None:
        found = self.registry.by_alias(MODEL, CHAMPION)
        return found.version if found else None

    def challenger(self) -> int | None:
        found = self.registry.by_alias(MODEL, CHALLENGER)
        return found.version if found else None

    def audit(self, *actions: str) -> pd.DataFrame:
        from assets.ml.promotion import AUDIT_TABLE

        listed = ", ".join(f"'{a}'" for a in actions)
        return self.warehouse.query(
            f"SELECT action, from_version, to_version, actor, reason, forced, dagster_run_id FROM {AUDIT_TABLE} "
            f"WHERE model_name = '{MODEL}' AND alias = 'champion' AND action IN ({listed}) ORDER BY changed_at"
        )


def champion_metadata(result: dg.ExecuteInProcessResult) -> dict:
    """The champion asset's materialization metadata in ``result``, as plain values."""
    [materialized] = result.asset_materializations_for_node(CHAMPION_STEP)
    return {k: v.value for k, v in materialized.metadata.items()}


def gate_evaluation(result: dg.ExecuteInProcessResult):
    [evaluation] = [c for c in result.get_asset_check_evaluations() if c.check_name == GATE]
    return evaluation


def refusal(result: dg.ExecuteInProcessResult) -> str:
    """The message of the run's one step failure, checked to be a dagster.Failure (not an MLflow traceback) that
    was not retried: asking again gets the same answer."""
    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in result.all_events], "a refusal must not retry"
    [error] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "MlflowException" not in error.to_string()
    raised = error.cause or error  # dagster may wrap what the op raised
    assert raised.cls_name in {"Failure", "PromotionRefused", "ModelVersionNotFound", "DataFailure"}, raised.cls_name
    return raised.message
