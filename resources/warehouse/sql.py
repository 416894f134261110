"""SQL text every engine reads the same way: quoted literals and the day-window condition.

Values enter queries as literals built here (never by hand in an asset), so quoting is written once. Column and
table names are not quoted here: they come from validated specs and the caller renders them (aliased or quoted).
"""

from datetime import date, timedelta


def text_literal(value: object) -> str:
    """``value`` as a SQL string expression: single quotes doubled, and each backslash written as ``chr(92)``
    (Spark reads a backslash in a literal as an escape, DuckDB and Postgres as itself: this reads the same on all)."""
    parts = str(value).replace("'", "''").split("\\")
    if len(parts) == 1:
        return f"'{parts[0]}'"
    return "(" + " || chr(92) || ".join(f"'{part}'" for part in parts) + ")"


def date_literal(day: date) -> str:
    """``day`` as a ``DATE 'yyyy-mm-dd'`` literal (DuckDB, Postgres and Spark SQL alike)."""
    return f"DATE '{day.isoformat()}'"


def day_window(column: str, start: date, end: date | None = None) -> str:
    """The condition "``column`` falls in the days [start, end)"; ``end`` defaults to the day after ``start``.

    A half-open range rather than ``CAST(column AS DATE) = ...`` so a timestamp column and a partition column are
    both compared without a cast, and the engines can prune partitions by it.
    """
    following = end or start + timedelta(days=1)
    return f"{column} >= {date_literal(start)} AND {column} < {date_literal(following)}"
