"""A table written by an earlier version gains the columns its declaration gained, instead of failing the write."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from resources.source.schema import Column
from resources.warehouse import DuckDBWarehouse

DAY = date(2026, 3, 1)


def test_a_declared_column_the_stored_table_lacks_is_added_and_old_rows_keep_null(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    old = [Column("id", "VARCHAR", nullable=False), Column("day", "DATE"), Column("default_rate", "DOUBLE")]
    first = pd.DataFrame({"id": ["a"], "day": [pd.Timestamp(DAY)], "default_rate": [0.1]})
    warehouse.replace_window("monitoring.q", "day", DAY, DAY + timedelta(days=1), [first], old)

    new = [Column("id", "VARCHAR", nullable=False), Column("day", "DATE"), Column("positive_rate", "DOUBLE")]
    later = DAY + timedelta(days=1)
    second = pd.DataFrame({"id": ["b"], "day": [pd.Timestamp(later)], "positive_rate": [0.2]})
    assert warehouse.replace_window("monitoring.q", "day", later, later + timedelta(days=1), [second], new) == 1

    rows = warehouse.query("SELECT id, default_rate, positive_rate FROM monitoring.q ORDER BY id")
    assert rows["id"].tolist() == ["a", "b"]
    assert rows["default_rate"].tolist()[0] == 0.1 and pd.isna(rows["default_rate"].tolist()[1])
    assert pd.isna(rows["positive_rate"].tolist()[0]) and rows["positive_rate"].tolist()[1] == 0.2
