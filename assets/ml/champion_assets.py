"""The serving decision of one model spec, as an asset: ``<model>/champion``.

Materializing it decides which version serves (:func:`assets.ml.champion.decide`: by the gate's verdict, or a
person's promote / rollback) and moves the ``champion`` alias through :func:`assets.ml.promotion.move_alias`
(MLflow and a row in ``audit.model_alias_changes``); its metadata says which version serves and why. Scoring reads
the alias, so an alias moved by hand in MLflow is still honoured. Being downstream of the blocking gate check, a
failed gate stops it in the training run; re-running the check never changes what serves.

The step talks to the MLflow registry and the warehouse, so it retries when a server does not answer. A retry must
not decide again what the first attempt decided and maybe half did (a rollback decided twice would go back two
champions): the decision is kept as a run tag before anything moves, and a retry carries out that decision;
:func:`assets.ml.promotion.move_alias` then completes the move rather than recording it twice.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types.
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import dagster as dg
from pydantic import Field

from assets.ml.champion import Decision, decide, validated_actor, version_metrics, versions_table
from assets.ml.promotion import MAX_REASON_CHARS, AliasChange, PromotionRefused, move_alias
from assets.ml.spec import ModelSpec
from assets.step_cost import with_cost
from resources.registry import CHALLENGER, CHAMPION, SERVER_RETRY_POLICY, ModelRegistry, ModelVersionNotFound
from resources.warehouse import WAREHOUSE_POOL, Warehouse

# The move a champion step decided on, kept in its run's tags for its retries, in words a person reads in the runs
# list (no JSON): the plan itself, and what it needs beside the action, version and actor tags below.
PLANNED_MOVE_TAG = "nightjar/planned_move"
PREVIOUS_TAG = "nightjar/previous_version"  # "none": there was no champion
REASON_TAG = "nightjar/reason"
FORCED_TAG = "nightjar/forced"  # "true" / "false"
# Run tags of a run that moved the champion, or was refused: the runs list answers who asked for which version (and,
# for a refusal, why not).
REQUESTED_BY_TAG = "nightjar/requested_by"
VERSION_TAG = "nightjar/version"
ACTION_TAG = "nightjar/action"
REFUSED_TAG = "nightjar/refused"  # the refusal's message


def champion_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "champion"])


def champion_op_name(spec: ModelSpec) -> str:
    """The op (step) of the champion asset: where its config goes in a run config."""
    return f"{spec.name}__champion"


class ChampionConfig(dg.Config):
    """The launchpad of ``<model>/champion``. Descriptions are ``Field(description=...)``: Dagster shows those, not
    attribute docstrings."""

    action: Literal["auto", "promote", "rollback"] = Field(
        default="auto",
        description="auto: the newest challenger serves if the gate passed it, it beats the champion and the policy "
        "is auto; promote: make `version` champion; rollback: put the previous champion back.",
    )
    version: int | None = Field(
        default=None,
        description="promote: the version to make champion (the `versions` table of this asset's latest "
        "materialization lists them). Not used by auto or rollback.",
    )
    requested_by: str = Field(
        default="", description="Who asks (name or email), kept in the audit record. Required for promote and rollback."
    )
    reason: str = Field(
        default="",
        description="Why, kept in the audit record. Required for rollback, and for promote with force: true.",
    )
    force: bool = Field(
        default=False,
        description="promote: make the version champion even though the gate refused (or never judged) it; needs a "
        "reason.",
    )


def _planned(context: dg.AssetExecutionContext) -> Decision | None:
    """The decision an earlier attempt of this step made in this run; None on a first attempt."""
    if context.retry_number == 0:
        return None
    run = context.instance.get_run_by_id(context.run.run_id)
    decision = planned_decision(run.tags) if run is not None else None
    if decision is None:
        return None
    context.log.info(
        f"retry {context.retry_number}: carrying out the move decided by the first attempt "
        f"(version {decision.previous} -> {decision.serving}) instead of deciding again"
    )
    return decision


def plan_tags(decision: Decision) -> dict[str, str]:
    """The run tags that record ``decision`` (read back by :func:`planned_decision`)."""
    was = "none" if decision.previous is None else str(decision.previous)
    return {
        PLANNED_MOVE_TAG: f"{decision.action}: version {decision.serving} serves (was {was})",
        REQUESTED_BY_TAG: decision.actor,
        VERSION_TAG: str(decision.serving),
        ACTION_TAG: decision.action,
        PREVIOUS_TAG: was,
        REASON_TAG: decision.reason[:MAX_REASON_CHARS],
        FORCED_TAG: "true" if decision.forced else "false",
    }


def planned_decision(tags: Mapping[str, str]) -> Decision | None:
    """The decision :func:`plan_tags` recorded in a run's ``tags``; None when the run planned none."""
    if PLANNED_MOVE_TAG not in tags:
        return None
    previous = tags[PREVIOUS_TAG]
    return Decision(
        action=tags[ACTION_TAG],
        serving=int(tags[VERSION_TAG]),
        previous=None if previous == "none" else int(previous),
        reason=tags[REASON_TAG],
        actor=tags[REQUESTED_BY_TAG],
        forced=tags[FORCED_TAG] == "true",
    )


