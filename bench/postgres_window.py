"""A nightly day on Postgres after many stored days: the window's rows found by an index on the window column
(``PostgresWarehouse._index_window``, made at a table's first window write) vs a scan of every stored day (the
warehouse before it: no index).

A table shaped like ``predictions.<model>_inputs`` (bench/postgres_write.py's frame) holds ``--days`` days of
``--rows`` rows (stored untimed). Then, each the minimum of ``--repeat`` runs, the two routes interleaved:

  replace     ``Warehouse.replace_window`` of one stored day (delete its rows, COPY the new ones, commit)
  read        ``Warehouse.read_window`` of one stored day

on two copies of the table, one with the index and one without. Also printed: the index's size beside the
table's, and what making it on the full table cost once. Postgres as in bench/postgres_write.py.

    python -m bench.postgres_window [--days 60] [--rows 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import pandas as pd

from bench._harness import machine_load, print_table, report_ratio
from bench.postgres_write import COLUMNS, DAY, _seconds, _server, _warehouse, inputs_frame
from resources.warehouse import PostgresWarehouse


class _Unindexed(PostgresWarehouse):
    """The warehouse before the index: window writes leave the table as it is."""

    def _index_window(self, cur, table: str, date_column: str) -> None:
        return None


def _stored(warehouse: PostgresWarehouse, table: str, days: int, rows: int) -> None:
    for first in range(0, days, 10):  # ten days per write: bounded memory
        frames = []
        for offset in range(first, min(first + 10, days)):
            frame = inputs_frame(rows, seed=offset)
            frame["id"] = frame["id"] + f"-{offset}"
            frame["day"] = pd.Timestamp(DAY + timedelta(days=offset))
            frames.append(frame)
        start = DAY + timedelta(days=first)
        warehouse.replace_window(table, "day", start, start + timedelta(days=len(frames)), frames, COLUMNS)


def _size(warehouse: PostgresWarehouse, relation: str) -> float:
    frame = warehouse.query(f"SELECT pg_relation_size(to_regclass('{relation}')) AS bytes")
    return float(frame["bytes"].iloc[0] or 0) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.days} stored days x {args.rows:,} rows (inputs-like), min of {args.repeat}; {machine_load()}")

    with _server() as server:
        indexed = _warehouse(server)
        unindexed = _Unindexed(
            host=indexed.host, port=indexed.port, user=indexed.user, password=indexed.password, dbname=indexed.dbname
        )
        _stored(unindexed, "bench.unindexed", args.days, args.rows)
        _stored(unindexed, "bench.indexed", args.days, args.rows)
        made = _seconds(lambda: indexed.replace_window("bench.indexed", "day", DAY, DAY, [], COLUMNS))
        with indexed._transaction() as cur:  # the statistics autovacuum would gather soon after a load
            cur.execute("ANALYZE bench.indexed; ANALYZE bench.unindexed")
        day = DAY + timedelta(days=args.days // 2)
        new_day = inputs_frame(args.rows, seed=10_000).assign(day=pd.Timestamp(day))
        timings: dict[str, list[float]] = {
            "replace_before": [],
            "replace_after": [],
            "read_before": [],
            "read_after": [],
        }
        end = day + timedelta(days=1)
        for _ in range(args.repeat):
            for route, warehouse, table in (
                ("before", unindexed, "bench.unindexed"),
                ("after", indexed, "bench.indexed"),
            ):
                started = time.perf_counter()
                warehouse.replace_window(table, "day", day, end, [new_day], COLUMNS)
                timings[f"replace_{route}"].append(time.perf_counter() - started)
                started = time.perf_counter()
                warehouse.read_window(table, "day", day, end)
                timings[f"read_{route}"].append(time.perf_counter() - started)
        read = indexed.read_window("bench.indexed", "day", day, day + timedelta(days=1))
        table_mb, index_mb = _size(indexed, "bench.indexed"), _size(indexed, "bench.indexed__day")
        for table in ("bench.indexed", "bench.unindexed"):
            indexed.drop_table(table)

    if len(read) != args.rows:
        raise SystemExit(f"the indexed read found {len(read)} rows of the day, not {args.rows}")
    rows = []
    for step in ("replace", "read"):
        before, after = min(timings[f"{step}_before"]), min(timings[f"{step}_after"])
        rows.append([f"{step} one day", f"{before:.3f}", f"{after:.3f}", f"{after / before:.2f}"])
    print_table(["step", "before s (no index)", "after s (index)", "after / before"], rows)
    print(f"index on the day column {index_mb:.1f} MB beside the table's {table_mb:.1f} MB; made once in {made:.2f} s")
    for step in ("replace", "read"):
        report_ratio(
            f"postgres {step} of one day after {args.days} stored days x {args.rows:,} rows, index / no index",
            min(timings[f"{step}_after"]) / min(timings[f"{step}_before"]),
        )


if __name__ == "__main__":
    main()
