"""The check results of a monitored day: a figure graded against the spec's thresholds, or "not checked" and why;
both name the day and link the day's report.

A check that has nothing to judge yet is not failed: it passes, saying it was not checked and why (Dagster wants a
result for every declared check, and a passed check alerts nobody).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from resources.failures import not_retried
from resources.registry import as_link
from resources.reports import MonitoringReports

if TYPE_CHECKING:
    from resources.registry import ModelRegistry, VersionInfo

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def report_links(
    reports: MonitoringReports, path: Path, registry: ModelRegistry, version: VersionInfo
) -> dict[str, dg.MetadataValue]:
    """The report's links, for the materialization and the checks: ``report`` (its page on the reports server,
    when NIGHTJAR_REPORTS_BASE_URL says where that is), ``report_path`` (the stored report) and ``mlflow_run`` (the
    MLflow run of the version that scored the day, where the day's figures are logged as one step per day)."""
    served = reports.served_url(path)
    return {
        **({"report": dg.MetadataValue.url(served)} if served else {}),
        "report_path": dg.MetadataValue.path(str(path)),
        "mlflow_run": as_link(registry.run_page(version.run_id)),
    }


def _link_text(links: dict[str, dg.MetadataValue]) -> str:
    """The report's link for a check's description, which the UI shows where the metadata is a click away."""
    if "report" in links:
        return f"report: {links['report'].value}"
    return f"report: {links['report_path'].value} (python -m resources.report_server render <file>)"


def graded_check(
    name: str, value: float, thresholds, what: str, day: date, links: dict[str, dg.MetadataValue]
) -> dg.AssetCheckResult:
    """The check of ``day``'s ``value`` against ``thresholds``: its description and metadata name the day and link
    the day's report."""
    from assets.monitoring.drift import severity

    with not_retried(ValueError):  # a NaN figure (e.g. no validation ROC AUC recorded) grades the same every time
        level = severity(value, thresholds)
    return dg.AssetCheckResult(
        check_name=name,
        passed=level == "ok",
        severity=SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        description=f"{day}: {what} (warn at {thresholds.warn}, error at {thresholds.error}); {_link_text(links)}",
        metadata={
            "day": day.isoformat(),
            "value": float(value),
            "warn_at": thresholds.warn,
            "error_at": thresholds.error,
            "level": level,
            **links,
        },
    )


def not_checked(
    name: str, reason: str, day: date, links: dict[str, dg.MetadataValue] | None = None
) -> dg.AssetCheckResult:
    """A check with nothing to judge yet: passed (nothing alerts), saying so and why (and the day's report, if
    one was written)."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=True,
        description=f"not checked: {reason}",
        metadata={"level": "not_checked", "day": day.isoformat(), **(links or {})},
    )


def each_day(days: list[date], check_day, checks: tuple[str, ...]) -> list[list]:
    """Each day's events (``check_day(day)`` yields a day's materialization and check results, and may ask for its
    expensive part as a ``day_pool.Compute``: several days run those in a pool of processes, in day order). A
    one-day run fails as the day fails; in a range run a day whose data cannot be checked (``DataFailure``: not
    scored yet, a table missing) is not materialized, its checks say why it was not checked, and the other days go
    on; the run fails only when no day could be checked."""
    from assets.monitoring.day_pool import run_in_place, run_pooled, workers_for
    from resources.failures import DataFailure

    if len(days) == 1:
        return [run_in_place(check_day(days[0]))]
    workers = workers_for(len(days))
    outcomes = run_pooled(days, check_day, workers) if workers else ((day, _in_place(check_day, day)) for day in days)
    per_day, failures = [], []
    for day, outcome in outcomes:
        if isinstance(outcome, DataFailure):
            failures.append(outcome)
            reason = outcome.description or "no data"
            per_day.append([not_checked(name, reason, day) for name in checks])  # the day stays unmaterialized
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            per_day.append(outcome)
    if len(failures) == len(days):
        raise failures[0]
    return per_day


def _in_place(check_day, day: date) -> list | BaseException:
    from assets.monitoring.day_pool import run_in_place
    from resources.failures import DataFailure

    try:
        return run_in_place(check_day(day))
    except DataFailure as failure:
        return failure


def combined_days(context: dg.AssetExecutionContext, days: list[date], per_day: list[list]) -> Iterator:
    """What a monitoring asset yields for a run over ``days`` from what it yielded for each day (``per_day``: each
    day's MaterializeResult and check results). One day: its own events. Several (a backfill launched as one run):
    each day's materialization is recorded on its own partition with its own figures (so the asset's plots over
    partitions stay true; the assets declare ``output_required=False`` for that), and one result per check: failed
    when any day failed, at the worst day's severity, naming the days."""
    if len(per_day) == 1:
        yield from per_day[0]
        return
    for day, events in zip(days, per_day, strict=True):
        for event in events:
            if isinstance(event, dg.MaterializeResult):
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=context.asset_key, partition=day.isoformat(), metadata=event.metadata
                    )
                )
    by_name: dict[str, list[tuple[date, dg.AssetCheckResult]]] = {}
    for day, events in zip(days, per_day, strict=True):
        for event in events:
            if isinstance(event, dg.AssetCheckResult):
                by_name.setdefault(event.check_name, []).append((day, event))
    for name, results in by_name.items():
        failed = [(day, r) for day, r in results if not r.passed]
        worst = (
            dg.AssetCheckSeverity.ERROR
            if any(r.severity == dg.AssetCheckSeverity.ERROR for _, r in failed)
            else dg.AssetCheckSeverity.WARN
        )
        described = "; ".join(f"{r.description}" for _, r in failed[:10]) + ("; ..." if len(failed) > 10 else "")
        yield dg.AssetCheckResult(
            check_name=name,
            passed=not failed,
            severity=worst,
            description=f"{len(failed)} of {len(results)} days failed: {described}"
            if failed
            else f"all {len(results)} days passed ({days[0]} to {days[-1]})",
            metadata={
                "days": len(results),
                "days_failed": len(failed),
                "failed_days": ", ".join(day.isoformat() for day, _ in failed) or "none",
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
            },
        )
