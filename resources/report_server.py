"""The reports server: the reports folder over HTTP, each stored report rendered as Evidently's page when opened.

Monitoring stores a day's report as Evidently's snapshot (``<model>/<kind>/<day>.json.gz``, about 0.1 MB; see
``assets/monitoring/report_page.py``), not as its 4.7 MB standalone HTML. This server answers
``/<model>/<kind>/<day>.html`` by rendering that snapshot (about 0.2 s; Evidently is imported once, on the first
page), lists the folders and days it holds, and serves nothing outside the folder:

    python -m resources.report_server serve [--dir DIR] [--host 127.0.0.1] [--port 8090]
    python -m resources.report_server render <model>/drift/<day>.json.gz [-o page.html]   # one page, no server

``make dev`` starts it beside the Dagster UI and ``make reports`` alone; the links nightjar records point at it
through ``NIGHTJAR_REPORTS_BASE_URL``. ``--dir`` defaults to the reports folder of the settings
(``NIGHTJAR_REPORTS_DIR``).
"""

from __future__ import annotations

import argparse
import html
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from resources.reports import PAGE_SUFFIX, SUFFIX, day_of


class ReportsHandler(SimpleHTTPRequestHandler):
    """GET ``.../<day>.html``: the stored ``<day>.json.gz`` rendered; a folder: its sub-folders and days."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        target = self._target()
        if target is None:
            self.send_error(HTTPStatus.NOT_FOUND, "not in the reports folder")
        elif target.is_dir():
            self._send(self._listing(target), "text/html; charset=utf-8")
        elif (
            target.name.endswith(PAGE_SUFFIX) and target.with_name(target.name[: -len(PAGE_SUFFIX)] + SUFFIX).is_file()
        ):
            from assets.monitoring.report_page import render

            stored = target.with_name(target.name[: -len(PAGE_SUFFIX)] + SUFFIX)
            try:
                page = render(stored)
            except Exception as error:  # noqa: BLE001 (a damaged file is one page's error, not the server's)
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{stored.name} could not be rendered: {error}")
                return
            self._send(page, "text/html; charset=utf-8")
        else:
            super().do_GET()  # a plain file (an HTML report of an earlier version), or 404

    def _target(self) -> Path | None:
        root = Path(self.directory).resolve()
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        target = (root / relative).resolve()
        return target if target == root or root in target.parents else None

    def _listing(self, folder: Path) -> str:
        root = Path(self.directory).resolve()
        where = folder.relative_to(root).as_posix()
        title = f"nightjar reports: /{'' if where == '.' else where}"
        items = []
        for entry in sorted(folder.iterdir(), key=lambda p: p.name, reverse=True):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                items.append(f'<li><a href="{quote(entry.name)}/">{html.escape(entry.name)}/</a></li>')
            elif day_of(entry) is not None and entry.name.endswith(SUFFIX):
                page = f"{day_of(entry).isoformat()}{PAGE_SUFFIX}"
                items.append(f'<li><a href="{quote(page)}">{html.escape(page)}</a></li>')
        up = '<p><a href="../">..</a></p>' if folder != root else ""
        body = "".join(items) or "<li>no reports yet</li>"
        return f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{up}<ul>{body}</ul>"

    def _send(self, page: str, content_type: str) -> None:
        body = page.encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        pass  # one line per request on stderr says nothing a person needs


def serve(directory: Path, host: str, port: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), partial(ReportsHandler, directory=str(directory)))
    # The port it bound (port 0: any free one), which a caller that asked for any port reads from this line.
    print(f"reports: http://{host}:{server.server_address[1]} (serving {directory})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    served = commands.add_parser("serve", help="serve the reports folder, rendering each report when opened")
    served.add_argument("--dir", type=Path, help="the reports folder (default: NIGHTJAR_REPORTS_DIR's)")
    served.add_argument("--host", default="127.0.0.1")
    served.add_argument("--port", type=int, default=8090)
    rendered = commands.add_parser("render", help="write one stored report as an HTML page")
    rendered.add_argument("report", type=Path, help="a stored report: <reports>/<model>/<kind>/<day>.json.gz")
    rendered.add_argument("-o", "--output", type=Path, help="the page to write (default: beside it, <day>.html)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.dir is None:
            from resources.settings import Settings

            args.dir = Settings.from_env().reports_dir
        serve(args.dir, args.host, args.port)
        return
    from assets.monitoring.report_page import render

    if not args.report.name.endswith(SUFFIX) or not args.report.is_file():
        raise SystemExit(f"{args.report}: not a stored report (a <day>{SUFFIX} file of the reports folder)")
    output = args.output or args.report.with_name(args.report.name[: -len(SUFFIX)] + PAGE_SUFFIX)
    output.write_text(render(args.report), encoding="utf-8")
    print(output, file=sys.stdout)


if __name__ == "__main__":
    main()
