"""Where monitoring's HTML reports go, how long they are kept, and the link the Dagster UI shows for each."""

from datetime import date, timedelta
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

    def prune(self, model: str, kind: str, today: date) -> int:
        """Delete reports of days older than the retention window (each is about 4.5 MB); returns how many."""
        cutoff = today - timedelta(days=self.retention_days)
        removed = 0
        for report in (Path(self.directory) / model / kind).glob("*.html"):
            try:
                day = date.fromisoformat(report.stem)
            except ValueError:
                continue  # not one of ours
            if day < cutoff:
                report.unlink()
                removed += 1
        return removed
