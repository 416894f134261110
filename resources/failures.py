"""Failures that asking again cannot fix: bad or missing data, a spec that does not fit its mart.

Steps that talk to servers carry :data:`resources.registry.SERVER_RETRY_POLICY`, and Dagster retries every
exception a step raises unless it is a ``dagster.Failure`` with ``allow_retries=False``. A retry of a data failure
only meets the same data three more times (and delays the alert by about 20 s), so such failures leave the step as
:class:`DataFailure`, either raised directly or converted at the asset boundary by :func:`not_retried`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg


class DataFailure(dg.Failure):
    """A failure of the data or the spec, not of a server: never retried, whatever the step's retry policy."""

    def __init__(self, description: str = "", metadata: dict[str, Any] | None = None):
        super().__init__(description=description, metadata=metadata, allow_retries=False)


def _message(error: BaseException) -> str:
    # str(KeyError("x")) is "'x'": the message without the quotes.
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error)


@contextmanager
def not_retried(*errors: type[Exception]) -> Iterator[None]:
    """Inside, an exception of one of ``errors`` leaves as a :class:`DataFailure` with its message (and itself as
    the cause). A ``dagster.Failure`` passes unchanged: it already says whether it may be retried."""
    try:
        yield
    except dg.Failure:
        raise
    except errors as error:
        raise DataFailure(description=_message(error)) from error
