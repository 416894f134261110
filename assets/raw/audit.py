"""The audit of a staged raw day: every rule its declaration states, checked in SQL before anything is published.

Rules: not_null (declared ``not_null`` columns and key columns), partition day (the day column equals the day),
accepted_values, min / max, key unique within the day, and key not already stored on another day. Each failing
rule gives one line naming the column, the rule, how many rows and the first of them (by data row of the file).
"""

from __future__ import annotations

from datetime import date

from resources.source.base import count_rows
from resources.source.landing import ROW_COLUMN
from resources.source.schema import NUMERIC_TYPES, Column, RawTable
from resources.warehouse import Warehouse


def audit_staged(warehouse: Warehouse, table: RawTable, staging: str, day: date) -> tuple[int, list[str]]:
    """Rows staged, and one line per broken rule (empty when the day may be published)."""
    rules = _row_rules(table, day)
    counts = warehouse.query(
        "SELECT count(*) AS n"
        + "".join(f", count(*) FILTER (WHERE {cond}) AS r{i}" for i, (_, _, cond) in enumerate(rules))
        + f" FROM {staging}"
    ).iloc[0]
    rows = int(counts["n"])
    problems = []
    for i, (column, rule, cond) in enumerate(rules):
        failing = int(counts[f"r{i}"])
        if failing:
            first = warehouse.query(
                f'SELECT {ROW_COLUMN} AS row_number, "{column}" AS value FROM {staging} WHERE {cond} '
                f"ORDER BY {ROW_COLUMN} LIMIT 1"
            ).iloc[0]
            problems.append(
                f"column {column!r}, rule {rule}: {count_rows(failing)}, "
                f"e.g. data row {int(first['row_number'])}: {_shown(first['value'])}"
            )
    if table.key and rows:
        problems += _key_problems(warehouse, table, staging, day)
    return rows, problems


def _row_rules(table: RawTable, day: date) -> list[tuple[str, str, str]]:
    """(column, rule, SQL condition that a failing row meets) for every per-row rule of the declaration."""
    rules = []
    for column in table.columns:
        name = f'"{column.name}"'
        if not column.nullable or column.name in table.key or column.name == table.partition_column:
            rules.append((column.name, "not_null", f"{name} IS NULL"))
        if column.name == table.partition_column:
            rules.append((column.name, f"partition day {day}", f"{name} <> DATE '{day.isoformat()}'"))
        if column.accepted_values:
            allowed = ", ".join(_literal(v, column) for v in column.accepted_values)
            rules.append((column.name, f"accepted_values [{allowed}]", f"{name} NOT IN ({allowed})"))
        if column.min is not None:
            rules.append((column.name, f"min {column.min}", f"{name} < {column.min}"))
        if column.max is not None:
            rules.append((column.name, f"max {column.max}", f"{name} > {column.max}"))
    return rules


def _key_problems(warehouse: Warehouse, table: RawTable, staging: str, day: date) -> list[str]:
    key = ", ".join(f'"{k}"' for k in table.key)
    shown = "+".join(table.key)
    problems = []
    repeated = warehouse.query(
        f"SELECT count(*) AS keys, coalesce(sum(n), 0) AS rows_ FROM "
        f"(SELECT count(*) AS n FROM {staging} GROUP BY {key} HAVING count(*) > 1) AS repeated"
    ).iloc[0]
    if int(repeated["keys"]):
        example = warehouse.query(f"SELECT {key} FROM {staging} GROUP BY {key} HAVING count(*) > 1 LIMIT 1").iloc[0]
        problems.append(
            f"key ({shown}), rule unique within the day: {count_rows(int(repeated['rows_']))} share "
            f"{int(repeated['keys'])} key(s), e.g. {tuple(example.tolist())!r}"
        )
    if warehouse.table_exists(table.qualified):
        joined = " AND ".join(f'staged."{k}" = stored."{k}"' for k in table.key)
        day_column = f'stored."{table.partition_column}"'
        stored = warehouse.query(
            f"SELECT count(*) AS n, min({day_column}) AS other_day FROM {staging} AS staged "
            f"JOIN {table.qualified} AS stored ON {joined} WHERE {day_column} <> DATE '{day.isoformat()}'"
        ).iloc[0]
        if int(stored["n"]):
            problems.append(
                f"key ({shown}), rule unique across days: {count_rows(int(stored['n']))} repeat a key already "
                f"stored for another day (e.g. {str(stored['other_day'])[:10]}) in {table.qualified}"
            )
    return problems


def _literal(value: object, column: Column) -> str:
    if column.dtype in NUMERIC_TYPES:
        return repr(float(value)) if column.dtype == "DOUBLE" else str(int(value))
    if column.dtype == "BOOLEAN":
        return "TRUE" if str(value).lower() in ("true", "1", "yes") else "FALSE"
    text = str(value).replace("'", "''")
    return f"'{text}'" if column.dtype == "VARCHAR" else f"CAST('{text}' AS {column.dtype})"


def _shown(value: object) -> str:
    return repr(value.item() if hasattr(value, "item") else value)
