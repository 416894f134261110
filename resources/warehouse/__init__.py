"""The warehouse: where raw partitions, predictions and audit rows are written, and marts are read.

Two implementations behind one interface: DuckDB (a local file, the default) and Postgres (``NIGHTJAR_ENV=prod``).

- ``base``: the ``Warehouse`` interface, its errors, the shared helpers, and the writes (window replace, ensure
  table, append) written once in terms of a few engine hooks;
- ``duckdb_warehouse``: ``DuckDBWarehouse`` (the file, its lock wait, the per-step ``session``);
- ``postgres_warehouse``: ``PostgresWarehouse`` (psycopg2, COPY, advisory locks).
"""

from resources.warehouse.base import (
    WAREHOUSE_POOL,
    NotInWarehouse,
    Warehouse,
    WarehouseFileMissing,
    columns_from_frame,
)
from resources.warehouse.duckdb_warehouse import DuckDBWarehouse
from resources.warehouse.postgres_warehouse import PostgresWarehouse

__all__ = [
    "WAREHOUSE_POOL",
    "DuckDBWarehouse",
    "NotInWarehouse",
    "PostgresWarehouse",
    "Warehouse",
    "WarehouseFileMissing",
    "columns_from_frame",
]
