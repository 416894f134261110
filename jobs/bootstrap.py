"""`make run`: bring a fresh clone to a working state on the embedded defaults, through Dagster.

Ingests enough history for training in one single-run backfill, trains every model spec (the first version
that clears its gate becomes champion), runs the nightly chain (ingest, dbt, scoring) over the last week up to
yesterday and checks each of those days for drift, so Dagster has a week of drift figures to plot. Every run is recorded in DAGSTER_HOME, so they all show in the Dagster UI; then it prints where
the results are. Running it again is safe: partitions are replaced, and a retrained version must pass the gate.

A past window of your own data (NIGHTJAR_START_DATE .. NIGHTJAR_END_DATE): `--all-history [--train-as-of DAY]`
ingests all of it, trains as of a day and scores and monitors every later day; `--score-from A [--score-to B]`
scores and monitors those days alone. One run per step, over its range (jobs/backfill.py).

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

from jobs.backfill import (
    FlagError,
    PastWindow,
    drift_report,
    plan_past_window,
    range_tags,
    rescore,
    run_job,
    run_past_window,
)
from resources.settings import Settings, redact_url


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    settings = Settings.from_env()
    parser.add_argument(
        "--history-days",
        type=int,
        default=None,
        help=f"default mode: days of history ingested before the scored days (NIGHTJAR_BOOTSTRAP_DAYS, "
        f"{settings.bootstrap_days})",
    )
    parser.add_argument(
        "--scored-days", type=int, default=None, help="default mode: newest days scored and checked for drift (7)"
    )
    past = parser.add_argument_group(
        "a past window (your own data of NIGHTJAR_START_DATE .. NIGHTJAR_END_DATE): one range run per step"
    )
    past.add_argument(
        "--all-history",
        action="store_true",
        help="ingest every day of the window in one run, train every model as of --train-as-of, then score every "
        "later day in one nightly run and monitor them (per model: one drift run, one quality run over the days "
        "whose labels are in)",
    )
    past.add_argument(
        "--train-as-of",
        type=_day,
        metavar="YYYY-MM-DD",
        help="with --all-history: train on the labels known by this day (default: the first day every model's "
        "first training window has its labels: NIGHTJAR_START_DATE + evaluation.window_days - 1 + label delay)",
    )
    past.add_argument(
        "--score-from",
        type=_day,
        metavar="YYYY-MM-DD",
        help="score and monitor these days only (no ingest, no training): from this day ...",
    )
    past.add_argument(
        "--score-to", type=_day, metavar="YYYY-MM-DD", help="... to this day (default: the last day of the window)"
    )
    args = parser.parse_args(argv)
    past_mode = args.all_history or args.score_from or args.score_to or args.train_as_of
    if past_mode and (args.history_days is not None or args.scored_days is not None):
        parser.error("--history-days and --scored-days are for the default mode, not with a past window's flags")
    args.history_days = settings.bootstrap_days if args.history_days is None else args.history_days
    args.scored_days = 7 if args.scored_days is None else args.scored_days
    plan = _plan(parser, settings, args) if past_mode else None
    # Dagster's notices that an API nightjar uses is beta (raised while definitions load) say nothing to whoever
    # runs `make run`; the test suite ignores them too (pyproject.toml).
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with summary_only_on_stdout() as out:
        if plan is None:
            _bootstrap(settings, args, out)
        else:
            _past_window(settings, *plan, out)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day (YYYY-MM-DD)") from None


def _plan(parser: argparse.ArgumentParser, settings: Settings, args: argparse.Namespace) -> tuple[list, PastWindow]:
    """The specs and the past window's runs from the flags; a flag that cannot be honoured ends the command naming
    it, before any run."""
    from assets.ml.spec import load_specs
    from assets.partitions import build_daily_partitions

    last = date.fromisoformat(build_daily_partitions(settings).get_last_partition_key())
    specs = list(load_specs(settings.model_specs_dir).values())
    try:
        return specs, plan_past_window(
            settings,
            specs,
            last,
            all_history=args.all_history,
            train_as_of=args.train_as_of,
            score_from=args.score_from,
            score_to=args.score_to,
        )
    except FlagError as error:
        parser.error(str(error))


def _past_window(settings: Settings, specs: list, plan: PastWindow, out: TextIO) -> None:
    steps = []
    if plan.ingest_from is not None:
        steps.append(f"ingest {plan.ingest_from} .. {plan.last}, train as of {plan.train_as_of}")
    steps.append(f"score and monitor {plan.score_from} .. {plan.score_to}")
    print(f"nightjar past window: {', '.join(steps)}; models {[s.name for s in specs]}", file=out)
    reports = run_past_window(plan, settings, specs, out)
    _report(settings, specs, reports, out)


def _bootstrap(settings: Settings, args: argparse.Namespace, out: TextIO) -> None:
    from assets.partitions import build_daily_partitions
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
        run_job(
            out,
            defs,
            "ingest",
            instance,
            tags=range_tags(first, history_end),
        )
    for spec in specs:
        run_job(out, defs, f"train_{spec.name}", instance)
    # Re-running the bootstrap after a new champion re-decides these days on purpose.
    rescore(out, defs, instance, specs, scored_from, last)
    # A small review file for the day before the last (yesterday's reviews of the day before), and one decision
    # from the record_review job: the final decisions and their override figures show reviews.
    from jobs.review_example import land_and_record_reviews

    land_and_record_reviews(out, settings, defs, instance, specs, max(scored_from, last - timedelta(days=1)), last)
    reports: dict[str, dict[str, str]] = {}
    for spec in specs:
        drift = dg.AssetKey([spec.name, "drift"])
        for offset in range((last - scored_from).days + 1):
            day = scored_from + timedelta(days=offset)
            result = run_job(
                out, defs, f"monitor_{spec.name}", instance, partition_key=day.isoformat(), asset_selection=[drift]
            )
            print(f"    {spec.name} drift {day}: {check_statuses(result.get_asset_check_evaluations())}", file=out)
            materialized = result.asset_materializations_for_node(f"{spec.name}__drift")
            if materialized:
                reports[spec.name] = drift_report(materialized[-1], day.isoformat())
    _report(settings, specs, reports, out)
    if first < scored_from:
        print(unscored_history_hint(first, scored_from), file=out)


def unscored_history_hint(first: date, scored_from: date) -> str:
    """What the terminal says of the ML assets' days before the scored ones (grey in the UI's partitions): the
    history the first version learned from, not days that failed, and the one command that fills them."""
    return (
        f"\nPredictions, drift and quality of {first} .. {scored_from - timedelta(days=1)} are empty: the history the "
        "first version learned from, not days that failed. To score and monitor them (one run per step; figures on "
        f'days a version trained on are in-sample): make run ARGS="--score-from {first} '
        f'--score-to {scored_from - timedelta(days=1)}"'
    )


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
    tables += [f"marts.{mart}" for spec in specs for mart in (spec.training_mart, spec.scoring_mart)]
    tables += [f"predictions.{spec.name}{part}" for spec in specs for part in ("", "_inputs", "_final_decisions")]
    tables += [f"reviews.{spec.name}" for spec in specs]
    for table in dict.fromkeys(tables):  # two models on the same marts list them once
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
        if "report_path" not in report:
            status = report.get("status", "not materialized")
            print(f"  {spec.name} drift report of {report.get('day', 'the last day')}: none ({status})", file=out)
            continue
        print(f"  {spec.name} drift report of {report['day']}:", file=out)
        if "report" in report:
            print(f"    page (`make dev` or `make reports` serves it): {report['report']}", file=out)
        print(f"    stored: {report['report_path']} (`python -m resources.report_server render <file>`)", file=out)
        if "mlflow_run" in report:
            print(f"    the version's MLflow run (`make mlflow-ui`): {report['mlflow_run']}", file=out)
    for spec in specs:
        print(replay_hint(warehouse, spec), file=out)
    print(f"  Dagster runs: {os.environ.get('DAGSTER_HOME')}", file=out)
    print(
        f"\nOpen the Dagster UI with `make dev` ({settings.dagster_url}); MLflow with `make mlflow-ui` "
        f"({settings.mlflow_ui_url}).",
        file=out,
    )


def replay_hint(warehouse, spec) -> str:
    """The command that replays one decision of the newest scored day (README, "Replaying a decision"): a case
    with reason codes where there is one."""
    table = f"predictions.{spec.name}"
    if not warehouse.table_exists(table):
        return f"  {spec.name}: nothing scored, nothing to replay"
    found = warehouse.query(
        f"SELECT {spec.entity_id} AS case_id, {spec.timestamp} AS day FROM {table} "
        f"ORDER BY {spec.timestamp} DESC, reasons IS NULL, {spec.entity_id} LIMIT 1"
    )
    if found.empty:
        return f"  {spec.name}: nothing scored, nothing to replay"
    case, day = found["case_id"].iloc[0], str(found["day"].iloc[0])[:10]
    return f"  replay a decision of {spec.name}: make replay MODEL={spec.name} CASE={case} DAY={day}"


if __name__ == "__main__":
    main()
