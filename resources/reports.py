"""Where monitoring's HTML reports go, how long they are kept, and the links the Dagster UI shows for each.

Each report is written twice: to the reports folder (``<directory>/<model>/<kind>/<day>.html``, pruned after
``retention_days``) and as an artifact of the MLflow run of the version that scored the day
(``monitoring/<kind>/<day>_<model>_v<version>.html``), where it stays with the version. The asset metadata and the
checks link the MLflow copy (the run's artifacts page in the MLflow UI) and, when the folder is served over HTTP
(``base_url``), the file there. A link is computed when the day is checked, from the settings of that moment: links
recorded earlier keep pointing where they pointed (the file keeps its path, so they work while something serves
the folder under that URL). No link carries a user:password or a secret-looking query value
(:func:`resources.settings.redact_url`): a page that needs a login asks for it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import dagster as dg
from pydantic import Field

from resources.settings import DEFAULT_MLFLOW_UI_URL, redact_url

if TYPE_CHECKING:
    from resources.registry import ModelRegistry, VersionInfo


@dataclass(frozen=True)
class LoggedReport:
    """A report logged as an artifact of a version's MLflow run: ``artifact`` is its path within the run, ``url``
    the MLflow UI page that shows it (the run's artifacts page, the file selected)."""

    run_id: str
    experiment_id: str
    artifact: str
    url: str

    @property
    def uri(self) -> str:
        """``runs:/<run id>/<artifact>``: what ``mlflow artifacts download -u`` takes."""
        return f"runs:/{self.run_id}/{self.artifact}"


def mlflow_ui_url(tracking_uri: str, local_ui: str = DEFAULT_MLFLOW_UI_URL) -> str:
    """The MLflow UI's address: a tracking server's own (without any user:password in it), else ``local_ui``."""
    parts = urlsplit(tracking_uri)
    if parts.scheme in ("http", "https"):
        return redact_url(urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")))
    return redact_url(local_ui.rstrip("/"))


class MonitoringReports(dg.ConfigurableResource):
    """Where HTML reports are written, how long they are kept, the URL they are served under (if any), and the
    MLflow UI their MLflow copies are linked in."""

    directory: str
    retention_days: int = 90
    base_url: str | None = None
    mlflow_ui: str = Field(
        default=DEFAULT_MLFLOW_UI_URL,
        description="MLflow UI address for a local (non-HTTP) tracking store; a tracking server is its own UI",
    )

    def path(self, model: str, kind: str, day: date) -> Path:
        path = Path(self.directory) / model / kind / f"{day.isoformat()}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def served_url(self, path: Path) -> str | None:
        """The report's URL under ``base_url``; None when the folder is not served (a browser refuses file:// links
        from a web page, so none is made)."""
        if not self.base_url:
            return None
        relative = path.relative_to(self.directory).as_posix()
        return redact_url(f"{self.base_url.rstrip('/')}/{quote(relative)}")

    @staticmethod
    def artifact(model: str, version: int, kind: str, day: date) -> str:
        """The report's path within the version's MLflow run: it names the model, version and day by itself."""
        return f"monitoring/{kind}/{day.isoformat()}_{model}_v{version}.html"

    def log_to_mlflow(
        self, registry: ModelRegistry, version: VersionInfo, kind: str, day: date, path: Path
    ) -> LoggedReport:
        """Log the report at ``path`` as an artifact of ``version``'s MLflow run (replacing the same day's, if
        checked again) and return where it is, with its MLflow UI link."""
        artifact = self.artifact(version.name, version.version, kind, day)
        folder, name = artifact.rsplit("/", 1)
        client = registry.client()
        with tempfile.TemporaryDirectory(prefix="nightjar-report-") as tmp:
            named = Path(tmp) / name
            shutil.copyfile(path, named)
            client.log_artifact(version.run_id, str(named), folder)
        experiment_id = client.get_run(version.run_id).info.experiment_id
        ui = mlflow_ui_url(registry.tracking_uri, self.mlflow_ui)
        url = f"{ui}/#/experiments/{experiment_id}/runs/{version.run_id}/artifacts/{quote(artifact)}"
        return LoggedReport(run_id=version.run_id, experiment_id=str(experiment_id), artifact=artifact, url=url)

    def prune(self, model: str, kind: str, *, today: date | None = None) -> int:
        """Delete reports (about 4.5 MB each) past the retention window; returns how many.

        The window counts back from ``today``, the wall clock's date (a parameter for tests only), never from the
        day a run checks: checking an old day must not delete reports other runs still link to. A report is kept
        while its day or the time it was last written is within ``retention_days`` of today, so a report just
        written for an old day stays for the run that links it. Only the reports folder is pruned: the MLflow copy
        stays with the version's run.
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
