"""Per model: jobs a person launches from the Dagster UI to promote a version or roll back the champion.

Both move the ``champion`` alias through the same audited path as the gate. Every refusal is a
``dagster.Failure`` that says why and is never retried (asking again gets the same answer):

- ``requested_by`` empty (or only spaces): every move is recorded with its actor;
- ``force: true`` without a written ``reason``; a rollback without a ``reason``;
- a version that does not exist (the message lists the versions that do);
- a version that is already the champion; a version the gate refused or never evaluated, unless forced;
- a rollback with no earlier champion to return to.

The steps talk to the MLflow registry and the warehouse, so they retry when a server does not answer
(:data:`resources.registry.SERVER_RETRY_POLICY`). A retry must not decide again what the first attempt already
decided and maybe half did (a rollback decided twice would go back two champions): the decision is kept as a
run tag before anything moves, and a retry carries out that decision; :func:`assets.ml.promotion.move_alias`
then completes the move rather than recording it twice.
"""

import json

import dagster as dg

from assets.ml.promotion import (
    AliasChange,
    PromotionRefused,
    check_promotion_allowed,
    gate_verdict,
    move_alias,
    previous_champion,
    require_actor,
    require_reason,
)
from assets.ml.spec import ModelSpec
from resources.registry import CHALLENGER, CHAMPION, SERVER_RETRY_POLICY, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, Warehouse

PLANNED_MOVE_TAG = "nightjar/planned_alias_move"
"""Run tag holding the move a promote/rollback step decided on, for its retries: {"from": int|null, "to": int}."""


class PromoteConfig(dg.Config):
    version: int
    """Model version to make champion."""
    reason: str = ""
    """Why; required when forcing (force: true)."""
    requested_by: str
    """Who asks for this change (name or email), kept in the audit record. Must not be empty."""
    force: bool = False
    """Promote even though the gate refused (or never evaluated) this version; needs a reason."""


class RollbackConfig(dg.Config):
    reason: str
    """Why the champion is rolled back, kept in the audit record. Must not be empty."""
    requested_by: str
    """Who asks for this change (name or email), kept in the audit record. Must not be empty."""


def _version_metrics(registry: ModelRegistry, name: str, version: int) -> dict[str, str]:
    return {k.removeprefix("metric."): v for k, v in registry.version(name, version).tags.items() if k.startswith("metric.")}


def _planned_move(context: dg.OpExecutionContext) -> tuple[int | None, int] | None:
    """(from, to) decided by an earlier attempt of this step in this run; None on a first attempt."""
    if context.retry_number == 0:
        return None
    run = context.instance.get_run_by_id(context.run.run_id)
    raw = run.tags.get(PLANNED_MOVE_TAG) if run is not None else None
    if not raw:
        return None
    plan = json.loads(raw)
    context.log.info(
        f"retry {context.retry_number}: carrying out the move decided by the first attempt "
        f"(version {plan['from']} -> {plan['to']}) instead of deciding again"
    )
    return plan["from"], int(plan["to"])


def _plan_move(context: dg.OpExecutionContext, from_version: int | None, to_version: int) -> None:
    context.instance.add_run_tags(context.run.run_id, {PLANNED_MOVE_TAG: json.dumps({"from": from_version, "to": to_version})})


def build_promotion_jobs(spec: ModelSpec) -> list[dg.JobDefinition]:
    name = spec.name

    @dg.op(name=f"promote_{name}_version", pool=WAREHOUSE_POOL, retry_policy=SERVER_RETRY_POLICY)
    def promote(context: dg.OpExecutionContext, config: PromoteConfig, registry: ModelRegistry, warehouse: Warehouse):
        what = f"promotion of version {config.version} of '{name}'"
        actor = require_actor(config.requested_by, what)
        if config.force:
            require_reason(config.reason, what, "force: true needs a written reason (why overrule the gate?)")
        plan = _planned_move(context)
        if plan is None:
            registry.version(name, config.version)  # an unknown version: ModelVersionNotFound lists those that exist
            current = registry.by_alias(name, CHAMPION)
            if current is not None and current.version == config.version:
                raise PromotionRefused(f"{what} refused: it is already the champion, nothing to do")
            check_promotion_allowed(registry, name, config.version, config.force, config.reason)
            plan = (current.version if current else None, config.version)
            _plan_move(context, *plan)
        from_version, _ = plan
        passed, gate_reason = gate_verdict(registry, name, config.version)
        record = move_alias(
            registry,
            warehouse,
            AliasChange(
                model_name=name,
                alias=CHAMPION,
                action="promote",
                from_version=from_version,
                to_version=config.version,
                actor=actor,
                reason=config.reason.strip() or f"gate passed: {gate_reason}",
                forced=config.force and not passed,
                metrics=_version_metrics(registry, name, config.version),
                dagster_run_id=context.run.run_id,
            ),
        )
        challenger = registry.by_alias(name, CHALLENGER)
        if challenger is not None and challenger.version == config.version:
            registry.remove_alias(name, CHALLENGER)
        previous = record["from_version"]
        context.log.info(f"{name}: version {config.version} is champion (was {previous}), requested by {actor}")
        context.add_output_metadata(
            {"from_version": -1 if previous is None else previous, "to_version": config.version, "actor": actor}
        )

    @dg.op(name=f"rollback_{name}_champion", pool=WAREHOUSE_POOL, retry_policy=SERVER_RETRY_POLICY)
    def rollback(context: dg.OpExecutionContext, config: RollbackConfig, registry: ModelRegistry, warehouse: Warehouse):
        what = f"rollback of the champion of '{name}'"
        actor = require_actor(config.requested_by, what)
        reason = require_reason(config.reason, what, "a rollback needs a written reason")
        plan = _planned_move(context)
        if plan is None:
            current, previous = previous_champion(registry, name)
            _plan_move(context, current, previous)
        else:
            current, previous = plan
        move_alias(
            registry,
            warehouse,
            AliasChange(
                model_name=name,
                alias=CHAMPION,
                action="rollback",
                from_version=current,
                to_version=previous,
                actor=actor,
                reason=f"rollback: {reason}",
                forced=False,
                metrics=_version_metrics(registry, name, previous),
                dagster_run_id=context.run.run_id,
            ),
        )
        context.log.info(f"{name}: champion rolled back from version {current} to {previous}, requested by {actor}")
        context.add_output_metadata({"from_version": current, "to_version": previous, "actor": actor})

    @dg.job(name=f"promote_{name}", description=f"Make a given version of {name} the champion (audited).")
    def promote_job():
        promote()

    @dg.job(name=f"rollback_{name}", description=f"Put {name}'s previous champion back in one step (audited).")
    def rollback_job():
        rollback()

    return [promote_job, rollback_job]
