"""What the drift check costs as partitions grow, against plain Evidently on the full partition.

For each current-partition size (reference: 20k rows, 15 features, a known shift in 3 of them) and in a fresh
process per measurement (so that peak RSS, from ``resource.getrusage``, belongs to that measurement alone):

  (a) nightjar   the 20k rows whose id hashes lowest (DuckDB, as ``sample_scored_day`` asks the warehouse)
                 + run_drift (one Evidently report incl. the score) + its stored report
  (b) evidently  DataDriftPreset over the features of the full partition, default methods, + HTML

Both read the drifted columns from Evidently's typed results (each ValueDrift's drift test).

Times exclude imports (``import evidently`` alone is ~3.5 s) and building the synthetic data. "base MB" is the
process's RSS after imports and data, "peak MB" its peak RSS during the measured step (the high-water mark is reset
through /proc/self/clear_refs before the step, so that building the data does not mask the step's own peak), and
"extra MB" the difference: what the check itself needs on top of holding the partition.

    python -m bench.drift_bench [--rows 10000 100000 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench._harness import report_ratio

REFERENCE_ROWS = 20_000
SAMPLE_ROWS = 20_000  # Monitoring.sample_rows default
THRESHOLD = 0.1  # Monitoring.column_drift_threshold default
NUMERIC = [f"num_{i:02d}" for i in range(12)]
CATEGORICAL = ["region", "channel", "product"]
FEATURES = NUMERIC + CATEGORICAL
SCORE = "score"
SHIFTED_NUMERIC = {"num_00": 0.5, "num_01": 0.3}  # shift in reference standard deviations
SHIFTED_CATEGORICAL = "channel"
EXPECTED_DRIFT = ["num_00", "num_01", "channel"]
CATEGORIES = {
    "region": (["north", "south", "east", "west", "centre"], [0.3, 0.25, 0.2, 0.15, 0.1]),
    "channel": (["web", "branch", "phone", "partner"], [0.5, 0.25, 0.15, 0.1]),
    "product": ([f"p{i}" for i in range(12)], None),
}
SHIFTED_CHANNEL_MIX = [0.3, 0.3, 0.15, 0.25]
KINDS = ("nightjar", "evidently")


def synthetic(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Numeric columns of varied location/scale/shape, string categoricals, an id and a score."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {"id": np.arange(seed * 100_000_000, seed * 100_000_000 + rows, dtype=np.int64)}
    for i, name in enumerate(NUMERIC):
        scale = 1.0 + i
        shift = SHIFTED_NUMERIC.get(name, 0.0) * scale if shifted else 0.0
        if i % 3 == 2:  # skewed, like amounts
            data[name] = rng.lognormal(mean=np.log(scale), sigma=0.5, size=rows) + shift
        else:
            data[name] = rng.normal(10.0 * i + shift, scale, rows)
    for name, (values, mix) in CATEGORIES.items():
        p = SHIFTED_CHANNEL_MIX if shifted and name == SHIFTED_CATEGORICAL else mix
        data[name] = rng.choice(np.array(values, dtype=object), rows, p=p)
    data[SCORE] = rng.beta(2, 8, rows)
    return pd.DataFrame(data)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _reset_peak() -> None:
    """Set the peak RSS back to the current RSS (Linux >= 4.0); ru_maxrss follows."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _nightjar(reference: pd.DataFrame, current: pd.DataFrame, workdir: Path) -> list[str]:
    import duckdb

    from assets.monitoring.drift import run_drift

    with duckdb.connect() as con:
        con.register("scored_day", current)
        sample = con.execute(
            "SELECT * FROM scored_day ORDER BY md5(CAST(id AS VARCHAR)), id LIMIT ?", [SAMPLE_ROWS]
        ).fetch_df()
    report = workdir / "nightjar.json.gz"
    result = run_drift(reference, sample, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, report, partition_rows=len(current))
    return result.drifted_columns


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, workdir: Path) -> list[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    preset = DataDriftPreset()
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[FEATURES], data_definition=definition),
        Dataset.from_pandas(reference[FEATURES], data_definition=definition),
    )
    snapshot.save_html(str(workdir / "evidently.html"))
    drifted = []
    for metric in preset.list_metrics(snapshot.context):
        result = snapshot.metric_results[metric.metric_id]
        if isinstance(metric, ValueDrift) and any(test.status == "FAIL" for test in result.tests):
            drifted.append(metric.column)
    return drifted


