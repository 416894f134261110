"""A past window through Dagster as range runs: the bootstrap's `--all-history` and `--score-from` modes.

Each step is ONE run over its days (the range tags of a single-run backfill), not one run per day:

- ``--all-history``: ``ingest`` over the whole window (NIGHTJAR_START_DATE .. the last partition), ``train_<model>``
  as of one day (the training set's ``as_of``: only labels known by then), then :func:`score_and_monitor` over
  every later day.
- ``--score-from A [--score-to B]``: :func:`score_and_monitor` alone, on days already ingested.

Scoring is a ``nightly`` run restricted to the predictions (the days' raw and dbt tables are in already) with
``rescore``; monitoring is, per model, a ``monitor_<model>`` run of drift over the scored days and one of quality
over those whose labels have arrived (day <= last day - label delay): a run has one partition range, and the two
ranges differ. jobs/bootstrap.py parses the flags; :func:`plan_past_window` checks them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TextIO

import dagster as dg

from assets.ml.spec import ModelSpec
from assets.monitoring.check_names import DRIFT_ASSET, QUALITY_ASSET
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from jobs.monitoring import label_delay_days, monitoring_job_name
from jobs.training import training_job_name
from resources.settings import Settings

# The runs' full logs are in the Dagster UI; the terminal gets warnings and the summary lines.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class FlagError(ValueError):
    """A flag that cannot be honoured; its message names the flag and what is wrong."""


@dataclass(frozen=True)
class PastWindow:
    """What a past-window command runs: ``ingest_from`` .. ``last`` ingested and training as of ``train_as_of``
    (both None: score and monitor only), then ``score_from`` .. ``score_to`` scored and monitored."""

    last: date  # the last partition: labels are known up to it
    score_from: date
    score_to: date
    ingest_from: date | None = None
    train_as_of: date | None = None


def default_train_as_of(specs: list[ModelSpec], settings: Settings) -> tuple[date, str]:
    """The first day on which every spec's first training window has its labels: NIGHTJAR_START_DATE +
    evaluation.window_days - 1 + the spec's label delay, the latest over the specs; and why, in words."""
    days = {
        spec.name: settings.start_date
        + timedelta(days=spec.evaluation.window_days - 1 + label_delay_days(spec, settings))
        for spec in specs
    }
    name = max(days, key=lambda n: days[n])
    spec = next(s for s in specs if s.name == name)
    why = (
        f"the first day {name}'s first {spec.evaluation.window_days}-day training window from "
        f"{settings.start_date} has its labels, {label_delay_days(spec, settings)} days' label delay after it"
    )
    return days[name], why


def _in_window(flag: str, day: date, settings: Settings, last: date) -> None:
    if not settings.start_date <= day <= last:
        raise FlagError(
            f"{flag} {day} is outside the window {settings.start_date} .. {last} "
            "(NIGHTJAR_START_DATE .. the last day: NIGHTJAR_END_DATE, or yesterday)"
        )


def plan_past_window(
    settings: Settings,
    specs: list[ModelSpec],
    last: date,
    *,
    all_history: bool,
    train_as_of: date | None = None,
    score_from: date | None = None,
    score_to: date | None = None,
) -> PastWindow:
    """The runs the flags ask for, or :class:`FlagError` naming the flag that cannot be honoured."""
    if all_history and (score_from or score_to):
        raise FlagError("--all-history scores every day after --train-as-of: leave out --score-from/--score-to")
    if train_as_of and not all_history:
        raise FlagError("--train-as-of trains before scoring: it goes with --all-history")
    if all_history:
        if train_as_of is None:
            train_as_of, why = default_train_as_of(specs, settings)
            if train_as_of >= last:
                raise FlagError(
                    f"--train-as-of not given, and its default {train_as_of} ({why}) leaves no day to score up to "
                    f"the last day {last}: give --train-as-of (a day before {last}), or a longer window "
                    "(NIGHTJAR_START_DATE / NIGHTJAR_END_DATE)"
                )
        _in_window("--train-as-of", train_as_of, settings, last)
        if train_as_of >= last:
            raise FlagError(
                f"--train-as-of {train_as_of} leaves no day to score: the days after it are scored, and the last "
                f"day is {last}; give a day before {last}"
            )
        return PastWindow(
            last, train_as_of + timedelta(days=1), last, ingest_from=settings.start_date, train_as_of=train_as_of
        )
    if score_from is None:
        raise FlagError("--score-to needs --score-from (the first day to score)")
    score_to = score_to or last
    _in_window("--score-from", score_from, settings, last)
    _in_window("--score-to", score_to, settings, last)
    if score_from > score_to:
        raise FlagError(f"--score-from {score_from} is after --score-to {score_to}: no day to score")
    return PastWindow(last, score_from, score_to)


def run_job(
    out: TextIO,
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    what: str = "",
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """Runs ``job_name`` in this process on ``instance`` and prints one line (``what`` says what it did, with its
    wall time); a failed run ends the command naming it."""
    started = time.perf_counter()
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config={**QUIET, **(run_config or {})}, **kwargs
    )
    if not result.success:
        raise SystemExit(
            f"job '{job_name}' failed (run {result.run_id}); open the Dagster UI (`make dev`) for the logs"
        )
    took = f" in {time.perf_counter() - started:.0f} s" if what else ""
    print(f"  {job_name}{what}: run {result.run_id} succeeded{took}", file=out)
    return result


