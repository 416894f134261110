"""Moving the serving aliases, with an audit record for every move.

Training (``challenger``) and the ``<model>/champion`` asset (``champion``: by itself after the gate, or for a person
through the promotion and rollback jobs) all move aliases through :func:`move_alias`, so every change of which
version serves leaves the same record: as tags on the registered model in MLflow and as a row in the append-only
``audit.model_alias_changes`` table of the warehouse.

The steps that move aliases retry when a server (MLflow, the warehouse) does not answer, so a move may be
attempted again after it was half done: :func:`move_alias` completes a move its own run already recorded instead
of recording it twice. A move the rules forbid raises :class:`PromotionRefused`, a ``dagster.Failure`` that is
never retried: asking again gets the same answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from resources.registry import CHAMPION, ModelRegistry
from resources.warehouse import Warehouse

AUDIT_TABLE = "audit.model_alias_changes"
# What the gate (the champion_challenger_gate check) records on the version it judged.
GATE_PASSED_TAG = "gate.passed"  # "true": it may serve (floor, tolerance, guardrails)
GATE_REASON_TAG = "gate.reason"
GATE_CHAMPION_TAG = "gate.champion_version"  # the champion it was compared with ("none": there was none)
GATE_IMPROVEMENT_TAG = "gate.improvement"  # primary metric, challenger minus champion, signed so that > 0 is better
GATE_BEATS_TAG = "gate.beats_champion"  # "true": better than the champion by more than promotion.min_improvement


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


MAX_REASON_CHARS = 1000  # MLflow tag values are bounded; a record must stay whole to be read back


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
    """Point the alias at the new version and record who moved it, when, why, and the metrics behind it.

    Safe to call again from a retried step of the same Dagster run: if the registry already holds this run's
    record of this very move, the alias is set again and the warehouse row added only if it is missing.
    """
    earlier = recorded_move(registry, change)
    if earlier is not None:
        registry.move_alias(change.model_name, change.alias, change.to_version, earlier, audit=False)
        if not _audit_row_exists(warehouse, earlier):
            _append_audit_row(warehouse, earlier)
        return earlier
    record = change.as_record()
    registry.move_alias(change.model_name, change.alias, change.to_version, record)
    _append_audit_row(warehouse, record)
    return record


def recorded_move(registry: ModelRegistry, change: AliasChange) -> dict[str, Any] | None:
    """The registry's record of ``change`` made earlier in the same Dagster run (a retried step), if any."""
    if not change.dagster_run_id:
        return None
    for record in reversed(registry.audit_trail(change.model_name)):
        if (
            record.get("dagster_run_id") == change.dagster_run_id
            and record.get("alias") == change.alias
            and record.get("action") == change.action
            and record.get("to_version") == change.to_version
        ):
            return record
    return None


def _append_audit_row(warehouse: Warehouse, record: dict[str, Any]) -> None:
    import pandas as pd

    # Stored as naive UTC: a tz-aware value would be converted to the server's local time by DuckDB.
    changed_at = pd.Timestamp(record["changed_at"]).tz_convert("UTC").tz_localize(None)
    row = dict(record, metrics=json.dumps(record["metrics"], default=str), changed_at=changed_at)
    row["from_version"] = -1 if record["from_version"] is None else record["from_version"]  # -1: there was none
    warehouse.append(AUDIT_TABLE, pd.DataFrame([row]))


def _sql_text(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _audit_row_exists(warehouse: Warehouse, record: dict[str, Any]) -> bool:
    if not warehouse.table_exists(AUDIT_TABLE):
        return False
    found = warehouse.query(
        f"SELECT count(*) AS n FROM {AUDIT_TABLE} WHERE dagster_run_id = {_sql_text(record['dagster_run_id'])} "
        f"AND model_name = {_sql_text(record['model_name'])} AND alias = {_sql_text(record['alias'])} "
        f"AND action = {_sql_text(record['action'])} AND to_version = {int(record['to_version'])}"
    )
    return int(found["n"].iloc[0]) > 0


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


def previous_champion(registry: ModelRegistry, name: str) -> tuple[int, int]:
    """(current, previous) champion versions, from the audit trail.

    The recorded champions form a stack: a promotion (by the gate or a person) pushes its version, a rollback
    pops one. Rolling back twice after 1 -> 2 -> 3 goes to 2, then 1; never back to the version just left.
    If the alias was moved by hand in MLflow (no record), the last recorded champion is the one to return to.
    """
    current = registry.by_alias(name, CHAMPION)
    if current is None:
        raise PromotionRefused(f"'{name}' has no champion: there is nothing to roll back")
    stack: list[int] = []
    for record in registry.audit_trail(name):
        if record.get("alias") != CHAMPION:
            continue
        if record.get("action") == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != record["to_version"]:
            stack.append(int(record["to_version"]))
    if stack and stack[-1] != current.version:
        return current.version, stack[-1]
    if len(stack) < 2:
        raise PromotionRefused(
            f"'{name}' champion version {current.version} has no earlier champion recorded: nothing to roll back to"
        )
    return current.version, stack[-2]
