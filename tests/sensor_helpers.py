"""Test helpers for alerts and sensors: a local webhook that records what it receives, and one sensor tick."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg

from resources.alerts import AlertsResource


class Webhook:
    """A local HTTP server recording every POSTed JSON body; paths containing /fail answer 500."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failing = "/fail" in self.path
                if not failing:
                    received.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.base}/hooks/T000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def alerts(self) -> AlertsResource:
        return AlertsResource(webhook_url=self.url, timeout_seconds=5)


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, alerts: AlertsResource, cursor: str | None):
    """Evaluate a sensor once, as the daemon would; returns (result, cursor to pass to the next tick)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts})
    result = sensor(context)
    new_cursor = result.cursor if isinstance(result, dg.SensorResult) and result.cursor else cursor
    return result, new_cursor