def measure(kind: str, rows: int) -> dict[str, object]:
    """One measurement; runs in a fresh process."""
    import warnings

    warnings.simplefilter("ignore")  # Evidently's and sklearn's deprecation noise
    step = {"nightjar": _nightjar, "evidently": _evidently}[kind]
    import duckdb  # noqa: F401  (import cost is not the check's cost)
    import evidently  # noqa: F401

    reference = synthetic(REFERENCE_ROWS, seed=1, shifted=False)
    current = synthetic(rows, seed=2, shifted=True)
    gc.collect()
    _reset_peak()
    base = _peak_mb()
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        drifted = step(reference, current, Path(workdir))
        seconds = time.perf_counter() - started
    return {"kind": kind, "rows": rows, "seconds": seconds, "peak_mb": _peak_mb(), "base_mb": base, "drifted": drifted}


def measure_fresh(kind: str, rows: int) -> dict[str, object]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=1) as pool:
        return pool.apply(measure, (kind, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=1, help="measurements per cell; the median is shown")
    args = parser.parse_args()

    print(f"reference {REFERENCE_ROWS} rows, {len(FEATURES)} features, sample {SAMPLE_ROWS}, expected {EXPECTED_DRIFT}")
    print("(a) nightjar: sample + run_drift + stored report   (b) evidently: DataDriftPreset, full partition + HTML")
    header = (
        f"{'rows':>9} | {'time s a':>8} {'b':>6} {'a/b':>5} | {'peak MB a':>9} {'b':>5} {'a/b':>5} | "
        f"{'extra MB a':>10} {'b':>5} | {'base MB':>7} | drifted (a = b)"
    )
    print(header)
    print("-" * len(header))
    all_agree = True
    for rows in args.rows:
        cells: dict[str, dict[str, object]] = {}
        for kind in KINDS:
            runs = [measure_fresh(kind, rows) for _ in range(args.repeat)]
            cells[kind] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                "extra_mb": statistics.median(r["peak_mb"] - r["base_mb"] for r in runs),
                "base_mb": statistics.median(r["base_mb"] for r in runs),
                "drifted": runs[0]["drifted"],
            }
        a, b = (cells[k] for k in KINDS)
        drifted = {k: sorted(cells[k]["drifted"]) for k in KINDS}
        agree = drifted["nightjar"] == drifted["evidently"] == sorted(EXPECTED_DRIFT)
        all_agree &= agree
        found = ", ".join(drifted["nightjar"]) if agree else f"DISAGREE {drifted}"
        print(
            f"{rows:>9} | {a['seconds']:>8.2f} {b['seconds']:>6.2f} {a['seconds'] / b['seconds']:>5.2f} | "
            f"{a['peak_mb']:>9.0f} {b['peak_mb']:>5.0f} {a['peak_mb'] / b['peak_mb']:>5.2f} | "
            f"{a['extra_mb']:>10.0f} {b['extra_mb']:>5.0f} | {a['base_mb']:>7.0f} | {found}",
            flush=True,
        )
        report_ratio(
            f"drift check {rows:,} rows, nightjar (sample + run_drift) / Evidently on the full partition",
            a["seconds"] / b["seconds"],
        )
    if not all_agree:
        raise SystemExit("nightjar and Evidently did not find the same drifted columns")


if __name__ == "__main__":
    main()
