"""Data failures are never retried; server failures are.

The steps that talk to servers carry SERVER_RETRY_POLICY (retried after about 2, 6 and 14 s), and Dagster retries
any exception but a ``dagster.Failure(allow_retries=False)``. A failure of the data (no champion to score with, a
mart or warehouse not built yet, no predictions or labels for the day) would only fail the same way three more
times: each of these runs must end in exactly one STEP_FAILURE, with no STEP_UP_FOR_RETRY and no STEP_RESTARTED.

Fast: no MLflow (the registry is a stand-in that has no versions, or whose server fails once) and an empty
warehouse folder; each asset runs alone with ``dagster.materialize``.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from resources.build import build_resources, open_warehouse
from resources.failures import DataFailure, not_retried
from resources.registry import SERVER_RETRY_POLICY, RegistryError
from resources.warehouse import NotInWarehouse
from tests.stand_in_registry import FailsOnceRegistry, NoVersionsRegistry

MODEL = "loan_default_risk"
DAY = "2026-01-10"
RETRIED = {"STEP_UP_FOR_RETRY", "STEP_RESTARTED"}


@pytest.fixture
def assets(nightjar_env) -> dict[str, dg.AssetsDefinition]:
    """The model's assets as its factories build them (no resources bound), by name."""
    from assets.ml.inference_assets import build_predictions_asset
    from assets.ml.spec import load_specs
    from assets.ml.training_assets import build_training_assets
    from assets.monitoring.drift_assets import build_drift_asset
    from assets.monitoring.quality_assets import build_quality_asset
    from assets.partitions import build_daily_partitions

    [(source, spec)] = load_specs(nightjar_env.model_specs_dir).items()
    partitions = build_daily_partitions(nightjar_env)
    marts = {m: dg.AssetKey(["marts", m]) for m in (spec.training_mart, spec.scoring_mart)}
    (training_set, _model), _checks = build_training_assets(spec, source, marts, "duckdb", "test")
    built = [
        training_set,
        build_predictions_asset(spec, marts, "duckdb", partitions),
        build_drift_asset(spec, marts, partitions),
        build_quality_asset(spec, marts, partitions),
    ]
    return {a.key.path[-1]: a for a in built}


def _run(assets: dict[str, dg.AssetsDefinition], asset: str, resources: dict, **overrides) -> dg.ExecuteInProcessResult:
    assets_def = assets[asset]
    assert assets_def.op.retry_policy == SERVER_RETRY_POLICY, "without a retry policy this test proves nothing"
    return dg.materialize(
        [assets_def],
        resources={**resources, **overrides},
        partition_key=DAY if assets_def.partitions_def else None,
        raise_on_error=False,
    )


def _events(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.event_type_value for e in result.all_events]


def _the_one_failure(result: dg.ExecuteInProcessResult) -> str:
    """The message of the run's only step failure, checked not to have been retried and to be a DataFailure."""
    events = _events(result)
    assert not result.success
    assert events.count("STEP_FAILURE") == 1, events
    assert not RETRIED & set(events), f"a data failure was retried: {events}"
    [error] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    chain = [error]
    while chain[-1].cause is not None:  # the DataFailure, and what it was raised from
        chain.append(chain[-1].cause)
    failure = next((e for e in chain if e.cls_name in {"DataFailure", "NoChampionError"}), None)
    assert failure is not None, error.to_string()
    return failure.message


@pytest.fixture
def resources(nightjar_env) -> dict:
    return build_resources(nightjar_env)


def test_scoring_without_a_champion_fails_once_and_is_not_retried(assets, resources, nightjar_env):
    registry = NoVersionsRegistry(tracking_uri=nightjar_env.mlflow_tracking_uri)
    message = _the_one_failure(_run(assets, "predictions", resources, registry=registry))
    assert f"model '{MODEL}' has no 'champion' version" in message


def test_a_server_error_is_retried_and_the_data_failure_it_then_meets_is_not(assets, resources, tmp_path):
    registry = FailsOnceRegistry(tracking_uri=f"sqlite:///{tmp_path / 'flaky.db'}")  # never opened
    result = _run(assets, "predictions", resources, registry=registry)
    events = _events(result)
    assert registry.calls() == 2
    assert events.count("STEP_UP_FOR_RETRY") == 1 and events.count("STEP_RESTARTED") == 1, events
    assert events.count("STEP_FAILURE") == 1, events
    [error] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert error.cls_name == "NoChampionError" and "has no 'champion' version" in error.message


def test_training_before_the_warehouse_exists_fails_once_naming_it(assets, resources):
    message = _the_one_failure(_run(assets, "training_set", resources))
    assert "does not exist yet" in message


def test_training_on_a_mart_without_labeled_rows_fails_once(assets, resources, nightjar_env):
    from assets.ml.spec import load_specs
    from resources.source.schema import Column

    [spec] = load_specs(nightjar_env.model_specs_dir).values()
    mart = f"marts.{spec.training_mart}"
    open_warehouse(nightjar_env).ensure_table(mart, [Column(spec.timestamp, "DATE")])  # built, but no rows yet
    message = _the_one_failure(_run(assets, "training_set", resources))
    assert f"{mart} has no labeled rows yet" in message


def test_monitoring_a_day_without_predictions_fails_once(assets, resources, nightjar_env):
    from assets.ml.inference import prediction_columns
    from assets.ml.spec import load_specs

    [spec] = load_specs(nightjar_env.model_specs_dir).values()
    # The table exists (another day was scored) but holds nothing for DAY.
    open_warehouse(nightjar_env).ensure_table(f"predictions.{MODEL}", prediction_columns(spec))
    for asset in ("drift", "quality"):
        message = _the_one_failure(_run(assets, asset, resources))
        assert f"no predictions of '{MODEL}' for {date.fromisoformat(DAY)}" in message


def test_monitoring_before_the_warehouse_exists_fails_once(assets, resources):
    for asset in ("drift", "quality"):
        assert "does not exist yet" in _the_one_failure(_run(assets, asset, resources))


def test_not_retried_converts_only_the_named_errors_and_keeps_failures_as_they_are():
    with pytest.raises(DataFailure) as caught, not_retried(KeyError):
        raise KeyError("no column 'x'")
    assert caught.value.description == "no column 'x'" and caught.value.allow_retries is False
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(NotInWarehouse), not_retried(KeyError):
        raise NotInWarehouse("table t does not exist")
    transient = RegistryError("busy", transient=True)
    with pytest.raises(RegistryError) as kept, not_retried(Exception):
        raise transient
    assert kept.value is transient and kept.value.allow_retries
