"""`make run`: bring a fresh clone to a working state on the embedded defaults, through Dagster.

Ingests enough history for training in one single-run backfill, trains every model spec (the first version
that clears its gate becomes champion), runs the nightly chain (ingest, dbt, scoring) over the last week up to
yesterday and checks each of those days for drift, so Dagster has a week of drift figures to plot. Every run is recorded in DAGSTER_HOME, so they all show in the Dagster UI; then it prints where
the results are. Running it again is safe: partitions are replaced, and a retrained version must pass the gate.

The runs' logs go to the Dagster UI, not the terminal. Dagster keeps each run's stdout and stderr as its compute
logs (the run's "stdout" / "stderr" views: dbt's console output, which dagster-dbt re-emits on stdout, MLflow's,
Evidently's) and echoes them to the process's own stdout and stderr. dbt's flags cannot quiet it (dagster-dbt
reads dbt's JSON log lines to know what was built and tested: `--quiet` or `--log-level warn` would lose the
materializations), so this script points its own stdout at /dev/null while the runs go: the compute logs are
written to files as before, and the terminal gets this script's summary lines (on the original stdout) and
stderr: Dagster's warnings (the console logger at WARNING) and what libraries log there.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TextIO

import dagster as dg

from resources.settings import Settings, redact_url

# The runs' full logs are in the Dagster UI; the terminal gets warnings and this script's summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextmanager
def summary_only_on_stdout() -> Iterator[TextIO]:
    """Points this process's stdout (file descriptor 1) at /dev/null and yields the original stdout, for the
    summary lines. Dagster's compute log capture still writes every run's stdout to its log file (it redirects
    descriptor 1 to the file while a run executes); only its echo to the terminal goes to /dev/null."""
    sys.stdout.flush()
    original = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    terminal = os.fdopen(os.dup(original), "w", buffering=1)
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        terminal.flush()
        os.dup2(original, 1)
        os.close(original)
        terminal.close()


def _run(
    out: TextIO,
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    **kwargs,
) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config={**QUIET, **(run_config or {})}, **kwargs
    )
    if not result.success:
        raise SystemExit(
            f"job '{job_name}' failed (run {result.run_id}); open the Dagster UI (`make dev`) for the logs"
        )
    print(f"  {job_name}: run {result.run_id} succeeded", file=out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = Settings.from_env()
    parser.add_argument("--history-days", type=int, default=settings.bootstrap_days)
    parser.add_argument("--scored-days", type=int, default=7, help="newest days scored and checked for drift")
    args = parser.parse_args(argv)
    # Dagster's notices that an API nightjar uses is beta (raised while definitions load) say nothing to whoever
    # runs `make run`; the test suite ignores them too (pyproject.toml).
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with summary_only_on_stdout() as out:
        _bootstrap(settings, args, out)


def _bootstrap(settings: Settings, args: argparse.Namespace, out: TextIO) -> None:
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
    print(
        f"nightjar bootstrap: history {first} .. {history_end}, models {[s.name for s in specs]}, "
        f"nightly chain and drift for {scored_from} .. {last}",
        file=out,
    )
    if first <= history_end:
        _run(
            out,
            defs,
            "ingest",
            instance,
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: history_end.isoformat()},
        )
    for spec in specs:
        _run(out, defs, f"train_{spec.name}", instance)
    # Re-running the bootstrap after a new champion re-decides these days on purpose.
    rescore = {"ops": {f"{spec.name}__predictions": {"config": {"rescore": True}} for spec in specs}}
    _run(
        out,
        defs,
        "nightly",
        instance,
        run_config=rescore,
        tags={RANGE_START_TAG: scored_from.isoformat(), RANGE_END_TAG: last.isoformat()},
    )
    reports: dict[str, dict[str, str]] = {}
    for spec in specs:
        drift = dg.AssetKey([spec.name, "drift"])
        for offset in range((last - scored_from).days + 1):
            day = scored_from + timedelta(days=offset)
            result = _run(
                out, defs, f"monitor_{spec.name}", instance, partition_key=day.isoformat(), asset_selection=[drift]
            )
            print(f"    {spec.name} drift {day}: {check_statuses(result.get_asset_check_evaluations())}", file=out)
            materialized = result.asset_materializations_for_node(f"{spec.name}__drift")
            if materialized:
                reports[spec.name] = {
                    "day": day.isoformat(),
                    **{
                        k: str(v.value)
                        for k, v in materialized[-1].metadata.items()
                        if k in ("status", "report", "report_served", "report_path")
                    },
                }
    _report(settings, specs, reports, out)


def check_statuses(evaluations) -> str:
    """One day's checks as the terminal shows them: "all checks passed" only when every check was judged and
    passed; otherwise each check's status: passed, failed (severity), or not checked and why."""
    statuses, judged_and_passed = [], True
    for check in evaluations:
        level = check.metadata.get("level")
        if not check.passed:
            statuses.append(f"{check.check_name} failed ({check.severity.value})")
            judged_and_passed = False
        elif level is not None and level.value == "not_checked":
            reason = (check.description or "").removeprefix("not checked: ")
            statuses.append(
                f"{check.check_name} not checked ({reason})" if reason else f"{check.check_name} not checked"
            )
            judged_and_passed = False
        else:
            statuses.append(f"{check.check_name} passed")
    if not statuses:
        return "no checks"
    return "all checks passed" if judged_and_passed else ", ".join(statuses)


def _report(settings, specs, reports: dict[str, dict[str, str]], out: TextIO) -> None:
    from resources.build import build_resources, open_warehouse

    warehouse, registry = open_warehouse(settings), build_resources(settings)["registry"]
    print("\nResults", file=out)
    print(f"  warehouse: {warehouse.describe()}", file=out)
    from resources.source.declarations import load_raw_tables

    tables = [t.qualified for t in load_raw_tables(settings.manifest_path).values()]
    tables += [f"marts.{mart}" for spec in specs for mart in dict.fromkeys((spec.training_mart, spec.scoring_mart))]
    tables += [f"predictions.{spec.name}" for spec in specs]
    for table in tables:
        if warehouse.table_exists(table):
            rows = int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])
            print(f"    {table}: {rows} rows", file=out)
    print(f"  MLflow: {redact_url(settings.mlflow_tracking_uri)}", file=out)
    for spec in specs:
        champion = registry.by_alias(spec.name, "champion")
        print(
            f"    {spec.name}: champion = {f'version {champion.version}' if champion else 'none (see the gate check)'}",
            file=out,
        )
    for spec in specs:
        report = reports.get(spec.name, {})
        if "report" not in report:
            status = report.get("status", "not materialized")
            print(f"  {spec.name} drift report of {report.get('day', 'the last day')}: none ({status})", file=out)
            continue
        print(f"  {spec.name} drift report of {report['day']}:", file=out)
        print(f"    MLflow UI (`make mlflow-ui`): {report['report']}", file=out)
        if "report_served" in report:
            print(f"    served: {report['report_served']}", file=out)
        print(f"    file: {report['report_path']} (`make dev` serves the folder on http://127.0.0.1:8090)", file=out)
    print(f"  Dagster runs: {os.environ.get('DAGSTER_HOME')}", file=out)
    print(
        f"\nOpen the Dagster UI with `make dev` ({settings.dagster_url}); MLflow with `make mlflow-ui` "
        f"({settings.mlflow_ui_url}).",
        file=out,
    )


if __name__ == "__main__":
    main()
