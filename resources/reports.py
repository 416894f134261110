"""Where monitoring's HTML reports go, how long they are kept, and the link the Dagster UI shows for each."""

from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg


class MonitoringReports(dg.ConfigurableResource):
    """Where HTML reports are written, how long they are kept, and the URL they are served under (if any)."""

    directory: str
    retention_days: int = 90
    base_url: str | None = None

    def path(self, model: str, kind: str, day: date) -> Path:
        path = Path(self.directory) / model / kind / f"{day.isoformat()}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def link(self, path: Path) -> dg.MetadataValue:
        if self.base_url:
            relative = path.relative_to(self.directory).as_posix()
            return dg.MetadataValue.url(f"{self.base_url.rstrip('/')}/{relative}")
        return dg.MetadataValue.url(path.resolve().as_uri())

    def prune(self, model: str, kind: str, *, today: date | None = None) -> int:
        """Delete reports (about 4.5 MB each) past the retention window; returns how many.

        The window counts back from ``today``, the wall clock's date (a parameter for tests only), never from the
        day a run checks: checking an old day must not delete reports other runs still link to. A report is kept
        while its day or the time it was last written is within ``retention_days`` of today, so a report just
        written for an old day stays for the run that links it.
        """
        cutoff = (today or date.today()) - timedelta(days=self.retention_days)
        written_cutoff = datetime.combine(cutoff, datetime.min.time()).timestamp()
        removed = 0
        for report in (Path(self.directory) / model / kind).glob("*.html"):
            try:
                day = date.fromisoformat(report.stem)
            except ValueError:
                continue  # not one of ours
            try:
                if day < cutoff and report.stat().st_mtime < written_cutoff:
                    report.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another run pruned it first
        return removed
