"""Per model: jobs a person launches from the Dagster UI to promote a version or roll back the champion.

Both move the ``champion`` alias through the same audited path as the gate. A version that failed the gate is
refused unless ``force`` is set with a written reason.
"""

import dagster as dg

from assets.ml.promotion import (
    AliasChange,
    PromotionRefused,
    check_promotion_allowed,
    gate_verdict,
    move_alias,
    previous_champion,
)
from assets.ml.spec import ModelSpec
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, Warehouse


class PromoteConfig(dg.Config):
    version: int
    """Model version to make champion."""
    reason: str = ""
    """Why; required when forcing past the gate."""
    requested_by: str
    """Who asks for this change (name or email), kept in the audit record."""
    force: bool = False
    """Promote even though the gate refused this version."""


class RollbackConfig(dg.Config):
    reason: str
    requested_by: str


def _version_metrics(registry: ModelRegistry, name: str, version: int) -> dict[str, str]:
    return {k.removeprefix("metric."): v for k, v in registry.version(name, version).tags.items() if k.startswith("metric.")}


def build_promotion_jobs(spec: ModelSpec) -> list[dg.JobDefinition]:
    name = spec.name

    @dg.op(name=f"promote_{name}_version", pool=WAREHOUSE_POOL)
    def promote(context: dg.OpExecutionContext, config: PromoteConfig, registry: ModelRegistry, warehouse: Warehouse):
        try:
            check_promotion_allowed(registry, name, config.version, config.force, config.reason)
        except PromotionRefused as refused:
            raise dg.Failure(description=str(refused)) from None
        current = registry.by_alias(name, CHAMPION)
        if current is not None and current.version == config.version:
            raise dg.Failure(description=f"version {config.version} of '{name}' is already the champion: nothing to do")
        passed, gate_reason = gate_verdict(registry, name, config.version)
        record = move_alias(
            registry,
            warehouse,
            AliasChange(
                model_name=name,
                alias=CHAMPION,
                action="promote",
                from_version=current.version if current else None,
                to_version=config.version,
                actor=config.requested_by,
                reason=config.reason or f"gate passed: {gate_reason}",
                forced=config.force and not passed,
                metrics=_version_metrics(registry, name, config.version),
                dagster_run_id=context.run.run_id,
            ),
        )
        challenger = registry.by_alias(name, CHALLENGER)
        if challenger is not None and challenger.version == config.version:
            registry.remove_alias(name, CHALLENGER)
        context.add_output_metadata({"from_version": record["from_version"] or -1, "to_version": config.version})

    @dg.op(name=f"rollback_{name}_champion", pool=WAREHOUSE_POOL)
    def rollback(context: dg.OpExecutionContext, config: RollbackConfig, registry: ModelRegistry, warehouse: Warehouse):
        try:
            current, previous = previous_champion(registry, name)
        except PromotionRefused as refused:
            raise dg.Failure(description=str(refused)) from None
        move_alias(
            registry,
            warehouse,
            AliasChange(
                model_name=name,
                alias=CHAMPION,
                action="rollback",
                from_version=current,
                to_version=previous,
                actor=config.requested_by,
                reason=f"rollback: {config.reason}",
                forced=False,
                metrics=_version_metrics(registry, name, previous),
                dagster_run_id=context.run.run_id,
            ),
        )
        context.log.info(f"{name}: champion rolled back from version {current} to {previous}")

    @dg.job(name=f"promote_{name}", description=f"Make a given version of {name} the champion (audited).")
    def promote_job():
        promote()

    @dg.job(name=f"rollback_{name}", description=f"Put {name}'s previous champion back in one step (audited).")
    def rollback_job():
        rollback()

    return [promote_job, rollback_job]
