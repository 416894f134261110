"""What every origin of raw rows shares: the error a bad day raises, and small helpers for messages and days."""

from __future__ import annotations

from datetime import date, datetime


class SourceDataError(ValueError):
    """A day's data breaks its table's declaration; nothing of that day is published. The message names the file
    (or generator), the column, the rule and how many rows."""


def count_rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def as_day(value: date | str) -> date:
    """A partition day from a ``date``, a ``datetime`` (its calendar day) or an ISO string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)
