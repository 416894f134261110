"""A monitoring report as stored (Evidently's snapshot, compact) and as a person opens it (Evidently's HTML, titled
with what it covers: model, version, day and reference).

Evidently's standalone HTML of one drift report is about 4.7 MB: 3.5 MB of its JavaScript library and 1.2 MB of
plot data at full float precision, which a year of daily reports turns into gigabytes. What is stored instead is
Evidently's own snapshot (``Snapshot.dumps``: metric results and widgets, everything its HTML is made from) with
floats cut to 6 significant digits (more than a plot or a table shows), gzipped: about 0.09 MB for 19 features.
:func:`render` turns it back into Evidently's page when someone opens it (``python -m resources.report_server``).

Evidently 0.7 keeps a run's ``name`` and ``metadata`` on the snapshot (``Report.run(..., name=, metadata=,
tags=)``), but its HTML shows none of them: the page is titled "Report" whatever it covers. A report opened from a
link or found in the reports folder must say what it is, so the rendered page gets a ``<title>`` and a header
listing what it covers, from the snapshot's own name and metadata, above Evidently's dashboard.

The checks read a run's figures through Evidently's typed results (:func:`preset_results`): the metrics a preset
generated (``MetricContainer.list_metrics``), each one's result under its id (``Snapshot.metric_results`` keyed by
``Metric.metric_id``), as ``SingleValue`` / ``CountValue`` / ``MeanStdValue`` / ``ByLabelValue`` objects with their
tests; not the JSON shapes of ``Snapshot.dict()``.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIX = ".json.gz"  # a stored report: <day>.json.gz
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class ReportAbout:
    """What one report covers: ``title`` (e.g. "Drift of loan_default_risk version 3 on 2026-02-11") and the
    facts listed under it, in order (model, version, day, reference, ...)."""

    title: str
    facts: Mapping[str, str] = field(default_factory=dict)

    def run_kwargs(self) -> dict[str, Any]:
        """Evidently's own record of it (``Report.run`` keyword arguments): kept on the Snapshot."""
        return {
            "name": self.title,
            "metadata": {k: str(v) for k, v in self.facts.items()},
            "tags": [f"{k}={v}" for k, v in self.facts.items()],
        }


def preset_results(snapshot: Any, preset: Any) -> list[tuple[Any, Any]]:
    """Each metric ``preset`` (a DataDriftPreset, ClassificationPreset, ...) generated in the run that made
    ``snapshot``, with Evidently's result of it: (metric, result) pairs in the preset's order."""
    results = snapshot.metric_results
    return [(metric, results[metric.metric_id]) for metric in preset.list_metrics(snapshot.context)]


def save_snapshot(snapshot: Any, path: Path) -> int:
    """Store Evidently's ``snapshot`` at ``path`` (``<day>.json.gz``), compactly; returns the bytes written.

    Written to a temporary file and renamed into place: a crash leaves the previous report, never half of one."""
    data = _rounded(json.loads(snapshot.dumps()))
    body = gzip.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(body)


def render(path: Path) -> str:
    """Evidently's standalone HTML page of the report stored at ``path``, titled and headed by what it covers."""
    from evidently.core.report import Snapshot

    data = json.loads(gzip.decompress(Path(path).read_bytes()))
    page = Snapshot.load_dict(data).get_html_str(as_iframe=False)
    title = data.get("name")
    return titled(page, ReportAbout(title, data.get("metadata") or {})) if title else page


def titled(page: str, about: ReportAbout) -> str:
    """``page`` with ``about``'s title as the document title and a header above the body's content."""
    title = html.escape(about.title)
    facts = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in about.facts.items())
    header = (
        '<header id="nightjar-report-about" style="font-family: sans-serif; margin: 16px 24px;">'
        f'<h1 style="font-size: 1.5em; margin: 0 0 8px;">{title}</h1>'
        '<dl style="display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0;">'
        f"{facts}</dl></header>"
    )
    head, body = "<head>", "<body>"
    if head in page and body in page:
        page = page.replace(head, f"{head}\n<title>{title}</title>", 1)
        return page.replace(body, f"{body}\n{header}", 1)
    # Not Evidently's usual page: the header goes first, which every browser still shows.
    return f"<title>{title}</title>\n{header}\n{page}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
