"""Alerts: one call that always logs and, when a webhook is configured, posts the alert as JSON.

The payload is Slack-compatible (Slack incoming webhooks read the top-level ``text``) and keeps the structured
fields for any other receiver. The webhook URL usually embeds a secret token, so it comes in through
``dagster.EnvVar`` and no error message ever shows more of it than the host.

Alerts are sent from sensors and hooks, which have no retry policy, so the POST retries itself (tenacity): a
webhook that does not answer, times out or answers 408, 425, 429 or 5xx is tried again after a short exponential
backoff. A webhook that stays down never fails the caller: :meth:`AlertsResource.send` logs that the alert was not
delivered (the alert itself is already in the log) and returns ``False``.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field, PrivateAttr

SOURCE = "nightjar"
SEVERITIES = ("warning", "error")
_SEVERITY_ALIASES = {"warn": "warning"}  # dg.AssetCheckSeverity.WARN.value is "WARN"
_LOG_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR}
# Answers that may change on a later attempt: timeout, too early, too many requests, server errors.
_RETRYABLE_STATUS = frozenset({408, 425, 429})

_default_logger = logging.getLogger("nightjar.alerts")


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept an alert. The message names the host only, never the path or token.

    ``retryable``: whether another attempt may succeed (unreachable, timeout, 408/425/429/5xx) or not (any other
    4xx: a wrong URL or token stays wrong)."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


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
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="POST attempts per alert when the webhook is unreachable or answers 408/425/429/5xx",
    )
    retry_delay_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the second attempt; doubled before each further one (+/- 50%)"
    )
    # Set when an alert could not be delivered after every attempt: the next alerts sent through this resource
    # instance (the same sensor tick) get one attempt each, so a dead webhook cannot stall a tick alert by alert.
    _webhook_down: bool = PrivateAttr(default=False)

    def send(
        self,
        title: str,
        severity: str,
        text: str,
        details: dict | None = None,
        log: logging.Logger | None = None,
    ) -> bool:
        """Log the alert at WARNING or ERROR, then POST it to the webhook if one is configured.

        ``log`` is a Dagster logger (``context.log``) so the alert shows in the run or tick logs; without it the
        standard ``nightjar.alerts`` logger is used. Never raises because of the webhook: it is retried (see
        :meth:`deliver`), and if it stays down that is logged at ERROR and ``False`` is returned. Returns ``True``
        when the alert reached every configured destination (the log only, without a webhook). Raises
        ``ValueError`` for an unknown severity, a mistake in the calling code.
        """
        severity = normalize_severity(severity)
        logger = log or _default_logger
        logger.log(_LOG_LEVELS[severity], "%s: %s", title, text)
        if not self.webhook_url:
            return True
        try:
            self.deliver(build_payload(title, severity, text, details), log=logger)
        except AlertDeliveryError as exc:
            logger.error("alert %r was not delivered to the webhook (it is in this log only): %s", title, exc)
            return False
        return True

    def deliver(self, payload: dict[str, Any], log: logging.Logger | None = None) -> None:
        """POST ``payload`` to the webhook, retrying what may pass on a later attempt with exponential backoff
        (``retry_delay_seconds``, doubled each time, +/- 50% jitter). Raises :class:`AlertDeliveryError` (the last
        attempt's) when every attempt failed, or at once when retrying cannot help."""
        import tenacity  # only when an alert goes to a webhook: ~15 ms of imports kept off definitions load

        logger = log or _default_logger
        attempts = 1 if self._webhook_down else self.max_attempts

        def log_retry(state) -> None:  # a tenacity.RetryCallState
            logger.warning(
                "%s (attempt %d of %d); retrying in %.1f s",
                state.outcome.exception(),
                state.attempt_number,
                attempts,
                state.next_action.sleep,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, AlertDeliveryError) and exc.retryable),
            stop=tenacity.stop_after_attempt(attempts),
            # delay * 2**(attempt - 1) * (0.5 + uniform(0, 1)): half of it fixed, the other half-to-one-and-a-half
            # drawn (the sum of tenacity's fixed and "full jitter" exponential waits).
            wait=tenacity.wait_exponential(multiplier=self.retry_delay_seconds / 2)
            + tenacity.wait_random_exponential(multiplier=self.retry_delay_seconds),
            before_sleep=log_retry,
            reraise=True,  # the last attempt's AlertDeliveryError, not tenacity's RetryError
        )
        try:
            retrying(self._post, payload)
        except AlertDeliveryError:
            self._webhook_down = True
            raise
        self._webhook_down = False

    def _post(self, payload: dict[str, Any]) -> None:
        """One POST; :class:`AlertDeliveryError` (saying whether a retry may help) if it is not accepted."""
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
            raise AlertDeliveryError(
                f"alert webhook at {host} answered HTTP {exc.code} {exc.reason}",
                retryable=exc.code in _RETRYABLE_STATUS or exc.code >= 500,
            ) from None
        except OSError as exc:  # URLError, timeouts, refused connections
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise AlertDeliveryError(f"could not reach alert webhook at {host}: {reason}", retryable=True) from None
