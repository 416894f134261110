"""Monitoring many days: one run over the range (single-run backfill) against one run per day, as before.

Setup (untimed, one process): ``--history-days`` days of ``--rows`` ingested from the generator in one range run,
the model trained (champion), and the last ``--days`` of them scored by one nightly range run. Then, timed in the
same process on the same instance: drift of those days as ONE run of ``monitor_<model>`` with the range tags, and
the same days again one run each (what a schedule or a daemon-less backfill did). Printed: seconds in all and per
day for each, the ratio, and both extrapolated to the 275 days of issue 19 (goal: under 2 minutes); and the size of
the drift reports stored (goal for drift and quality together: under 0.2 MB per model-day); and, the data being
ordinary days (the generator without drift), how many days each check failed with the spec's defaults: false
alarms (goal: fewer than 1 in 10 days).

    python -m bench.monitoring_range [--days 30] [--history-days 60] [--rows 1000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from bench._harness import child_command, fmt, machine_load, make_root, print_table, run_measured, write_result
from bench.states import LABEL_DELAY_DAYS, bench_env, prepare_instance, spec_name

MODULE = "bench.monitoring_range"
FIRST_DAY = date(2025, 1, 1)


def _child(days: int, history_days: int, out: str) -> None:
    import dagster as dg

    from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
    from definitions import build_definitions
    from resources.settings import Settings

    settings = Settings.from_env()
    defs = build_definitions(settings)
    model = spec_name()
    last = FIRST_DAY + timedelta(days=history_days - 1)
    scored = last - timedelta(days=days - 1)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

    def run(job: str, first: date, end: date, **kwargs) -> float:
        return run_with_result(job, first, end, **kwargs)[0]

    def run_with_result(job: str, first: date, end: date, **kwargs):
        tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: end.isoformat()}
        started = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags=tags, run_config=quiet, raise_on_error=False, **kwargs
        )
        if not result.success:
            raise SystemExit(f"{job} {first}..{end} failed (run {result.run_id})")
        return time.perf_counter() - started, result

    def failed_days(result) -> dict[str, list[int]]:
        """Per check of a range run: [days failed, days judged] (check_results.combined_days)."""
        return {
            e.check_name: [int(e.metadata["days_failed"].value), int(e.metadata["days"].value)]
            for e in result.get_asset_check_evaluations()
            if "days" in e.metadata and "days_failed" in e.metadata
        }

    drift = [dg.AssetKey([model, "drift"])]
    quality = [dg.AssetKey([model, "quality"])]
    with dg.DagsterInstance.get() as instance:
        run("ingest", FIRST_DAY, last)
        started = time.perf_counter()
        result = defs.resolve_job_def(f"train_{model}").execute_in_process(instance=instance, run_config=quiet)
        assert result.success, "training failed"
        train_s = time.perf_counter() - started
        run("nightly", scored, last)
        one_run, drift_result = run_with_result(f"monitor_{model}", scored, last, asset_selection=drift)
        labeled_last = last - timedelta(days=LABEL_DELAY_DAYS)
        quality_s, quality_result = run_with_result(f"monitor_{model}", scored, labeled_last, asset_selection=quality)
        per_day = [
            run(f"monitor_{model}", scored + timedelta(days=i), scored + timedelta(days=i), asset_selection=drift)
            for i in range(days)
        ]
    stored = [f.stat().st_size for f in (settings.reports_dir / model / "drift").glob("*.json.gz")]
    write_result(
        out,
        {
            "days": days,
            "one_run_s": one_run,
            "per_day_s": per_day,
            "train_s": train_s,
            "report_bytes": stored,
            "quality_s": quality_s,
            "failed": {**failed_days(drift_result), **failed_days(quality_result)},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days monitored")
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1000, help="rows per day")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.days, args.history_days, args.out)
        return

    root = make_root("monitoring-range")
    last = FIRST_DAY + timedelta(days=args.history_days - 1)
    env = bench_env(root / "state", args.rows, last.isoformat(), first_day=FIRST_DAY.isoformat())
    print(f"{machine_load()}; {args.days} days of {args.rows:,} rows monitored ({args.history_days} stored)")
    try:
        logs = root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        prepare_instance(env, logs)
        out = logs / "result.json"
        command = child_command(MODULE, "--child", "--days", str(args.days), "--history-days", str(args.history_days))
        run_measured([*command, "--out", str(out)], env, logs / "child.log")
        result = json.loads(Path(out).read_text())
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    days, one_run, per_day = result["days"], result["one_run_s"], result["per_day_s"]
    each = sum(per_day)
    print_table(
        ["drift of the days", "seconds", "per day", "275 days, extrapolated"],
        [
            ["one run over the range", fmt(one_run, ".1f"), fmt(one_run / days), fmt(one_run / days * 275, ".0f")],
            ["one run per day", fmt(each, ".1f"), fmt(each / days), fmt(each / days * 275, ".0f")],
        ],
        title=f"Drift of {days} days, {spec_name()}",
    )
    print(f"one run / one run per day: {one_run / each:.2f}")
    stored = result["report_bytes"]
    if stored:
        mean = sum(stored) / len(stored)
        print(
            f"drift reports stored: {len(stored)} files, {mean / 1e6:.3f} MB each on average (max "
            f"{max(stored) / 1e6:.3f}); a year of them: {mean * 365 / 1e6:.0f} MB"
        )
    print(f"quality of the labeled days as one run: {result['quality_s']:.1f} s")
    # The generator's days are ordinary (no drift is set): every failed day is a false alarm of the defaults.
    print_table(
        ["check (spec defaults)", "ordinary days failed", "days judged", "share"],
        [[name, str(f), str(n), f"{f / n:.0%}" if n else "-"] for name, (f, n) in sorted(result["failed"].items())],
        title="False alarms on ordinary days (stationary synthetic data)",
    )


if __name__ == "__main__":
    main()
