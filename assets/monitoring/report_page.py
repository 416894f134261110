"""What an Evidently report is about, written into the report itself: model, version, day and reference.

Evidently 0.7 keeps a run's ``name``, ``metadata`` and ``tags`` on the Snapshot (``Report.run(..., name=,
metadata=, tags=)``), but its HTML shows none of them: the page is titled "Report" whatever it covers. A report
opened from a link, downloaded from MLflow or found in the reports folder must say what it is, so the saved page gets
a ``<title>`` and a header listing what it covers, above Evidently's own dashboard.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


def save_html(snapshot: Any, path: Path, about: ReportAbout | None) -> None:
    """Evidently's standalone HTML of ``snapshot`` at ``path``, titled and headed by ``about`` when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page = snapshot.get_html_str(as_iframe=False)
    if about is not None:
        page = titled(page, about)
    path.write_text(page, encoding="utf-8")


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
