"""Which version of a model spec serves: the decision the ``<model>/champion`` asset
(:mod:`assets.ml.champion_assets`) carries out, from the registry as it is and what was asked.

The request's ``action`` says who decides:

- ``auto`` (default; the training job): the newest challenger replaces the champion if the gate passed it, it beats
  the champion by more than ``promotion.min_improvement`` (a tie keeps the champion) and the spec's policy is
  ``auto``; the first version to clear the floor becomes champion whatever the policy. Otherwise the champion
  stays, and the decision says why.
- ``promote`` (the ``promote_<model>`` job): a person makes ``version`` champion; a version the gate refused, or
  never judged, needs ``force: true`` and a ``reason``.
- ``rollback`` (the ``rollback_<model>`` job): a person puts the previous champion back (again: the one before it;
  never the version just left). It also clears the ``challenger`` alias, which ends a canary at once
  (:mod:`assets.ml.canary`): after a rollback nothing but the restored champion decides.

The gate itself (the ``champion_challenger_gate`` check on ``<model>/model``) only observes and records its verdict
on the version; this module reads that verdict.

Every refusal is a :class:`assets.ml.promotion.PromotionRefused` that says why and is never retried (asking again
gets the same answer): ``requested_by`` empty for a person's action; ``force: true`` without a ``reason``; a
rollback without a ``reason``; a version that does not exist (the message lists those that do); a version already
champion; a version the gate refused or never judged, unless forced; a rollback with no earlier champion.
The champion step tags a refused run with what was asked and why it was refused
(:func:`assets.ml.champion_assets._refusal_tagged`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assets.ml.promotion import (
    GATE_BEATS_TAG,
    GATE_CHAMPION_TAG,
    GATE_PASSED_TAG,
    GATE_REASON_TAG,
    GATE_RETIRED_TAG,
    PromotionRefused,
    check_promotion_allowed,
    gate_verdict,
    previous_champion,
    require_actor,
    require_reason,
)
from assets.ml.provenance import LABEL_LAST_DAY_TAG
from assets.ml.spec import LOWER_IS_BETTER, ModelSpec
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionInfo
from resources.warehouse import Warehouse

AUTO_ACTOR = "gate"  # the actor recorded for an automatic promotion nobody asked for by name


class ChampionRequest(Protocol):
    """What is asked of the champion step (its config, :class:`assets.ml.champion_assets.ChampionConfig`)."""

    action: str  # "auto", "promote" or "rollback"
    version: int | None
    requested_by: str
    reason: str
    force: bool


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


def validated_actor(config: ChampionRequest, name: str) -> str:
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


def decide(
    spec: ModelSpec, registry: ModelRegistry, warehouse: Warehouse, config: ChampionRequest, actor: str
) -> Decision:
    """What the step will do, from the registry (and, for a rollback, the audit table) as it is now;
    :class:`PromotionRefused` when it must not."""
    if config.action == "promote":
        return _decide_promote(spec, registry, config, actor)
    if config.action == "rollback":
        current, previous = previous_champion(registry, warehouse, spec.name)
        return Decision("rollback", previous, current, f"rollback: {config.reason.strip()}", actor)
    return _decide_auto(spec, registry, actor)


def _decide_promote(spec: ModelSpec, registry: ModelRegistry, config: ChampionRequest, actor: str) -> Decision:
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


def version_metrics(registry: ModelRegistry, name: str, version: int) -> dict[str, str]:
    """The holdout metrics recorded on a version (its ``metric.*`` tags), by metric name."""
    return {
        k.removeprefix("metric."): v for k, v in registry.version(name, version).tags.items() if k.startswith("metric.")
    }


MAX_LISTED_VERSIONS = 20
_GATE_WORDS = 120  # characters of the gate's reason shown per version


def versions_table(spec: ModelSpec, versions: list[VersionInfo]) -> str:
    """A Markdown table of the newest versions (newest first): aliases, the gate's verdict, the holdout primary metric
    and the newest label each learned from; what a person picks a version to promote from."""
    primary = spec.evaluation.primary_metric
    direction = " (lower is better)" if primary in LOWER_IS_BETTER else ""
    lines = [
        f"| version | alias | gate | holdout {primary}{direction} | labels up to |",
        "|---|---|---|---|---|",
    ]
    for info in versions[:MAX_LISTED_VERSIONS]:
        passed = info.tags.get(GATE_PASSED_TAG)
        verdict = {"true": "passed", "false": "failed"}.get(passed or "", "not judged")
        reason = info.tags.get(GATE_REASON_TAG, "")
        if GATE_RETIRED_TAG in info.tags:  # left unjudged by a crashed training (assets.ml.recovery)
            verdict, reason = "retired", reason.removeprefix("retired without a verdict: ")
        if passed is not None and reason:
            short = reason if len(reason) <= _GATE_WORDS else reason[: _GATE_WORDS - 3] + "..."
            verdict += ": " + short.replace("|", "/")
        metric = info.tags.get(f"metric.{primary}")
        shown = f"{float(metric):.4f}" if metric else ""
        aliases = ", ".join(info.aliases)
        lines.append(f"| {info.version} | {aliases} | {verdict} | {shown} | {info.tags.get(LABEL_LAST_DAY_TAG, '')} |")
    if len(versions) > MAX_LISTED_VERSIONS:
        lines.append(f"| ... | {len(versions) - MAX_LISTED_VERSIONS} older | | | |")
    return "\n".join(lines)
