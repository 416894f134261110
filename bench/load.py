"""Loading the definitions against importing Dagster and dagster-dbt alone: what every `dagster dev` start, code
server reload and multiprocess step process pays before any work.

Each measurement is a fresh interpreter (the sides interleaved, so a busy neighbour weighs on both alike):

  nightjar   python -c "import definitions"   (the repo's Definitions, built from the environment)
  baseline   python -c "import dagster, dagster_dbt"

It also names any heavy library the definitions import at load (pandas, sklearn, mlflow, evidently: they belong
inside the functions that use them; tests/test_definitions.py fails on them too). Goal: nightjar / baseline <= 1.3.

    python -m bench.load [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from bench._harness import PROJECT_ROOT, PYTHON, machine_load, print_table, report_ratio

HEAVY = ("pandas", "sklearn", "mlflow", "evidently")
NIGHTJAR = "import definitions"
BASELINE = "import dagster, dagster_dbt"


def _seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], cwd=PROJECT_ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def _heavy_at_load() -> list[str]:
    code = f"import sys, definitions; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([PYTHON, "-c", code], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    return done.stdout.split()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per side (median shown)")
    args = parser.parse_args(argv)
    print(f"[loading the definitions: {args.repeat} fresh interpreters per side; {machine_load()}]", flush=True)
    _seconds(NIGHTJAR)  # warm the file cache and __pycache__ once, untimed
    times: dict[str, list[float]] = {NIGHTJAR: [], BASELINE: []}
    for _ in range(args.repeat):
        for code in (NIGHTJAR, BASELINE):
            times[code].append(_seconds(code))
    medians = {code: statistics.median(values) for code, values in times.items()}
    print_table(
        ["process start -> imported", "median s", "all"],
        [[f'python -c "{code}"', f"{medians[code]:.2f}", ", ".join(f"{v:.2f}" for v in times[code])] for code in times],
        title="== loading the definitions ==",
    )
    heavy = _heavy_at_load()
    report_ratio(
        "definitions load, import definitions / import dagster, dagster_dbt",
        medians[NIGHTJAR] / medians[BASELINE],
        "<= 1.3",
        note=f"heavy libraries imported at load: {', '.join(heavy) or 'none'}",
    )


if __name__ == "__main__":
    main()
