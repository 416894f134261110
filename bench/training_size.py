"""How many rows one machine trains on: the shipped spec's pipeline fitted on growing training sets.

Training stays scikit-learn in one process whatever the engine; ``evaluation.max_training_rows`` caps what is read.
This bench says where that cap belongs. Setup (untimed): ``--days`` days of ``--rows-per-day`` ingested on DuckDB
(label delay 1 day) into one mart. Then, for each size, a fresh process reads that many rows the way the training
set does with ``max_training_rows`` (a hash sample, taken by the warehouse; the newest 2 days held out instead of
the spec's 14, as the history is a few big days) and fits the spec's pipeline
(``assets.ml.training.train``: fit on the window, score the holdout). Printed per size: seconds to read, seconds
to fit, peak memory of the process, and MB per 100,000 rows; then the rows that fit in this machine's memory at
that rate (half of it, leaving the rest to the warehouse and the OS).

    python -m bench.training_size [--sizes 250000 1000000 2000000] [--rows-per-day 250000] [--days 10] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from bench._harness import child_command, fmt, machine_load, make_root, print_table, run_measured, write_result
from bench.states import day, history_state, spec_name

MODULE = "bench.training_size"


def _child(size: int, out: str) -> None:
    """Read ``size`` rows as the training set does, then fit; timings and peak RSS to ``out``."""
    import resource

    from assets.ml.spec import load_spec
    from assets.ml.training import train
    from assets.ml.training_set import read_training_window, training_window
    from resources.settings import Settings
    from resources.warehouse import DuckDBWarehouse

    settings = Settings.from_env()
    spec = load_spec(next(Path(settings.model_specs_dir).glob("*.yaml")))
    # A few big days instead of 90 small ones: the newest 2 held out, so that every size has days to train on.
    evaluation = spec.evaluation.model_copy(update={"max_training_rows": size, "holdout_days": 2})
    spec = spec.model_copy(update={"evaluation": evaluation})
    warehouse = DuckDBWarehouse(path=str(settings.warehouse_path))
    started = time.perf_counter()
    start, end = training_window(warehouse, spec, None)
    frame = read_training_window(warehouse, spec, start, end)
    read = time.perf_counter() - started
    started = time.perf_counter()
    train(spec, frame)
    fit = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_result(out, {"rows": len(frame), "read_s": read, "fit_s": fit, "peak_mb": peak})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000, 2_000_000])
    parser.add_argument("--rows-per-day", type=int, default=250_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.out)
        return

    parent = make_root("training")
    print(f"{machine_load()}; model {spec_name()}; history {args.days} days x {args.rows_per_day:,} rows")
    try:
        state = history_state(
            parent, "history", args.rows_per_day, args.days, day(args.days - 1), NIGHTJAR_LABEL_DELAY_DAYS="1"
        )
        results = []
        for size in args.sizes:
            out = state.logs / f"train-{size}.json"
            run_measured(
                child_command(MODULE, "--child", str(size), "--out", str(out)), state.env, out.with_suffix(".log")
            )
            result = json.loads(out.read_text())
            results.append(result)
            print(
                f"  {result['rows']:,} rows: read {result['read_s']:.1f} s, fit {result['fit_s']:.1f} s, "
                f"peak {result['peak_mb']:.0f} MB",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)

    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    rows_table = []
    for result in results:
        per_100k = result["peak_mb"] / result["rows"] * 100_000
        rows_table.append(
            [
                f"{result['rows']:,}",
                fmt(result["read_s"], ".1f"),
                fmt(result["fit_s"], ".1f"),
                fmt(result["peak_mb"], ".0f"),
                fmt(per_100k, ".0f"),
            ]
        )
    print()
    print_table(
        ["training rows", "read s", "fit s", "peak MB", "MB per 100k rows"],
        rows_table,
        title=f"Training the shipped spec's pipeline ({spec_name()}) in one process",
    )
    largest = results[-1]
    per_row = largest["peak_mb"] / largest["rows"]
    fits = int(memory_mb / 2 / per_row)
    print(
        f"At the largest size's rate, half of this machine's {memory_mb / 1024:.0f} GiB holds about {fits:,} "
        f"training rows; fit time grows about linearly ({largest['fit_s'] / largest['rows'] * 1e6:.1f} s per "
        "million rows here). Set evaluation.max_training_rows below that.",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
