"""`make run`: bring a fresh clone to a working state on the embedded defaults, through Dagster.

Ingests enough history for training in one single-run backfill, trains every model spec (the first version
that clears its gate becomes champion), runs the nightly chain (ingest, dbt, scoring) over the last week up to
yesterday and checks each of those days for drift, so Dagster has a week of drift figures to plot. Every run is recorded in DAGSTER_HOME, so they all show in the Dagster UI; then it prints where
the results are. Running it again is safe: partitions are replaced, and a retrained version must pass the gate.
"""

from __future__ import annotations

import argparse
import os
from datetime import date, timedelta

import dagster as dg

from resources.settings import Settings

# The runs' full logs are in the Dagster UI; the terminal gets warnings and this script's summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run(
    defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, run_config: dict | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config={**QUIET, **(run_config or {})}, **kwargs
    )
    if not result.success:
        raise SystemExit(f"job '{job_name}' failed (run {result.run_id}); open the Dagster UI (`make dev`) for the logs")
    print(f"  {job_name}: run {result.run_id} succeeded")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = Settings.from_env()
    parser.add_argument("--history-days", type=int, default=settings.bootstrap_days)
    parser.add_argument("--scored-days", type=int, default=7, help="newest days scored and checked for drift")
    args = parser.parse_args(argv)

    from assets.partitions import RANGE_END_TAG, RANGE_START_TAG, build_daily_partitions
    from definitions import build_definitions

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    last = date.fromisoformat(build_daily_partitions(settings).get_last_partition_key())
    first = max(settings.start_date, last - timedelta(days=args.history_days))
    scored_from = max(first, last - timedelta(days=args.scored_days - 1))
    history_end = scored_from - timedelta(days=1)

    from assets.ml.spec import load_specs

    specs = list(load_specs(settings.model_specs_dir).values())
    print(f"nightjar bootstrap: history {first} .. {history_end}, models {[s.name for s in specs]}, "
          f"nightly chain and drift for {scored_from} .. {last}")
    if first <= history_end:
        _run(defs, "ingest", instance, tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: history_end.isoformat()})
    for spec in specs:
        _run(defs, f"train_{spec.name}", instance)
    # Re-running the bootstrap after a new champion re-decides these days on purpose.
    rescore = {"ops": {f"{spec.name}__predictions": {"config": {"rescore": True}} for spec in specs}}
    _run(defs, "nightly", instance, run_config=rescore,
         tags={RANGE_START_TAG: scored_from.isoformat(), RANGE_END_TAG: last.isoformat()})
    for spec in specs:
        drift = dg.AssetKey([spec.name, "drift"])
        for offset in range((last - scored_from).days + 1):
            day = scored_from + timedelta(days=offset)
            result = _run(defs, f"monitor_{spec.name}", instance, partition_key=day.isoformat(), asset_selection=[drift])
            failed = [f"{c.check_name} ({c.severity.value})" for c in result.get_asset_check_evaluations() if not c.passed]
            print(f"    {spec.name} drift {day}: {', '.join(failed) if failed else 'all checks passed'}")
    _report(settings, specs, last)


def _report(settings, specs, last: date) -> None:
    from resources.build import build_resources, open_warehouse

    warehouse, registry = open_warehouse(settings), build_resources(settings)["registry"]
    print("\nResults")
    print(f"  warehouse: {warehouse.describe()}")
    from resources.source.declarations import load_raw_tables

    tables = [t.qualified for t in load_raw_tables(settings.manifest_path).values()]
    tables += [f"marts.{mart}" for spec in specs for mart in dict.fromkeys((spec.training_mart, spec.scoring_mart))]
    tables += [f"predictions.{spec.name}" for spec in specs]
    for table in tables:
        if warehouse.table_exists(table):
            rows = int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])
            print(f"    {table}: {rows} rows")
    print(f"  MLflow: {settings.mlflow_tracking_uri}")
    for spec in specs:
        champion = registry.by_alias(spec.name, "champion")
        print(f"    {spec.name}: champion = {f'version {champion.version}' if champion else 'none (see the gate check)'}")
    for spec in specs:
        print(f"  drift report of {last}: {settings.reports_dir / spec.name / 'drift' / f'{last}.html'}")
    print(f"  Dagster runs: {os.environ.get('DAGSTER_HOME')}")
    print("\nOpen the Dagster UI with `make dev` (http://127.0.0.1:3000); MLflow with `make mlflow-ui` (http://127.0.0.1:5000).")


if __name__ == "__main__":
    main()
