"""The audit of staged raw days: every rule its declaration states, checked in SQL before anything is published.

Rules: not_null (declared ``not_null`` columns and key columns), partition day (the day column equals the day),
accepted_values, min / max, key unique within the day, and key not already stored on another day. Each failing
rule gives one line naming the column, the rule, how many rows and the first of them (by data row of the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from resources.source.base import as_day, count_rows
from resources.source.landing import ROW_COLUMN
from resources.source.schema import MASK, NUMERIC_TYPES, Column, RawTable
from resources.warehouse import Warehouse
from resources.warehouse.sql import date_literal, text_literal

PARTITION_RULE = "partition day"


def audit_staged(
    warehouse: Warehouse, table: RawTable, staging: str, day_column: str, days: Sequence[date]
) -> dict[date, tuple[int, list[str]]]:
    """Per day of ``days``: rows staged, and one line per broken rule (empty when the day may be published).
    ``day_column`` says which day each staged row was read for; all days are audited in one pass."""
    if not days:
        return {}
    day_of = f'"{day_column}"'
    rules = _row_rules(table, day_of)
    counts = warehouse.query(
        f"SELECT {day_of} AS day_, count(*) AS n"
        + "".join(f", count(*) FILTER (WHERE {cond}) AS r{i}" for i, (_, _, cond) in enumerate(rules))
        + f" FROM {staging} WHERE {_among(day_of, days)} GROUP BY {day_of}"
    )
    audited: dict[date, tuple[int, list[str]]] = {day: (0, []) for day in days}
    for _, row in counts.iterrows():
        day = as_day(row["day_"])
        problems = []
        for i, (column, rule, cond) in enumerate(rules):
            failing = int(row[f"r{i}"])
            if failing:
                first = warehouse.query(
                    f'SELECT {ROW_COLUMN} AS row_number, "{column}" AS value FROM {staging} '
                    f"WHERE {day_of} = {date_literal(day)} AND {cond} ORDER BY {ROW_COLUMN} LIMIT 1"
                ).iloc[0]
                named = f"{rule} {day}" if rule == PARTITION_RULE else rule
                problems.append(
                    f"column {column!r}, rule {named}: {count_rows(failing)}, "
                    f"e.g. data row {int(first['row_number'])}: {_shown(first['value'], table.column(column))}"
                )
        audited[day] = (int(row["n"]), problems)
    if table.key:
        for day, problems in _key_problems(warehouse, table, staging, day_of, days).items():
            audited[day][1].extend(problems)
    return audited


def _row_rules(table: RawTable, day_of: str) -> list[tuple[str, str, str]]:
    """(column, rule, SQL condition that a failing row meets) for every per-row rule of the declaration."""
    rules = []
    for column in table.columns:
        name = f'"{column.name}"'
        if not column.nullable or column.name in table.key or column.name == table.partition_column:
            rules.append((column.name, "not_null", f"{name} IS NULL"))
        if column.name == table.partition_column:
            rules.append((column.name, PARTITION_RULE, f"{name} <> {day_of}"))
        if column.accepted_values:
            allowed = ", ".join(_literal(v, column) for v in column.accepted_values)
            rules.append((column.name, f"accepted_values [{allowed}]", f"{name} NOT IN ({allowed})"))
        if column.min is not None:
            rules.append((column.name, f"min {column.min}", f"{name} < {column.min}"))
        if column.max is not None:
            rules.append((column.name, f"max {column.max}", f"{name} > {column.max}"))
    return rules


def _key_problems(
    warehouse: Warehouse, table: RawTable, staging: str, day_of: str, days: Sequence[date]
) -> dict[date, list[str]]:
    """Per day: keys repeated within the day, and keys already stored (or staged for an earlier day of the window)
    on another day. Only days with a problem are in the result."""
    key = ", ".join(f'"{k}"' for k in table.key)
    shown = "+".join(table.key)
    among = _among(day_of, days)
    problems: dict[date, list[str]] = {}
    repeated = warehouse.query(
        f"SELECT day_, count(*) AS keys, sum(n) AS rows_ FROM (SELECT {day_of} AS day_, count(*) AS n FROM {staging} "
        f"WHERE {among} GROUP BY {day_of}, {key} HAVING count(*) > 1) AS repeated GROUP BY day_"
    )
    for _, row in repeated.iterrows():
        day = as_day(row["day_"])
        example = warehouse.query(
            f"SELECT {key} FROM {staging} WHERE {day_of} = {date_literal(day)} GROUP BY {key} "
            "HAVING count(*) > 1 LIMIT 1"
        ).iloc[0]
        problems.setdefault(day, []).append(
            f"key ({shown}), rule unique within the day: {count_rows(int(row['rows_']))} share "
            f"{int(row['keys'])} key(s), e.g. {_key_shown(table, example.tolist())}"
        )
    repeats = f"key ({shown}), rule unique across days: {{}} repeat a key"
    # A key staged for an earlier day of this window: the later day repeats it, as if the days came one by one.
    earlier = f"other.{day_of} < staged.{day_of} AND other.{among}"
    for day, rows, other_day in _repeated_keys(warehouse, table, staging, day_of, among, staging, earlier):
        problems.setdefault(day, []).append(
            f"{repeats.format(count_rows(rows))} staged for an earlier day of this run ({other_day})"
        )
    if warehouse.table_exists(table.qualified):
        stored_day = f'other."{table.partition_column}"'
        elsewhere = f"{stored_day} <> staged.{day_of}"
        for day, rows, other_day in _repeated_keys(
            warehouse, table, staging, day_of, among, table.qualified, elsewhere, stored_day
        ):
            problems.setdefault(day, []).append(
                f"{repeats.format(count_rows(rows))} already stored for another day (e.g. {other_day}) in "
                f"{table.qualified}"
            )
    return problems


def _repeated_keys(
    warehouse: Warehouse,
    table: RawTable,
    staging: str,
    day_of: str,
    among: str,
    other: str,
    condition: str,
    other_day: str | None = None,
) -> list[tuple[date, int, str]]:
    """(staged day, rows, one other day) for each staged day of ``among`` whose keys are also in ``other`` (the
    staging table itself, or the stored table) on rows meeting ``condition``; ``other_day``: their day column."""
    joined = " AND ".join(f'staged."{k}" = other."{k}"' for k in table.key)
    found = warehouse.query(
        f"SELECT staged.{day_of} AS day_, count(*) AS n, min({other_day or f'other.{day_of}'}) AS other_day "
        f"FROM {staging} AS staged JOIN {other} AS other ON {joined} AND {condition} "
        f"WHERE staged.{among} GROUP BY staged.{day_of}"
    )
    return [(as_day(row["day_"]), int(row["n"]), str(row["other_day"])[:10]) for _, row in found.iterrows()]


def _among(day_of: str, days: Sequence[date]) -> str:
    return f"{day_of} IN (" + ", ".join(date_literal(d) for d in days) + ")"


def _literal(value: object, column: Column) -> str:
    if column.dtype in NUMERIC_TYPES:
        return repr(float(value)) if column.dtype == "DOUBLE" else str(int(value))
    if column.dtype == "BOOLEAN":
        return "TRUE" if str(value).lower() in ("true", "1", "yes") else "FALSE"
    text = text_literal(value)
    return text if column.dtype == "VARCHAR" else f"CAST({text} AS {column.dtype})"


def _shown(value: object, column: Column) -> str:
    """A failing value as messages, logs and alerts show it; a sensitive column's as ``MASK``."""
    return MASK if column.sensitive else repr(value.item() if hasattr(value, "item") else value)


def _key_shown(table: RawTable, values: list) -> str:
    """A repeated key as messages show it, sensitive parts masked."""
    return repr(tuple(MASK if table.column(k).sensitive else v for k, v in zip(table.key, values, strict=True)))
