"""The interface every data source implements, and the pandas dtypes its chunks carry.

Sources are Dagster resources, so they are pydantic models: abstract methods raise ``NotImplementedError``
instead of using ``abc.ABC``, whose metaclass clashes with pydantic's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import dagster as dg
import pandas as pd

from resources.source.schema import Column

# Warehouse type -> pandas dtype of every chunk a source yields. DATE and TIMESTAMP are both tz-naive
# datetime64[ns] (DATE at midnight; TIMESTAMP in UTC). An INTEGER column that holds nulls is "Int64" instead.
PANDAS_DTYPES = {
    "VARCHAR": "object",
    "DATE": "datetime64[ns]",
    "TIMESTAMP": "datetime64[ns]",
    "DOUBLE": "float64",
    "INTEGER": "int64",
    "BOOLEAN": "bool",
}


def pandas_dtype(column: Column) -> str:
    return PANDAS_DTYPES[column.dtype]


def as_day(value: date | str) -> date:
    """A partition day from a ``date``, a ``datetime`` (its calendar day) or an ISO string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


class SourceDataError(ValueError):
    """The source's data for a day breaks the raw tables' contract; nothing of that day should be written."""


class DataSource(dg.ConfigurableResource):
    """Where raw rows come from, one partition day at a time, in chunks of bounded size.

    Every chunk has exactly the table's ``column_names`` in order, with the dtypes of ``PANDAS_DTYPES``.
    A day with no rows yields no chunks.
    """

    def applications(self, day: date) -> Iterator[pd.DataFrame]:
        """The applications made on ``day`` (``application_date == day``)."""
        raise NotImplementedError

    def outcomes(self, day: date) -> Iterator[pd.DataFrame]:
        """The outcomes that became known on ``day`` (``outcome_date == day``), whatever day the loan was applied."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line naming the source and its settings, for run metadata and logs."""
        raise NotImplementedError
