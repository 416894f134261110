"""Per model: jobs a person launches from the Dagster UI to promote a version or roll back the champion.

Both are asset jobs that materialize ``<model>/champion`` (:mod:`assets.ml.champion_assets`) with the person's
config, so the decision, its audit record and its refusals are the champion asset's, and the asset's history in the
UI holds every change of what serves. Their launchpad asks only for what the action needs (a config mapping fills
in the asset's ``action``), each field described (``Field(description=...)``: Dagster does not read attribute
docstrings). The versions to choose from, with the gate's verdict on each, are the ``versions`` table of the
champion asset's latest materialization. The run gets tags saying who asked and which version now serves
(``nightjar/requested_by``, ``nightjar/version``, ``nightjar/action``): the runs list answers who promoted what. A
refused request fails its run with the same tags (``nightjar/version``: the version asked for; a rollback names
none) and ``nightjar/refused``, the reason: the runs list answers who asked for what, and why not.

An emergency rollback must not wait behind a backfill: both jobs carry a high ``dagster/priority``, which puts
their runs ahead in the daemon's run queue. On DuckDB the step still waits for the run that holds the warehouse's
writer lock (one writer; the step appends the audit row), which serves waiters in no set order.
"""

import dagster as dg
from pydantic import Field

from assets.ml.champion_assets import ChampionConfig, champion_key, champion_op_name
from assets.ml.spec import ModelSpec

# Above every other run (default 0): the daemon's run queue serves runs by priority.
PROMOTION_PRIORITY = 10

_REQUESTED_BY = "Who asks for this change (name or email), kept in the audit record. Must not be empty."


class PromoteConfig(dg.Config):
    version: int = Field(
        description="Model version to make champion. The versions there are, and what the gate said of each: the "
        "`versions` table of the latest materialization of <model>/champion (Assets > <model>/champion)."
    )
    requested_by: str = Field(description=_REQUESTED_BY)
    reason: str = Field(default="", description="Why, kept in the audit record; required when forcing (force: true).")
    force: bool = Field(
        default=False,
        description="Promote even though the gate refused (or never evaluated) this version; needs a reason.",
    )


class RollbackConfig(dg.Config):
    requested_by: str = Field(description=_REQUESTED_BY)
    reason: str = Field(description="Why the champion is rolled back, kept in the audit record. Must not be empty.")


def build_promotion_jobs(spec: ModelSpec) -> list:
    """``[promote_<model>, rollback_<model>]``: each materializes ``<model>/champion`` only."""
    op = champion_op_name(spec)
    selection = dg.AssetSelection.assets(champion_key(spec))
    tags = {"dagster/priority": str(PROMOTION_PRIORITY)}

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
        tags=tags,
        description=f"Make a given version of {spec.name} the champion (materializes {spec.name}/champion; audited). "
        "A version the gate refused needs force: true and a reason. The versions to choose from, with the gate's "
        f"verdict on each: the `versions` table of {spec.name}/champion's latest materialization. Runs ahead of "
        "queued runs and backfills (dagster/priority).",
    )
    rollback_job = dg.define_asset_job(
        name=f"rollback_{spec.name}",
        selection=selection,
        config=rollback_config,
        tags=tags,
        description=f"Put {spec.name}'s previous champion back in one step (materializes {spec.name}/champion; "
        "audited). Runs ahead of queued runs and backfills (dagster/priority).",
    )
    return [promote_job, rollback_job]
