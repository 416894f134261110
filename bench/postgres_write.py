"""The Postgres warehouse's bulk write (resources/warehouse/postgres_warehouse.py), before and after its CSV for
COPY was formatted by pyarrow instead of pandas' ``DataFrame.to_csv``.

The frame is shaped like ``predictions.<model>_inputs`` (what scoring writes for replay): an id (VARCHAR), the
day (TIMESTAMP), 14 float64 features, 4 string features (VARCHAR, a tenth NULL, some with commas and quotes) and
``scored_at`` (TIMESTAMP to the microsecond). Two figures, each the minimum of ``--repeat`` runs, the two routes
interleaved so that a busy neighbour weighs on both alike:

  format      the CSV text alone: ``to_csv`` (before) / ``_arrow_csv`` read whole (after; in a write, COPY
              reads it slice by slice, the server parsing one while pyarrow formats the next)
  write       ``Warehouse.replace_window`` of the whole frame end to end (one transaction: delete the window,
              COPY, commit) against a real Postgres, through the warehouse's own code on either route

Both tables are then compared cell by cell (an md5 over every row's text in Postgres): the routes must store the
same values. Postgres: the one NIGHTJAR_PG_HOST / _PORT / _USER / _PASSWORD / _DBNAME name, else a throwaway
server started as the tests start theirs (tests/postgres_server.py; needs Debian's `postgresql` binaries).

    python -m bench.postgres_write [--rows 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from contextlib import contextmanager, nullcontext
from datetime import date, timedelta

import numpy as np
import pandas as pd

from bench._harness import machine_load, print_table, report_ratio
from resources.source.schema import Column
from resources.warehouse import PostgresWarehouse, postgres_warehouse

DAY = date(2026, 3, 1)
NEXT = DAY + timedelta(days=1)
FLOATS = [f"num_{i:02d}" for i in range(14)]
STRINGS = ["region", "channel", "product", "employment"]
COLUMNS = [
    Column("id", "VARCHAR", nullable=False),
    Column("day", "TIMESTAMP"),
    *(Column(name, "DOUBLE") for name in FLOATS),
    *(Column(name, "VARCHAR") for name in STRINGS),
    Column("scored_at", "TIMESTAMP"),
]
_PG_NAMES = {"VARCHAR": "character varying", "TIMESTAMP": "timestamp without time zone", "DOUBLE": "double precision"}


def inputs_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"id": [f"app-{i:09d}" for i in range(rows)], "day": pd.Timestamp(DAY)}
    for i, name in enumerate(FLOATS):
        values = rng.lognormal(mean=i % 5, sigma=1.5, size=rows) * rng.choice([-1.0, 1.0], size=rows)
        values[rng.random(rows) < 0.05] = np.nan
        data[name] = values
    choices = np.array(["north", "south, east", 'the "west"', "centre", "ünïcødé", ""], dtype=object)
    for name in STRINGS:
        values = rng.choice(choices, size=rows)
        values[rng.random(rows) < 0.1] = None
        data[name] = values
    data["scored_at"] = pd.Timestamp("2026-03-02 04:05:06.789012")
    return pd.DataFrame(data)


@contextmanager
def pandas_route():
    """The route before: every frame formatted by ``DataFrame.to_csv`` (the warehouse's fallback)."""
    fast = postgres_warehouse._arrow_csv
    postgres_warehouse._arrow_csv = lambda chunk, targets: None
    try:
        yield
    finally:
        postgres_warehouse._arrow_csv = fast


def _format_before(frame: pd.DataFrame) -> None:
    frame.to_csv(io.StringIO(), index=False, header=False, na_rep="\\N")


def _format_after(frame: pd.DataFrame, targets: dict[str, str]) -> None:
    text = postgres_warehouse._arrow_csv(frame, targets)
    assert text is not None, "the frame did not take the arrow route"
    text.read()  # formatted slice by slice as COPY reads it: here all at once


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _server():
    if os.environ.get("NIGHTJAR_PG_HOST"):
        return nullcontext(None)
    from tests.postgres_server import running_postgres

    return running_postgres(["bench"])


def _warehouse(server) -> PostgresWarehouse:
    if server is None:
        env = os.environ
        return PostgresWarehouse(
            host=env["NIGHTJAR_PG_HOST"],
            port=int(env.get("NIGHTJAR_PG_PORT", "5432")),
            user=env["NIGHTJAR_PG_USER"],
            password=env["NIGHTJAR_PG_PASSWORD"],
            dbname=env["NIGHTJAR_PG_DBNAME"],
        )
    return PostgresWarehouse(
        host=server.host, port=server.port, user=server.user, password=server.password, dbname="bench"
    )


def _digest(warehouse: PostgresWarehouse, table: str) -> str:
    frame = warehouse.query(f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) AS digest FROM {table} AS t")
    return str(frame["digest"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    frame = inputs_frame(args.rows)
    targets = {c.name: _PG_NAMES[c.dtype] for c in COLUMNS}  # as information_schema names them
    print(f"{args.rows:,} rows x {len(COLUMNS)} columns (inputs-like), min of {args.repeat}; {machine_load()}")

    before, after = [], []
    for _ in range(args.repeat):
        before.append(_seconds(lambda: _format_before(frame)))
        after.append(_seconds(lambda: _format_after(frame, targets)))

    write_before, write_after = [], []
    with _server() as server:
        warehouse = _warehouse(server)
        for _ in range(args.repeat):
            with pandas_route():
                write_before.append(
                    _seconds(lambda: warehouse.replace_window("bench.before", "day", DAY, NEXT, [frame], COLUMNS))
                )
            write_after.append(
                _seconds(lambda: warehouse.replace_window("bench.after", "day", DAY, NEXT, [frame], COLUMNS))
            )
        same = _digest(warehouse, "bench.before") == _digest(warehouse, "bench.after")
        for table in ("bench.before", "bench.after"):
            warehouse.drop_table(table)

    rows = [
        ["format (CSV text)", f"{min(before):.2f}", f"{min(after):.2f}", f"{min(after) / min(before):.2f}"],
        [
            "write (replace_window)",
            f"{min(write_before):.2f}",
            f"{min(write_after):.2f}",
            f"{min(write_after) / min(write_before):.2f}",
        ],
    ]
    print_table(["step", "before s (to_csv)", "after s (pyarrow)", "after / before"], rows)
    print(f"stored values identical on both routes: {same}")
    report_ratio(
        f"postgres write {args.rows:,} inputs-like rows, pyarrow / to_csv route", min(write_after) / min(write_before)
    )
    if not same:
        raise SystemExit("the two routes stored different values")


if __name__ == "__main__":
    main()
