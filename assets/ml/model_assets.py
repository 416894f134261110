"""The ML factory: every model spec becomes the same set of assets and checks (training, the gate, the serving
decision, scoring, monitoring).

Adding a model is adding a spec under model_specs/ (and usually a dbt mart); no code changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.ml.champion_assets import build_champion_asset
from assets.ml.inference_assets import build_predictions_asset, predictions_freshness_policy
from assets.ml.spec import ModelSpec, SpecError, check_documented_columns, check_estimator, load_specs
from assets.ml.training_assets import build_training_assets
from assets.monitoring.drift_assets import build_drift_asset
from assets.monitoring.quality_assets import build_quality_asset
from resources.settings import Settings
from resources.source.sensitive import sensitive_features


@dataclass(frozen=True)
class ModelAssets:
    spec: ModelSpec
    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetChecksDefinition]


def _mart_keys(spec: ModelSpec, source: str, dbt_assets: list[dg.AssetsDefinition]) -> dict[str, dg.AssetKey]:
    keys = {}
    for field, mart in (("training_mart", spec.training_mart), ("scoring_mart", spec.scoring_mart)):
        try:
            keys[mart] = get_asset_key_for_model(dbt_assets, mart)
        except KeyError:
            raise SpecError(f"{source}: field '{field}': '{mart}' is not a model of the dbt project") from None
    return keys


def build_model_assets(
    dbt_assets: list[dg.AssetsDefinition], partitions: dg.PartitionsDefinition, settings: Settings
) -> list[ModelAssets]:
    built: list[ModelAssets] = []
    kind = settings.warehouse_kind
    for source, spec in load_specs(settings.model_specs_dir).items():
        mart_keys = _mart_keys(spec, source, dbt_assets)
        check_documented_columns(spec, source, settings.manifest_path)
        check_estimator(spec, source, settings.cache_dir)
        marts = [spec.training_mart, spec.scoring_mart]
        sensitive = sensitive_features(settings.manifest_path, marts, spec.features.all)
        training, checks = build_training_assets(
            spec, source, mart_keys, kind, settings.code_version, settings.dagster_url, sensitive
        )
        raw = sources_upstream_of(dbt_assets, mart_keys[spec.scoring_mart])
        due = predictions_freshness_policy(settings.predictions_due_hour, settings.timezone)
        predictions = build_predictions_asset(spec, mart_keys, kind, partitions, raw, settings.cpu_hour_price, due)
        monitoring = [
            build_drift_asset(spec, mart_keys, partitions, sensitive),
            build_quality_asset(spec, mart_keys, partitions),
        ]
        champion = build_champion_asset(spec)
        built.append(ModelAssets(spec=spec, assets=[*training, champion, predictions, *monitoring], checks=checks))
    return built


def sources_upstream_of(dbt_assets: list[dg.AssetsDefinition], key: dg.AssetKey) -> list[dg.AssetKey]:
    """The assets outside dbt (the raw tables) that ``key`` is built from, through any number of dbt models: when
    they were published is when the day's data came in (the chain's latency)."""
    parents = {spec.key: [dep.asset_key for dep in spec.deps] for a in dbt_assets for spec in a.specs}
    seen, sources, todo = {key}, set(), [key]
    while todo:
        for parent in parents.get(todo.pop(), []):
            if parent in seen:
                continue
            seen.add(parent)
            (todo.append(parent) if parent in parents else sources.add(parent))
    return sorted(sources, key=lambda k: k.to_user_string())
