"""Alerts: one call that always logs and, when a webhook is configured, posts the alert as JSON.

The payload is Slack-compatible (Slack incoming webhooks read the top-level ``text``) and keeps the structured
fields for any other receiver. The webhook URL usually embeds a secret token, so it comes in through
``dagster.EnvVar`` and no error message ever shows more of it than the host.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

SOURCE = "nightjar"
SEVERITIES = ("warning", "error")
_SEVERITY_ALIASES = {"warn": "warning"}  # dg.AssetCheckSeverity.WARN.value is "WARN"
_LOG_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR}

_default_logger = logging.getLogger("nightjar.alerts")


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept an alert. The message names the host only, never the path or token."""


def normalize_severity(severity: str) -> str:
    """``"warning"`` or ``"error"``; accepts any case and ``"warn"`` (so AssetCheckSeverity values fit)."""
    value = severity.strip().lower()
    value = _SEVERITY_ALIASES.get(value, value)
    if value not in SEVERITIES:
        raise ValueError(f"alert severity {severity!r} must be one of {SEVERITIES}")
    return value


def webhook_host(url: str) -> str:
    """Host (and port) of a URL: safe to show, unlike the path, query or user info, which may hold a token."""
    parts = urlsplit(url)
    host = parts.hostname or "(no host)"
    return f"{host}:{parts.port}" if parts.port else host


def build_payload(title: str, severity: str, text: str, details: dict | None) -> dict[str, Any]:
    """The JSON body. ``text`` is what Slack shows (title and text together); ``message`` is the text alone."""
    return {
        "text": f"[{severity.upper()}] {title}\n{text}",
        "title": title,
        "severity": severity,
        "message": text,
        "details": details or {},
        "source": SOURCE,
    }


class AlertsResource(dg.ConfigurableResource):
    """Sends alerts: always to the log, and to ``webhook_url`` (Slack or any JSON receiver) when it is set."""

    webhook_url: str | None = Field(
        default=None, description="Webhook that receives alerts as JSON (set from NIGHTJAR_ALERT_WEBHOOK_URL)"
    )
    timeout_seconds: float = Field(default=10, gt=0, description="Timeout of one webhook POST")

    def send(
        self,
        title: str,
        severity: str,
        text: str,
        details: dict | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        """Log the alert at WARNING or ERROR, then POST it to the webhook if one is configured.

        ``log`` is a Dagster logger (``context.log``) so the alert shows in the run or tick logs; without it the
        standard ``nightjar.alerts`` logger is used. Raises :class:`AlertDeliveryError` if the webhook refuses the
        alert or cannot be reached: a sensor tick then fails visibly and is evaluated again, rather than losing
        the alert silently.
        """
        severity = normalize_severity(severity)
        logger = log or _default_logger
        logger.log(_LOG_LEVELS[severity], "%s: %s", title, text)
        if self.webhook_url:
            self._post(build_payload(title, severity, text, details))

    def _post(self, payload: dict[str, Any]) -> None:
        url = self.webhook_url or ""
        host = webhook_host(url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise AlertDeliveryError(f"alert webhook URL for host {host} must start with http:// or https://")
        # default=str: details may carry dates or numpy numbers; an alert must not fail on how a value prints.
        body = json.dumps(payload, default=str).encode("utf-8")
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            # `from None`: the original exception carries the full URL, token included.
            raise AlertDeliveryError(f"alert webhook at {host} answered HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:  # URLError, timeouts, refused connections
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise AlertDeliveryError(f"could not reach alert webhook at {host}: {reason}") from None
