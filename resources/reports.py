"""Where monitoring's reports go, how long they are kept, and the links the Dagster UI shows for each.

A day's report is stored once, in the reports folder: ``<directory>/<model>/<kind>/<day>.json.gz``, Evidently's
snapshot kept compactly (``assets/monitoring/report_page.py``, about 0.1 MB), pruned after ``retention_days``. The
reports server (``python -m resources.report_server``, which ``make dev`` and ``make reports`` start) renders it as
Evidently's HTML page at ``<base_url>/<model>/<kind>/<day>.html``. The asset metadata and the checks link that page
when ``base_url`` is set, and always name the stored file. The MLflow run of the version that scored the day gets
the day's figures (one metric step per day), not a copy of the report: a copy there could never be pruned.

A link is computed when the day is checked, from the settings of that moment: links recorded earlier keep pointing
where they pointed. No link carries a user:password or a secret-looking query value
(:func:`resources.settings.redact_url`): a page that needs a login asks for it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import dagster as dg

from resources.settings import redact_url

SUFFIX = ".json.gz"  # as assets.monitoring.report_page.SUFFIX (not imported: that module is the heavier one)
PAGE_SUFFIX = ".html"  # what the reports server renders a stored report as


def day_of(report: Path) -> date | None:
    """The day a stored report (``<day>.json.gz``, or ``<day>.html`` as earlier nightjar versions wrote) covers; None if the
    file is not one of ours."""
    name = report.name
    for suffix in (SUFFIX, PAGE_SUFFIX):
        if name.endswith(suffix):
            try:
                return date.fromisoformat(name.removesuffix(suffix))
            except ValueError:
                return None
    return None


class MonitoringReports(dg.ConfigurableResource):
    """Where reports are stored, how long they are kept, and the URL the reports server shows them under (if any)."""

    directory: str
    retention_days: int = 90
    base_url: str | None = None

    def path(self, model: str, kind: str, day: date) -> Path:
        path = Path(self.directory) / model / kind / f"{day.isoformat()}{SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def served_url(self, path: Path) -> str | None:
        """The report's page under ``base_url`` (the reports server renders ``<day>.json.gz`` as ``<day>.html``);
        None when no base URL is set (a browser refuses file:// links from a web page, so none is made)."""
        if not self.base_url:
            return None
        relative = path.relative_to(self.directory).as_posix().removesuffix(SUFFIX) + PAGE_SUFFIX
        return redact_url(f"{self.base_url.rstrip('/')}/{quote(relative)}")

    def prune(self, model: str, kind: str, *, today: date | None = None) -> int:
        """Delete reports past the retention window; returns how many.

        The window counts back from ``today``, the wall clock's date (a parameter for tests only), never from the
        day a run checks: checking an old day must not delete reports other runs still link to. A report is kept
        while its day or the time it was last written is within ``retention_days`` of today, so a report just
        written for an old day stays for the run that links it. HTML reports of earlier nightjar versions go alike.
        """
        cutoff = (today or date.today()) - timedelta(days=self.retention_days)
        written_cutoff = datetime.combine(cutoff, datetime.min.time()).timestamp()
        removed = 0
        folder = Path(self.directory) / model / kind
        for report in folder.iterdir() if folder.is_dir() else ():
            day = day_of(report)
            if day is None:
                continue  # not one of ours
            try:
                if day < cutoff and report.stat().st_mtime < written_cutoff:
                    report.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another run pruned it first
        return removed
