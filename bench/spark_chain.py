"""The nightly chain of one day on Spark (a local Spark Connect server on this machine) against DuckDB, side by side.

For each rows/day value: ``--history-days`` stored days and the champion (untimed, bench/states.py), then the
nightly chain of the next day in a fresh process on each engine (bench/nightjar_chain.py: the ``nightly`` job,
then the drift asset), in-process executor. Printed: seconds per stage and in all, the peak memory of the Dagster
process (the Spark server's JVM is another process, sized by NIGHTJAR_SPARK_DRIVER_MEMORY), and Spark / DuckDB.
The Spark catalog is emptied before each size; DuckDB's state is its own folder.

    python -m bench.spark_chain [--rows 1000000 10000000] [--history-days 1] [--driver-memory 8g] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import socket

from bench._harness import fmt, machine_load, make_root, print_table, ratio
from bench.chain import STAGES, measure_nightjar, nightjar_stages, nightjar_total
from bench.states import day, ensure_champion, history_state, spec_name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _empty_catalog(remote: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(remote).create()
    for (name,) in spark.sql("SHOW DATABASES").collect():
        if name != "default":
            spark.sql(f"DROP DATABASE {name} CASCADE")
    spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--history-days", type=int, default=1)
    parser.add_argument("--driver-memory", default="8g", help="the local server's driver (all of Spark, local mode)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from resources.spark_server import LocalSparkServer

    parent = make_root("spark")
    model = spec_name()
    champion = ensure_champion(parent / "champion")
    server = LocalSparkServer(folder=parent / "spark", port=_free_port(), driver_memory=args.driver_memory)
    print(f"{machine_load()}; Spark Connect server at {server.start()} (driver {args.driver_memory}, local[*])")
    the_day = day(args.history_days)
    results = {}
    try:
        for rows in args.rows:
            for engine in ("duckdb", "spark"):
                extra = {}
                if engine == "spark":
                    _empty_catalog(server.remote)
                    extra = {"NIGHTJAR_ENGINE": "spark", "NIGHTJAR_SPARK_REMOTE": server.remote}
                state = history_state(parent, f"{engine}-{rows}", rows, args.history_days, the_day, **extra)
                state.seal(champion)
                measured = measure_nightjar(state, the_day, model, tag=f"-{engine}")
                results[(rows, engine)] = measured
                print(
                    f"  {engine} at {rows:,} rows/day: {nightjar_total(measured):.1f} s, "
                    f"peak {measured.peak_mb():.0f} MB (Dagster process)",
                    flush=True,
                )
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)

    for rows in args.rows:
        duck, spark = results[(rows, "duckdb")], results[(rows, "spark")]
        duck_stages, spark_stages = nightjar_stages(duck), nightjar_stages(spark)
        table = [
            [stage, fmt(d[0]), fmt(s[0]), ratio(s[0], d[0]), fmt(d[1], ".0f"), fmt(s[1], ".0f")]
            for stage, d, s in zip(STAGES, duck_stages, spark_stages, strict=True)
        ]
        total_d, total_s = nightjar_total(duck), nightjar_total(spark)
        table.append(
            [
                "total",
                fmt(total_d),
                fmt(total_s),
                ratio(total_s, total_d),
                fmt(duck.peak_mb(), ".0f"),
                fmt(spark.peak_mb(), ".0f"),
            ]
        )
        print()
        print_table(
            ["stage", "DuckDB s", "Spark s", "Spark/DuckDB", "DuckDB peak MB", "Spark peak MB"],
            table,
            title=f"The nightly chain at {rows:,} rows/day (one day scored, {args.history_days} stored before it)",
        )
        print(f"Spark: {rows / total_s:,.0f} rows/s through the whole chain on this machine's cores")


if __name__ == "__main__":
    main()
