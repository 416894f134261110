"""The warehouse: where raw partitions, predictions and audit rows are written, and marts are read.

Three implementations behind one interface, chosen by ``NIGHTJAR_ENGINE``: DuckDB (a local file, the default),
Postgres (the default of ``NIGHTJAR_ENV=prod``) and Spark (a Spark Connect server).

- ``base``: the ``Warehouse`` interface, its errors, the shared helpers, and the writes (window replace, ensure
  table, append) written once in terms of a few engine hooks;
- ``duckdb_warehouse``: ``DuckDBWarehouse`` (the file, its lock wait, the per-step ``session``);
- ``postgres_warehouse``: ``PostgresWarehouse`` (psycopg2, COPY, advisory locks);
- ``spark_warehouse``: ``SparkWarehouse`` (day partitions overwritten, scoring with ``mapInPandas``).
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
from resources.warehouse.spark_warehouse import SparkWarehouse

__all__ = [
    "WAREHOUSE_POOL",
    "DuckDBWarehouse",
    "NotInWarehouse",
    "PostgresWarehouse",
    "SparkWarehouse",
    "Warehouse",
    "WarehouseFileMissing",
    "columns_from_frame",
]
