"""The history of alias moves: the append-only warehouse table ``audit.model_alias_changes``, one row per move
(model, alias, action, from and to version, actor, reason, forced, metrics, Dagster run, when).

MLflow keeps no history of aliases, and the registered model's tags keep only the present
(:mod:`assets.ml.promotion`): this table is where "who made which version champion, when and why" is answered, and
where a rollback finds the champion before the current one. pandas is imported inside the functions.
"""

from __future__ import annotations

import json
from typing import Any

from resources.warehouse import Warehouse
from resources.warehouse.sql import text_literal

AUDIT_TABLE = "audit.model_alias_changes"


def append_audit_row(warehouse: Warehouse, record: dict[str, Any]) -> None:
    """Append one move (:meth:`assets.ml.promotion.AliasChange.as_record`)."""
    import pandas as pd

    # Stored as naive UTC: a tz-aware value would be converted to the server's local time by DuckDB.
    changed_at = pd.Timestamp(record["changed_at"]).tz_convert("UTC").tz_localize(None)
    row = dict(record, metrics=json.dumps(record["metrics"], default=str), changed_at=changed_at)
    frame = pd.DataFrame([row])
    # NULL where there was no earlier version (rows written before 2026-12-06 say -1), still an integer column.
    frame["from_version"] = pd.array([record["from_version"]], dtype="Int64")
    warehouse.append(AUDIT_TABLE, frame)


def audit_row_exists(warehouse: Warehouse, record: dict[str, Any]) -> bool:
    """Whether the same Dagster run already recorded this very move (a retried step)."""
    if not record["dagster_run_id"] or not warehouse.table_exists(AUDIT_TABLE):
        return False
    found = warehouse.query(
        f"SELECT count(*) AS n FROM {AUDIT_TABLE} WHERE dagster_run_id = {text_literal(record['dagster_run_id'])} "
        f"AND model_name = {text_literal(record['model_name'])} AND alias = {text_literal(record['alias'])} "
        f"AND action = {text_literal(record['action'])} AND to_version = {int(record['to_version'])}"
    )
    return int(found["n"].iloc[0]) > 0


def alias_moves(warehouse: Warehouse, name: str, alias: str) -> list[tuple[str, int]]:
    """(action, to_version) of every recorded move of ``alias`` of model ``name``, oldest first."""
    if not warehouse.table_exists(AUDIT_TABLE):
        return []
    rows = warehouse.query(
        f"SELECT action, to_version FROM {AUDIT_TABLE} WHERE model_name = {text_literal(name)} "
        f"AND alias = {text_literal(alias)} ORDER BY changed_at"
    )
    return [(str(row.action), int(row.to_version)) for row in rows.itertuples()]