def _plan(context: dg.AssetExecutionContext, decision: Decision) -> None:
    context.instance.add_run_tags(context.run.run_id, plan_tags(decision))


@contextmanager
def _refusal_tagged(context: dg.AssetExecutionContext, config: ChampionConfig) -> Iterator[None]:
    """A refused request (:class:`PromotionRefused`, or a version not in the registry) leaves its run tagged with what
    was asked, by whom and why it was refused, as an accepted one is tagged with what it did; then fails the run."""
    try:
        yield
    except (PromotionRefused, ModelVersionNotFound) as refused:
        asked = {ACTION_TAG: config.action, REFUSED_TAG: (refused.description or str(refused))[:MAX_REASON_CHARS]}
        if config.requested_by.strip():  # an empty requested_by is itself the refusal: no tag rather than ""
            asked[REQUESTED_BY_TAG] = config.requested_by.strip()
        if config.version is not None:  # a rollback names no version: the one it would restore was not decided
            asked[VERSION_TAG] = str(config.version)
        context.instance.add_run_tags(context.run.run_id, asked)
        raise


def _clear_challenger(registry: ModelRegistry, name: str, decision: Decision) -> str | None:
    """After a move, the ``challenger`` alias goes when it points at the new champion, and after a rollback
    whatever it points at: a rollback ends the canary at once (no challenger, no slice for it on the next scoring),
    and a version waits as challenger again only when training registers one. What was cleared, or None."""
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is None or (decision.action != "rollback" and challenger.version != decision.serving):
        return None
    registry.remove_alias(name, CHALLENGER)
    if decision.action != "rollback":
        return None  # the challenger became champion: nothing to tell
    return f"challenger version {challenger.version} lost its alias: a rollback ends the canary and the shadow"


def build_champion_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    name = spec.name
    model_key = dg.AssetKey([name, "model"])

    @dg.asset(
        key=champion_key(spec),
        deps=[model_key],
        group_name="training",
        # It reads and appends audit rows: on DuckDB (one writer process) it must not overlap a backfill's step. The
        # promote / rollback jobs' dagster/priority puts it first among the steps waiting for the slot.
        pool=WAREHOUSE_POOL,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        kinds={"mlflow"},
        owners=[spec.owner],
        description=f"Which version of {name} serves (models:/{name}@champion), and why. Materializing it decides: "
        "action auto (the training job) promotes the newest challenger if the gate passed it, it beats the champion "
        f"by more than {spec.promotion.min_improvement} {spec.evaluation.primary_metric} and the policy "
        f"({spec.promotion.policy}) allows; promote / rollback (promote_{name}, rollback_{name}) are a person's "
        "decision. Every alias move is audited.",
    )
    @with_cost
    def champion(
        context: dg.AssetExecutionContext, config: ChampionConfig, registry: ModelRegistry, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        with _refusal_tagged(context, config):
            actor = validated_actor(config, name)
            decision = _planned(context)
            if decision is None:
                decision = decide(spec, registry, warehouse, config, actor)
                if decision.moves:
                    _plan(context, decision)
        if decision.moves:
            move_alias(
                registry,
                warehouse,
                AliasChange(
                    model_name=name,
                    alias=CHAMPION,
                    action=decision.action,
                    from_version=decision.previous,
                    to_version=decision.serving,
                    actor=decision.actor,
                    reason=decision.reason,
                    forced=decision.forced,
                    metrics=version_metrics(registry, name, decision.serving),
                    dagster_run_id=context.run.run_id,
                ),
            )
        cleared = _clear_challenger(registry, name, decision) if decision.moves else None
        context.log.info(decision.summary(name) + (f"; {cleared}" if cleared else ""))
        metrics = version_metrics(registry, name, decision.serving)
        return dg.MaterializeResult(
            metadata={
                "champion_version": decision.serving,
                # No sentinel where a person reads: a first champion has no previous version, so no such entry.
                **({} if decision.previous is None else {"previous_version": decision.previous}),
                "decision": {"keep": "kept", "rollback": "rolled back"}.get(decision.action, "promoted"),
                "action": config.action,
                "reason": decision.reason,
                "requested_by": decision.actor,
                "forced": decision.forced,
                "policy": spec.promotion.policy,
                "model_uri": f"models:/{name}/{decision.serving}",
                **registry.version_links(name, decision.serving),  # its MLflow run and version pages, as links
                # What a person promoting or rolling back needs to see: the versions there are, and the gate's word.
                "versions": dg.MetadataValue.md(versions_table(spec, registry.all_versions(name))),
                **({"challenger_cleared": cleared} if cleared else {}),
                **{f"holdout_{k}": float(v) for k, v in metrics.items()},
            },
            # The version is what downstream depends on: a decision that keeps the champion changes nothing for
            # the predictions.
            data_version=dg.DataVersion(str(decision.serving)),
        )

    return champion
