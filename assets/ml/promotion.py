"""Moving the serving aliases, with an audit record for every move.

The gate (automatic) and the promotion and rollback jobs (a person) all move aliases through
:func:`move_alias`, so every change of which version serves leaves the same record: as tags on the registered
model in MLflow and as a row in the append-only ``audit.model_alias_changes`` table of the warehouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from resources.registry import CHAMPION, ModelRegistry
from resources.warehouse import Warehouse

AUDIT_TABLE = "audit.model_alias_changes"
GATE_PASSED_TAG = "gate.passed"
GATE_REASON_TAG = "gate.reason"


class PromotionRefused(Exception):
    """A promotion or rollback that the rules forbid; the message says why and what would allow it."""


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
            "changed_at": datetime.now(timezone.utc).isoformat(),
        }


def move_alias(registry: ModelRegistry, warehouse: Warehouse, change: AliasChange) -> dict[str, Any]:
    """Point the alias at the new version and record who moved it, when, why, and the metrics behind it."""
    record = change.as_record()
    registry.move_alias(change.model_name, change.alias, change.to_version, record)
    # Stored as naive UTC: a tz-aware value would be converted to the server's local time by DuckDB.
    changed_at = pd.Timestamp(record["changed_at"]).tz_convert("UTC").tz_localize(None)
    row = dict(record, metrics=json.dumps(record["metrics"], default=str), changed_at=changed_at)
    row["from_version"] = -1 if change.from_version is None else change.from_version  # -1: there was none
    warehouse.append(AUDIT_TABLE, pd.DataFrame([row]))
    return record


def gate_verdict(registry: ModelRegistry, name: str, version: int) -> tuple[bool | None, str]:
    """What the gate said of a version: (passed, reason); ``None`` when the gate has not evaluated it."""
    tags = registry.version(name, version).tags
    if GATE_PASSED_TAG not in tags:
        return None, "the gate has not evaluated this version"
    return tags[GATE_PASSED_TAG] == "true", tags.get(GATE_REASON_TAG, "")


def check_promotion_allowed(
    registry: ModelRegistry, name: str, version: int, force: bool, reason: str
) -> None:
    passed, gate_reason = gate_verdict(registry, name, version)
    if passed:
        return
    if not force:
        raise PromotionRefused(
            f"version {version} of '{name}' cannot be promoted: {gate_reason or 'it failed the gate'}. "
            "Set force: true and write a reason to promote it anyway."
        )
    if not reason.strip():
        raise PromotionRefused(f"forcing version {version} of '{name}' past the gate needs a written reason")


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
