"""What the alerting sensors read besides events: the time (a clock tests replace), the time zone their hours are
in (``NIGHTJAR_TIMEZONE``), and the partition a run was tagged with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assets.partitions import RANGE_END_TAG, RANGE_START_TAG

PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_TAGS = (RANGE_START_TAG, RANGE_END_TAG)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock. Tests pass their own ``clock`` to :func:`jobs.sensors.build_sensors` instead."""
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"environment variable NIGHTJAR_TIMEZONE={name!r} is not a known time zone") from None


def run_partition(tags: Mapping[str, str]) -> str | None:
    """The run's partition (``start...end`` for a range run), or None for an unpartitioned run."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    start, end = (tags.get(t) for t in PARTITION_RANGE_TAGS)
    return f"{start}...{end}" if start and end else None
