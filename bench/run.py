"""`make bench`: every benchmark in sequence, each as its own subprocess, its output printed as it comes.

    python -m bench.run            data_half (2,000 and 1,000,000 rows/day), model (1,000,000 rows), drift_bench
                                   (10k, 100k, 1M rows): about 8-10 minutes on a quiet 2-core machine
    python -m bench.run --quick    small sizes only (about 4 minutes)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench._harness import PROJECT_ROOT, machine_load

FULL = [
    ["bench.data_half", "--rows", "2000", "1000000", "--multiprocess-rows", "2000"],
    ["bench.model", "--rows", "1000000", "--repeat", "3"],
    ["bench.drift_bench", "--rows", "10000", "100000", "1000000"],
]
QUICK = [
    ["bench.data_half", "--rows", "2000", "--multiprocess-rows", "2000"],
    ["bench.model", "--rows", "20000"],
    ["bench.drift_bench", "--rows", "10000"],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args(argv)

    failed = []
    started = time.time()
    for module, *rest in QUICK if args.quick else FULL:
        command = [sys.executable, "-m", module, *rest]
        print(f"\n######## {' '.join(['python', '-m', module, *rest])}   [{machine_load()}]\n", flush=True)
        began = time.time()
        code = subprocess.run(command, cwd=PROJECT_ROOT).returncode
        print(f"######## {module}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.time() - began:.0f} s", flush=True)
        if code != 0:
            failed.append(module)
    print(f"\nall benchmarks: {time.time() - started:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
