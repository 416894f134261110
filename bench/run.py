"""`make bench`: every benchmark in sequence, each as its own subprocess, its output printed as it comes, then every
ratio next to its goal.

    python -m bench.run            chain (2,000 and 1,000,000 rows/day), history (10 / 100 / 365 days, with the
                                   365-day backfill), data_half, model (1,000,000 rows), drift_bench (10k-1M rows),
                                   load (the definitions against import dagster, dagster_dbt)
    python -m bench.run --quick    small sizes only: chain at 2,000 rows, history 10 / 30 days (30-day backfill), ...
    python -m bench.run --update-readme   also rewrite the results table in bench/README.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._harness import PROJECT_ROOT, RATIOS_FILE_ENV, load_average, machine, machine_load

# Benchmarks that need a trained champion share one (built by the first, untimed): "--champion" is added to them.
NEEDS_CHAMPION = ("bench.chain", "bench.history")
FULL = [
    ["bench.chain", "--rows", "2000", "1000000", "--multiprocess-rows", "2000", "--repeat", "3"],
    ["bench.history", "--days", "10", "100", "365", "--repeat", "3"],
    ["bench.data_half", "--rows", "2000", "1000000", "--multiprocess-rows", "2000"],
    ["bench.model", "--rows", "1000000", "--repeat", "3"],
    ["bench.drift_bench", "--rows", "10000", "100000", "1000000"],
    ["bench.load", "--repeat", "7"],
]
QUICK = [
    ["bench.chain", "--rows", "2000", "--multiprocess-rows", "2000"],
    ["bench.history", "--days", "10", "30", "--repeat", "2"],
    ["bench.data_half", "--rows", "2000", "--multiprocess-rows", "0"],
    ["bench.model", "--rows", "20000"],
    ["bench.drift_bench", "--rows", "10000"],
    ["bench.load", "--repeat", "5"],
]
README = PROJECT_ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the results table in bench/README.md")
    args = parser.parse_args(argv)

    shared = Path(tempfile.mkdtemp(prefix="nightjar-bench-run-"))
    ratios_file = shared / "ratios.jsonl"
    env = {**os.environ, RATIOS_FILE_ENV: str(ratios_file)}
    failed = []
    started = time.time()
    loads = [load_average()]
    try:
        for module, *rest in QUICK if args.quick else FULL:
            if module in NEEDS_CHAMPION:
                rest = [*rest, "--champion", str(shared / "champion")]
            command = [sys.executable, "-m", module, *rest]
            print(f"\n######## {' '.join(['python', '-m', module, *rest])}   [{machine_load()}]\n", flush=True)
            began = time.time()
            code = subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode
            loads.append(load_average())
            print(
                f"######## {module}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.time() - began:.0f} s",
                flush=True,
            )
            if code != 0:
                failed.append(module)
        ratios = [json.loads(line) for line in ratios_file.read_text().splitlines()] if ratios_file.exists() else []
    finally:
        shutil.rmtree(shared, ignore_errors=True)

    seconds = time.time() - started
    print(f"\nall benchmarks: {seconds:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    summary = summarize(ratios, args.quick, loads, seconds)
    print("\n" + summary)
    if args.update_readme:
        update_readme(summary)
        print(f"(results table written to {README.relative_to(PROJECT_ROOT)})")
    return 1 if failed else 0


def summarize(ratios: list[dict], quick: bool, loads: list[tuple[float, float, float]], seconds: float) -> str:
    """The ratios as a markdown table, under the date, the machine and the load averages of the run."""
    one = [load[0] for load in loads]
    lines = [
        f"`python -m bench.run{' --quick' if quick else ''}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{machine()}; load average (1 min, /proc/loadavg) {min(one):.1f}-{max(one):.1f} across the run "
        f"({', '.join(f'{v:.1f}' for v in one)} at the start and after each benchmark); {seconds / 60:.0f} min in all.",
        "",
        "| ratio | value | goal | |",
        "|---|---:|---|---|",
    ]
    for r in ratios:
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        verdict = "" if r["met"] is None else ("met" if r["met"] else "**not met**")
        lines.append(f"| {r['name'].strip()} | {value} | {r['goal'] or 'none set'} | {verdict} |")
    return "\n".join(lines)


def update_readme(summary: str) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README}: no {BEGIN} ... {END} block to replace")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{summary}\n{END}{tail}")


if __name__ == "__main__":
    raise SystemExit(main())
