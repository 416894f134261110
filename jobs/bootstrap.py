"""`make run`: bring a fresh clone to a working state on the embedded defaults, through Dagster.

Materializes enough history for the chain in one single-run backfill, then yesterday's nightly run, recording
every run in DAGSTER_HOME so they show in the Dagster UI; then prints where the results are.
"""

from __future__ import annotations

import argparse
import os
from datetime import date, timedelta

import dagster as dg

from resources.settings import get_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _run(defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    if not result.success:
        raise SystemExit(f"job '{job_name}' failed (run {result.run_id}); open the Dagster UI (`make dev`) for the logs")
    print(f"  {job_name}: run {result.run_id} succeeded")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history-days", type=int, default=int(os.environ.get("NIGHTJAR_BOOTSTRAP_DAYS", "120")))
    args = parser.parse_args(argv)

    from definitions import defs
    from assets.partitions import daily_partitions

    settings = get_settings()
    instance = dg.DagsterInstance.get()
    last = date.fromisoformat(daily_partitions.get_last_partition_key())
    first = max(settings.start_date, last - timedelta(days=args.history_days))
    history_end = last - timedelta(days=1)

    print(f"nightjar bootstrap: history {first} .. {history_end}, then the nightly run for {last}")
    if first <= history_end:
        _run(defs, "ingest", instance, tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: history_end.isoformat()})
    _run(defs, "nightly", instance, partition_key=last.isoformat())
    _report(settings)


def _report(settings) -> None:
    from resources.build import build_warehouse

    warehouse = build_warehouse(settings)
    print("\nResults")
    print(f"  warehouse: {warehouse.describe()}")
    for table in ("raw.applications", "raw.outcomes", "marts.fct_application_features", "marts.fct_labeled_applications"):
        if warehouse.table_exists(table):
            rows = int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])
            print(f"    {table}: {rows} rows")
    print(f"  Dagster runs: {os.environ.get('DAGSTER_HOME')}  (open the UI with `make dev`, then http://127.0.0.1:3000)")


if __name__ == "__main__":
    main()
