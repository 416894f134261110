"""Helpers for tests of the monitoring assets (drift, quality) on a small synthetic model of the test's own: its
served days as scoring leaves them, one run of a monitoring asset for a day, and what that run shows."""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2026-01-01")
LOW_BAND_BELOW = 0.2  # the synthetic specs' decision bands: "low" below this score, "high" from it


def mart_keys(*marts: str) -> dict[str, dg.AssetKey]:
    return {mart: dg.AssetKey(["marts", mart]) for mart in marts}


def synthetic_spec(model: str, scoring_mart: str, training_mart: str, features: dict, monitoring: dict):
    """The spec of a small synthetic model: rows ``row_id`` applied ``applied_on``, label ``defaulted`` known on
    ``labeled_on``, decisions "low" below LOW_BAND_BELOW and "high" above; ``features`` and ``monitoring`` as
    given."""
    from assets.ml.spec import ModelSpec

    return ModelSpec.model_validate(
        {
            "name": model,
            "training_mart": training_mart,
            "scoring_mart": scoring_mart,
            "entity_id": "row_id",
            "timestamp": "applied_on",
            "label_date": "labeled_on",
            "target": "defaulted",
            "features": features,
            "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
            "promotion": {"min_primary": 0.5},
            "decision_bands": [{"name": "low", "below": LOW_BAND_BELOW}, {"name": "high"}],
            "monitoring": monitoring,
        }
    )


def served_predictions(scored: pd.DataFrame, model: str, version: int, scored_at: str) -> pd.DataFrame:
    """The predictions table's rows for ``scored`` (``row_id``, ``applied_on``, ``score``), as ``version`` of
    ``model`` left them."""
    return pd.DataFrame(
        {
            "row_id": scored["row_id"],
            "applied_on": scored["applied_on"],
            "score": scored["score"],
            "decision": np.where(scored["score"] < LOW_BAND_BELOW, "low", "high"),
            "model_name": model,
            "model_version": version,
            "dagster_run_id": "test",
            "scored_at": pd.Timestamp(scored_at),
        }
    )


def run_monitoring(
    asset: str, spec, marts: dict[str, dg.AssetKey], day: date, resources: dict
) -> dg.ExecuteInProcessResult:
    """The ``drift`` or ``quality`` asset of ``spec``, as its factory builds it, materialized for ``day`` (a failed
    step is returned, not raised)."""
    from assets.monitoring.drift_assets import build_drift_asset
    from assets.monitoring.quality_assets import build_quality_asset

    build = {"drift": build_drift_asset, "quality": build_quality_asset}[asset]
    return dg.materialize(
        [build(spec, marts, PARTITIONS)], resources=resources, partition_key=day.isoformat(), raise_on_error=False
    )


def materialization_metadata(result: dg.ExecuteInProcessResult, model: str, asset: str) -> dict:
    """The metadata of ``<model>/<asset>``'s one materialization in ``result``, as plain values."""
    [materialization] = result.asset_materializations_for_node(f"{model}__{asset}")
    return {k: v.value for k, v in materialization.metadata.items()}


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def register_bare_version(registry, model: str, roc_auc: float = 0.7):
    """Version 1 of ``model``, registered on a run of its own (as training leaves one), validated at ``roc_auc``."""
    client = registry.client()
    run = client.create_run(registry.experiment_id(model))
    client.set_terminated(run.info.run_id)
    client.create_registered_model(model)
    client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    registry.set_version_tags(model, 1, {"metric.roc_auc": roc_auc})
    return registry.version(model, 1)