def range_tags(first: date, last: date) -> dict[str, str]:
    """The tags of a single-run backfill of ``first`` .. ``last`` (inclusive)."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def _days(first: date, last: date) -> str:
    n = (last - first).days + 1
    return f"{first} .. {last} ({n} day{'s' if n != 1 else ''})"


def run_past_window(
    plan: PastWindow, settings: Settings, specs: list[ModelSpec], out: TextIO
) -> dict[str, dict[str, str]]:
    """The plan's runs, in order; returns each model's newest drift report (for the bootstrap's summary)."""
    from definitions import build_definitions

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    if plan.ingest_from is not None:
        run_job(
            out,
            defs,
            "ingest",
            instance,
            what=f" {_days(plan.ingest_from, plan.last)}",
            tags=range_tags(plan.ingest_from, plan.last),
        )
    if plan.train_as_of is not None:
        for spec in specs:
            as_of = {"ops": {f"{spec.name}__training_set": {"config": {"as_of": plan.train_as_of.isoformat()}}}}
            run_job(out, defs, training_job_name(spec), instance, run_config=as_of, what=f" as of {plan.train_as_of}")
    return score_and_monitor(defs, instance, settings, specs, plan, out)


def score_and_monitor(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    specs: list[ModelSpec],
    plan: PastWindow,
    out: TextIO,
) -> dict[str, dict[str, str]]:
    """One ``nightly`` run scoring the plan's days with every champion, then per model one drift run over them and
    one quality run over those with labels; prints each run's days per status."""
    first, last = plan.score_from, plan.score_to
    predictions = [dg.AssetKey([spec.name, "predictions"]) for spec in specs]
    rescore(out, defs, instance, specs, first, last, what=f" scoring {_days(first, last)}", asset_selection=predictions)
    reports: dict[str, dict[str, str]] = {}
    for spec in specs:
        drifted = _monitor(out, defs, instance, spec, DRIFT_ASSET, first, last)
        if drifted:
            newest = max(drifted, key=lambda m: m.partition or "")
            reports[spec.name] = drift_report(newest, newest.partition or last.isoformat())
        delay = label_delay_days(spec, settings)
        labeled_to = min(last, plan.last - timedelta(days=delay))
        if labeled_to < first:
            print(
                f"    {spec.name} quality: not run, no scored day has its labels yet (labels come {delay} days "
                f"later: the last labeled day is {plan.last - timedelta(days=delay)})",
                file=out,
            )
            continue
        _monitor(out, defs, instance, spec, QUALITY_ASSET, first, labeled_to)
    return reports


def rescore(
    out: TextIO,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    specs: list[ModelSpec],
    first: date,
    last: date,
    what: str = "",
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """One ``nightly`` run over ``first`` .. ``last``; a day scored before is decided again by the champion of now,
    on purpose (``rescore``)."""
    config = {"ops": {f"{spec.name}__predictions": {"config": {"rescore": True}} for spec in specs}}
    return run_job(out, defs, "nightly", instance, run_config=config, what=what, tags=range_tags(first, last), **kwargs)


def _monitor(
    out: TextIO,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    spec: ModelSpec,
    asset: str,
    first: date,
    last: date,
) -> list[dg.AssetMaterialization]:
    """One ``monitor_<model>`` run of ``asset`` (drift or quality) over the days; prints them by status and returns
    the days' materializations."""
    key = dg.AssetKey([spec.name, asset])
    result = run_job(
        out,
        defs,
        monitoring_job_name(spec),
        instance,
        what=f" {asset} {_days(first, last)}",
        tags=range_tags(first, last),
        asset_selection=[key],
    )
    print(f"    {spec.name} {asset}: {days_by_status(result, key, first, last)}", file=out)
    return _materializations(result, key)


def drift_report(materialization: dg.AssetMaterialization, day: str) -> dict[str, str]:
    """What the bootstrap's summary says of a day's drift: its status and report links."""
    keep = ("status", "report", "report_path", "mlflow_run")
    return {"day": day, **{k: str(v.value) for k, v in materialization.metadata.items() if k in keep}}


def _materializations(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> list[dg.AssetMaterialization]:
    """The run's materializations of ``key``: in a range run, one per day checked, on its partition."""
    return [m for m in result.asset_materializations_for_node("__".join(key.path)) if m.asset_key == key]


def days_by_status(result: dg.ExecuteInProcessResult, key: dg.AssetKey, first: date, last: date) -> str:
    """A range run of a monitoring asset in one line: its days by materialization status (checked, no_reference,
    waiting; a day not materialized could not be checked), then per check how many days failed and which. A range
    run gives one result per check (``days``, ``days_failed``, ``failed_days``: check_results.combined_days); a
    one-day run the day's own."""
    total = (last - first).days + 1
    statuses = Counter(
        str(m.metadata["status"].value) if "status" in m.metadata else "materialized"
        for m in _materializations(result, key)
    )
    if sum(statuses.values()) < total:
        statuses["not materialized"] = total - sum(statuses.values())
    parts = [", ".join(f"{status} {n}" for status, n in statuses.most_common())]
    for check in result.get_asset_check_evaluations():
        if check.asset_key != key:
            continue
        meta = {k: v.value for k, v in check.metadata.items()}
        days = int(meta.get("days", 1))
        failed = int(meta.get("days_failed", 0 if check.passed else 1))
        if failed:
            named = str(meta.get("failed_days", meta.get("day", ""))).split(", ")
            which = ", ".join(named[:5]) + (f", ... ({len(named) - 5} more)" if len(named) > 5 else "")
            parts.append(f"{check.check_name} {failed} of {days} failed ({check.severity.value}: {which})")
        else:
            parts.append(f"{check.check_name} {days} passed or not checked")
    return "; ".join(parts)
