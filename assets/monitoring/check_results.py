"""The check results of a monitored day: a figure graded against the spec's thresholds, or "not checked" and why;
both name the day and link the day's report.

A check that has nothing to judge yet is not failed: it passes, saying it was not checked and why (Dagster wants a
result for every declared check, and a passed check alerts nobody).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from resources.failures import not_retried
from resources.reports import MonitoringReports

if TYPE_CHECKING:
    from resources.reports import LoggedReport

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def report_links(reports: MonitoringReports, logged: LoggedReport, path: Path) -> dict[str, dg.MetadataValue]:
    """The report's links, for the materialization and the checks: ``report`` (the MLflow UI page of the artifact
    on the version's run), ``report_served`` (the file under NIGHTJAR_REPORTS_BASE_URL, when the folder is served),
    ``report_artifact`` (``runs:/...``) and ``report_path`` (the local file)."""
    served = reports.served_url(path)
    return {
        "report": dg.MetadataValue.url(logged.url),
        **({"report_served": dg.MetadataValue.url(served)} if served else {}),
        "report_artifact": dg.MetadataValue.text(logged.uri),
        "report_path": dg.MetadataValue.path(str(path)),
    }


def _link_text(links: dict[str, dg.MetadataValue]) -> str:
    """The report links for a check's description, which the UI shows where the metadata is a click away."""
    text = f"report: {links['report'].value} (MLflow)"
    if "report_served" in links:
        text += f", {links['report_served'].value}"
    return text


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
