"""The serving decision of one model spec, as an asset: ``<model>/champion``.

Materializing it decides which version serves and moves the ``champion`` alias through
:func:`assets.ml.promotion.move_alias` (MLflow tags and a row in ``audit.model_alias_changes``); its metadata says
which version serves and why. Scoring reads the alias, so an alias moved by hand in MLflow is still honoured. The
config's ``action`` says who decides:

- ``auto`` (default; the training job): the newest challenger replaces the champion if the gate passed it, it beats
  the champion by more than ``promotion.min_improvement`` (a tie keeps the champion) and the spec's policy is
  ``auto``; the first version to clear the floor becomes champion whatever the policy. Otherwise the champion
  stays, and the metadata says why.
- ``promote`` (the ``promote_<model>`` job): a person makes ``version`` champion; a version the gate refused, or
  never judged, needs ``force: true`` and a ``reason``.
- ``rollback`` (the ``rollback_<model>`` job): a person puts the previous champion back (again: the one before it;
  never the version just left).

The gate itself (the ``champion_challenger_gate`` check on ``<model>/model``) only observes and records its verdict
on the version; being blocking, a failed gate stops this asset in the training run. Re-running the check never
changes what serves.

Every refusal is a :class:`assets.ml.promotion.PromotionRefused` that says why and is never retried (asking again
gets the same answer): ``requested_by`` empty for a person's action; ``force: true`` without a ``reason``; a
rollback without a ``reason``; a version that does not exist (the message lists those that do); a version already
champion; a version the gate refused or never judged, unless forced; a rollback with no earlier champion.

The step talks to the MLflow registry and the warehouse, so it retries when a server does not answer. A retry must
not decide again what the first attempt decided and maybe half did (a rollback decided twice would go back two
champions): the decision is kept as a run tag before anything moves, and a retry carries out that decision;
:func:`assets.ml.promotion.move_alias` then completes the move rather than recording it twice.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types.
import json
from dataclasses import asdict, dataclass
from typing import Literal

import dagster as dg

from assets.ml.promotion import (
    GATE_BEATS_TAG,
    GATE_CHAMPION_TAG,
    MAX_REASON_CHARS,
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
"""Run tag holding the move a champion step decided on, for its retries (a :class:`Decision` as JSON)."""
# Run tags of a run that moved the champion: the runs list answers who made which version champion.
REQUESTED_BY_TAG = "nightjar/requested_by"
VERSION_TAG = "nightjar/version"
ACTION_TAG = "nightjar/action"

AUTO_ACTOR = "gate"  # the actor recorded for an automatic promotion nobody asked for by name


def champion_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "champion"])


def champion_op_name(spec: ModelSpec) -> str:
    """The op (step) of the champion asset: where its config goes in a run config."""
    return f"{spec.name}__champion"


class ChampionConfig(dg.Config):
    action: Literal["auto", "promote", "rollback"] = "auto"
    """auto: the newest challenger serves if the gate passed it, it beats the champion and the policy is auto;
    promote: make `version` champion; rollback: put the previous champion back."""
    version: int | None = None
    """promote: the version to make champion. Not used by auto or rollback."""
    requested_by: str = ""
    """Who asks (name or email), kept in the audit record. Required for promote and rollback."""
    reason: str = ""
    """Why, kept in the audit record. Required for rollback, and for promote with force: true."""
    force: bool = False
    """promote: make the version champion even though the gate refused (or never judged) it; needs a reason."""


@dataclass(frozen=True)
class Decision:
    action: str  # what the audit records: "gate" (automatic), "promote", "rollback"; "keep" when nothing moves
    serving: int  # the version that serves once the step is done
    previous: int | None  # the version that served before (None: there was none)
    reason: str
    actor: str
    forced: bool = False

    @property
    def moves(self) -> bool:
        return self.action != "keep"

    def summary(self, name: str) -> str:
        if not self.moves:
            return f"{name}: version {self.serving} stays champion: {self.reason}"
        was = "none" if self.previous is None else f"version {self.previous}"
        verb = "rolled back to" if self.action == "rollback" else "promoted"
        return f"{name}: version {self.serving} {verb} champion (was {was}), by {self.actor}: {self.reason}"


# --- deciding -----------------------------------------------------------------------------------------------------


def validated_actor(config: ChampionConfig, name: str) -> str:
    """Who asks, after refusing a config that cannot be carried out whatever the registry holds."""
    if config.action == "auto":
        what = f"automatic choice of the champion of '{name}'"
        if config.version is not None:
            raise PromotionRefused(
                f"{what} refused: version is set ({config.version}), but action auto takes the newest challenger. "
                "Use action promote to make a given version champion."
            )
        if config.force:
            raise PromotionRefused(f"{what} refused: force is only for action promote (overruling the gate)")
        return config.requested_by.strip() or AUTO_ACTOR
    if config.action == "promote":
        what = f"promotion of version {config.version} of '{name}'"
        actor = require_actor(config.requested_by, what)
        if config.version is None:
            raise PromotionRefused(
                f"promotion of '{name}' refused: version is empty. Set version to the version to make champion."
            )
        if config.force:
            require_reason(config.reason, what, "force: true needs a written reason (why overrule the gate?)")
        return actor
    what = f"rollback of the champion of '{name}'"
    actor = require_actor(config.requested_by, what)
    require_reason(config.reason, what, "a rollback needs a written reason")
    if config.version is not None or config.force:
        raise PromotionRefused(
            f"{what} refused: a rollback puts the previous champion back, it takes no version and no force. "
            "To serve a given version, use action promote."
        )
    return actor


def decide(spec: ModelSpec, registry: ModelRegistry, config: ChampionConfig, actor: str) -> Decision:
    """What the step will do, from the registry as it is now; :class:`PromotionRefused` when it must not."""
    if config.action == "promote":
        return _decide_promote(spec, registry, config, actor)
    if config.action == "rollback":
        current, previous = previous_champion(registry, spec.name)
        return Decision("rollback", previous, current, f"rollback: {config.reason.strip()}", actor)
    return _decide_auto(spec, registry, actor)


def _decide_promote(spec: ModelSpec, registry: ModelRegistry, config: ChampionConfig, actor: str) -> Decision:
    name, version = spec.name, int(config.version)
    what = f"promotion of version {version} of '{name}'"
    registry.version(name, version)  # an unknown version: ModelVersionNotFound lists those that exist
    current = registry.by_alias(name, CHAMPION)
    if current is not None and current.version == version:
        raise PromotionRefused(f"{what} refused: it is already the champion, nothing to do")
    check_promotion_allowed(registry, name, version, config.force, config.reason)
    passed, gate_reason = gate_verdict(registry, name, version)
    return Decision(
        "promote",
        version,
        current.version if current else None,
        config.reason.strip() or f"gate passed: {gate_reason}",
        actor,
        forced=config.force and not passed,
    )


def _decide_auto(spec: ModelSpec, registry: ModelRegistry, actor: str) -> Decision:
    name = spec.name
    champion = registry.by_alias(name, CHAMPION)
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is None or (champion is not None and challenger.version == champion.version):
        if champion is None:
            raise PromotionRefused(
                f"'{name}' has no champion and no challenger: train a version with the train_{name} job"
            )
        return Decision("keep", champion.version, champion.version, "no challenger is waiting", actor)
    candidate = challenger.version
    passed, gate_reason = gate_verdict(registry, name, candidate)

    def keep(why: str) -> Decision:
        if champion is None:
            raise PromotionRefused(
                f"'{name}' has no champion, and challenger version {candidate} may not become one by itself: {why}. "
                f"A person may promote it with promote_{name} (force: true and a reason)."
            )
        return Decision("keep", champion.version, champion.version, why, actor)

    if passed is None:
        return keep(
            f"challenger version {candidate} has not been judged by the gate (run the "
            f"champion_challenger_gate check of {name}/model)"
        )
    if not passed:
        return keep(f"challenger version {candidate} failed the gate: {gate_reason}")
    if champion is None:
        return Decision("gate", candidate, None, f"first version to clear the floor: {gate_reason}", actor)
    if spec.promotion.policy != "auto":
        return keep(
            f"policy manual: challenger version {candidate} passed the gate ({gate_reason}) and waits for a "
            f"person (promote_{name})"
        )
    tags = registry.version(name, candidate).tags
    judged_against = tags.get(GATE_CHAMPION_TAG)
    if judged_against != str(champion.version):
        return keep(
            f"the gate judged challenger version {candidate} against version {judged_against}, but version "
            f"{champion.version} serves now: run the champion_challenger_gate check of {name}/model again"
        )
    if tags.get(GATE_BEATS_TAG) != "true":
        return keep(
            f"challenger version {candidate} does not beat champion version {champion.version} by more than "
            f"min_improvement {spec.promotion.min_improvement}: {gate_reason}"
        )
    return Decision("gate", candidate, champion.version, gate_reason, actor)


# --- retries ------------------------------------------------------------------------------------------------------


def _planned(context: dg.AssetExecutionContext) -> Decision | None:
    """The decision an earlier attempt of this step made in this run; None on a first attempt."""
    if context.retry_number == 0:
        return None
    run = context.instance.get_run_by_id(context.run.run_id)
    raw = run.tags.get(PLANNED_MOVE_TAG) if run is not None else None
    if not raw:
        return None
    decision = Decision(**json.loads(raw))
    context.log.info(
        f"retry {context.retry_number}: carrying out the move decided by the first attempt "
        f"(version {decision.previous} -> {decision.serving}) instead of deciding again"
    )
    return decision


def _plan(context: dg.AssetExecutionContext, decision: Decision) -> None:
    plan = dict(asdict(decision), reason=decision.reason[:MAX_REASON_CHARS])
    context.instance.add_run_tags(
        context.run.run_id,
        {
            PLANNED_MOVE_TAG: json.dumps(plan),
            REQUESTED_BY_TAG: decision.actor,
            VERSION_TAG: str(decision.serving),
            ACTION_TAG: decision.action,
        },
    )


# --- the asset ----------------------------------------------------------------------------------------------------


def _version_metrics(registry: ModelRegistry, name: str, version: int) -> dict[str, str]:
    return {
        k.removeprefix("metric."): v for k, v in registry.version(name, version).tags.items() if k.startswith("metric.")
    }


def build_champion_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    name = spec.name
    model_key = dg.AssetKey([name, "model"])

    @dg.asset(
        key=champion_key(spec),
        deps=[model_key],
        group_name="training",
        pool=WAREHOUSE_POOL,  # writes the audit table
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        kinds={"mlflow"},
        owners=[spec.owner],
        description=f"Which version of {name} serves (models:/{name}@champion), and why. Materializing it decides: "
        "action auto (the training job) promotes the newest challenger if the gate passed it, it beats the champion "
        f"by more than {spec.promotion.min_improvement} {spec.evaluation.primary_metric} and the policy "
        f"({spec.promotion.policy}) allows; promote / rollback (promote_{name}, rollback_{name}) are a person's "
        "decision. Every alias move is audited.",
    )
    def champion(
        context: dg.AssetExecutionContext, config: ChampionConfig, registry: ModelRegistry, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        actor = validated_actor(config, name)
        decision = _planned(context)
        if decision is None:
            decision = decide(spec, registry, config, actor)
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
                    metrics=_version_metrics(registry, name, decision.serving),
                    dagster_run_id=context.run.run_id,
                ),
            )
            challenger = registry.by_alias(name, CHALLENGER)
            if challenger is not None and challenger.version == decision.serving:
                registry.remove_alias(name, CHALLENGER)
        context.log.info(decision.summary(name))
        metrics = _version_metrics(registry, name, decision.serving)
        return dg.MaterializeResult(
            metadata={
                "champion_version": decision.serving,
                "previous_version": -1 if decision.previous is None else decision.previous,
                "decision": {"keep": "kept", "rollback": "rolled back"}.get(decision.action, "promoted"),
                "action": config.action,
                "reason": decision.reason,
                "requested_by": decision.actor,
                "forced": decision.forced,
                "policy": spec.promotion.policy,
                "model_uri": f"models:/{name}/{decision.serving}",
                **{f"holdout_{k}": float(v) for k, v in metrics.items()},
            },
            # The version is what downstream depends on: a decision that keeps the champion changes nothing for
            # the predictions.
            data_version=dg.DataVersion(str(decision.serving)),
        )

    return champion
