"""Moving the serving aliases, with an audit record for every move.

Training (``challenger``) and the ``<model>/champion`` asset (``champion``: by itself after the gate, or for a person
through the promotion and rollback jobs) all move aliases through :func:`move_alias`, so every change of which
version serves leaves the same record: a row in the append-only ``audit.model_alias_changes`` table of the
warehouse, the history (who, when, why, from which version, the metrics behind it). MLflow shows the present:
the registered model's tags say which version is champion, since when, by whom and why, in a fixed set of keys
(:func:`champion_state_tags`, overwritten on every move), and each version's tags say when it became (and stopped
being) champion.

The steps that move aliases retry when a server (MLflow, the warehouse) does not answer, so a move may be
attempted again after it was half done: :func:`move_alias` sets the alias and tags again (the same state) and adds
the audit row only if its run has not already. A move the rules forbid raises :class:`PromotionRefused`, a
``dagster.Failure`` that is never retried: asking again gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.ml.alias_audit import AUDIT_TABLE, alias_moves, append_audit_row, audit_row_exists
from resources.registry import CHAMPION, ModelRegistry
from resources.warehouse import Warehouse

# The registered model's tags: the champion now, in plain words, and where the history is. Always these keys.
CHAMPION_VERSION_TAG = "champion.version"
CHAMPION_SINCE_TAG = "champion.since"  # "2026-03-01 12:00:03 UTC"
CHAMPION_BY_TAG = "champion.by"  # who made it champion (a person, or "gate")
CHAMPION_WHY_TAG = "champion.why"  # e.g. "rolled back from version 3: bad release"
HISTORY_TAG = "alias_history"
HISTORY = f"every alias move (who, when, why, metrics): warehouse table {AUDIT_TABLE}"
CHAMPION_UNTIL_TAG = "champion.until"  # on a version: when it stopped being champion
# What the gate (the champion_challenger_gate check) records on the version it judged.
GATE_PASSED_TAG = "gate.passed"  # "true": it may serve (floor, tolerance, guardrails)
GATE_REASON_TAG = "gate.reason"
GATE_CHAMPION_TAG = "gate.champion_version"  # the champion it was compared with ("none": there was none)
GATE_IMPROVEMENT_TAG = "gate.improvement"  # primary metric, challenger minus champion, signed so that > 0 is better
GATE_BEATS_TAG = "gate.beats_champion"  # "true": better than the champion by more than promotion.min_improvement
# On a version a crashed training left unjudged, retired by assets.ml.recovery (gate.passed "false" too): when, by
# which Dagster run.
GATE_RETIRED_TAG = "gate.retired"


class PromotionRefused(dg.Failure):
    """A promotion or rollback that the rules forbid; the message says why and what would allow it.

    A ``dagster.Failure`` with ``allow_retries=False``: a step's retry policy would only ask the same question again.
    """

    def __init__(self, description: str = ""):
        super().__init__(description=description, allow_retries=False)


def require_actor(requested_by: str, what: str) -> str:
    """The person asking for ``what`` (a promotion or rollback), stripped; refused when empty or only spaces."""
    actor = requested_by.strip()
    if not actor:
        raise PromotionRefused(
            f"{what} refused: requested_by is empty. Set requested_by to who asks for this change (a name or "
            "email): every alias move is recorded with its actor in the audit trail."
        )
    return actor


def require_reason(reason: str, what: str, why_needed: str) -> str:
    """A written reason, stripped; refused when empty or only spaces. ``why_needed`` says when one is required."""
    written = reason.strip()
    if not written:
        raise PromotionRefused(f"{what} refused: {why_needed}. Write one in `reason`; it is kept in the audit trail.")
    return written


MAX_REASON_CHARS = 1000  # a reason is kept whole in the audit row, the run tag and MLflow tags (bounded values)


@dataclass(frozen=True)
class AliasChange:
    model_name: str
    alias: str
    action: str  # "train", "gate", "promote" or "rollback"
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    forced: bool
    metrics: dict[str, Any]
    dagster_run_id: str

    def as_record(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "reason": self.reason[:MAX_REASON_CHARS],
            "forced": self.forced,
            "metrics": self.metrics,
            "dagster_run_id": self.dagster_run_id,
            "changed_at": datetime.now(UTC).isoformat(),
        }


def move_alias(registry: ModelRegistry, warehouse: Warehouse, change: AliasChange) -> dict[str, Any]:
    """Point the alias at the new version, show the new state in MLflow (:func:`champion_state_tags` on the
    registered model for the champion, ``<alias>.*`` tags on the versions), and append the move to the audit table.

    Safe to call again from a retried step of the same Dagster run: the alias and tags are set again (the same
    state), and the audit row is appended only if this run has not appended it already.
    """
    record = change.as_record()
    name, since = change.model_name, _in_utc(record["changed_at"])
    version_tags = {f"{change.alias}.since": since}
    model_tags: dict[str, str] = {}
    if change.alias == CHAMPION:
        model_tags = champion_state_tags(record)
        version_tags.update({CHAMPION_BY_TAG: record["actor"], CHAMPION_WHY_TAG: model_tags[CHAMPION_WHY_TAG]})
    registry.move_alias(name, change.alias, change.to_version, model_tags=model_tags, version_tags=version_tags)
    if change.alias == CHAMPION:
        registry.delete_version_tags(name, change.to_version, [CHAMPION_UNTIL_TAG])  # it serves again
        if change.from_version is not None and change.from_version != change.to_version:
            registry.set_version_tags(name, change.from_version, {CHAMPION_UNTIL_TAG: since})
    if not audit_row_exists(warehouse, record):
        append_audit_row(warehouse, record)
    return record


def _in_utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def champion_state_tags(record: dict[str, Any]) -> dict[str, str]:
    """The registered model's tags after a champion move (:meth:`AliasChange.as_record`): which version serves,
    since when, by whom and why, in plain words, and where the history is. Always the same keys."""
    was = "none" if record["from_version"] is None else f"version {record['from_version']}"
    reason = record["reason"]
    if record["action"] == "rollback":
        why = f"rolled back from {was}: {reason.removeprefix('rollback: ')}"
    else:
        by_whom = "by the gate " if record["action"] == "gate" else ""
        forced = ", forced past the gate" if record["forced"] else ""
        why = f"promoted {by_whom}(was {was}{forced}): {reason}"
    return {
        CHAMPION_VERSION_TAG: str(record["to_version"]),
        CHAMPION_SINCE_TAG: _in_utc(record["changed_at"]),
        CHAMPION_BY_TAG: record["actor"],
        CHAMPION_WHY_TAG: why,
        HISTORY_TAG: HISTORY,
    }


def gate_verdict(registry: ModelRegistry, name: str, version: int) -> tuple[bool | None, str]:
    """What the gate said of a version: (passed, reason); ``None`` when the gate has not evaluated it."""
    tags = registry.version(name, version).tags
    if GATE_PASSED_TAG not in tags:
        return None, "the gate has not evaluated this version"
    return tags[GATE_PASSED_TAG] == "true", tags.get(GATE_REASON_TAG, "")


def check_promotion_allowed(registry: ModelRegistry, name: str, version: int, force: bool, reason: str) -> None:
    """Refuse (:class:`PromotionRefused`, saying why) a promotion the gate forbids.

    ``force`` always needs a written reason, whatever the gate said: it is the audit trail's answer to "why was
    the gate overruled". A version the gate refused, or never evaluated, needs ``force``.
    """
    what = f"promotion of version {version} of '{name}'"
    if force:
        require_reason(reason, what, "force: true needs a written reason (why overrule the gate?)")
    passed, gate_reason = gate_verdict(registry, name, version)
    if passed:
        return
    if not force:
        raise PromotionRefused(
            f"version {version} of '{name}' cannot be promoted: {gate_reason or 'it failed the gate'}. "
            "Set force: true and write a reason to promote it anyway."
        )


def previous_champion(registry: ModelRegistry, warehouse: Warehouse, name: str) -> tuple[int, int]:
    """(current, previous) champion versions, from the audit table.

    The recorded champions form a stack: a promotion (by the gate or a person) pushes its version, a rollback
    pops one. Rolling back twice after 1 -> 2 -> 3 goes to 2, then 1; never back to the version just left.
    If the alias was moved by hand in MLflow (no record), the last recorded champion is the one to return to.
    """
    current = registry.by_alias(name, CHAMPION)
    if current is None:
        raise PromotionRefused(f"'{name}' has no champion: there is nothing to roll back")
    stack: list[int] = []
    for action, to_version in alias_moves(warehouse, name, CHAMPION):
        if action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != to_version:
            stack.append(to_version)
    if stack and stack[-1] != current.version:
        return current.version, stack[-1]
    if len(stack) < 2:
        raise PromotionRefused(
            f"'{name}' champion version {current.version} has no earlier champion recorded: nothing to roll back to"
        )
    return current.version, stack[-2]
