"""Per model: jobs a person launches from the Dagster UI to promote a version or roll back the champion.

Both are asset jobs that materialize ``<model>/champion`` (:mod:`assets.ml.champion`) with the person's config, so
the decision, its audit record and its refusals are the champion asset's, and the asset's history in the UI holds
every change of what serves. Their launchpad asks only for what the action needs (a config mapping fills in the
asset's ``action``). The run gets tags saying who asked and which version now serves (``nightjar/requested_by``,
``nightjar/version``, ``nightjar/action``): the runs list answers who promoted what.
"""

import dagster as dg

from assets.ml.champion import ChampionConfig, champion_key, champion_op_name
from assets.ml.spec import ModelSpec


class PromoteConfig(dg.Config):
    version: int
    """Model version to make champion."""
    requested_by: str
    """Who asks for this change (name or email), kept in the audit record. Must not be empty."""
    reason: str = ""
    """Why; required when forcing (force: true)."""
    force: bool = False
    """Promote even though the gate refused (or never evaluated) this version; needs a reason."""


class RollbackConfig(dg.Config):
    requested_by: str
    """Who asks for this change (name or email), kept in the audit record. Must not be empty."""
    reason: str
    """Why the champion is rolled back, kept in the audit record. Must not be empty."""


def build_promotion_jobs(spec: ModelSpec) -> list:
    """``[promote_<model>, rollback_<model>]``: each materializes ``<model>/champion`` only."""
    op = champion_op_name(spec)
    selection = dg.AssetSelection.assets(champion_key(spec))

    @dg.config_mapping
    def promote_config(config: PromoteConfig) -> dg.RunConfig:
        return dg.RunConfig(ops={op: ChampionConfig(action="promote", **config.model_dump())})

    @dg.config_mapping
    def rollback_config(config: RollbackConfig) -> dg.RunConfig:
        return dg.RunConfig(ops={op: ChampionConfig(action="rollback", **config.model_dump())})

    promote_job = dg.define_asset_job(
        name=f"promote_{spec.name}",
        selection=selection,
        config=promote_config,
        description=f"Make a given version of {spec.name} the champion (materializes {spec.name}/champion; audited). "
        "A version the gate refused needs force: true and a reason.",
    )
    rollback_job = dg.define_asset_job(
        name=f"rollback_{spec.name}",
        selection=selection,
        config=rollback_config,
        description=f"Put {spec.name}'s previous champion back in one step (materializes {spec.name}/champion; "
        "audited).",
    )
    return [promote_job, rollback_job]
