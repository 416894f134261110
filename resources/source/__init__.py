"""Data sources: where the raw applications and outcomes come from, one day at a time."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from resources.source.base import DataSource, SourceDataError
from resources.source.landing import LandingFolderSource
from resources.source.synthetic import SyntheticSource

if TYPE_CHECKING:
    from resources.settings import Settings

__all__ = ["DataSource", "LandingFolderSource", "SourceDataError", "SyntheticSource", "build_source"]


def build_source(settings: Settings) -> DataSource:
    """The source the settings name: ``synthetic`` (generated) or ``landing`` (files in ``landing_dir``)."""
    if settings.source == "synthetic":
        return SyntheticSource(
            rows_per_day=settings.rows_per_day,
            seed=settings.seed,
            label_delay_days=settings.label_delay_days,
            start_date=_iso(settings.start_date),
            drift_start=_iso(settings.drift_start),
            concept_drift_start=_iso(settings.concept_drift_start),
        )
    if settings.source == "landing":
        return LandingFolderSource(path=str(settings.landing_dir))
    raise ValueError(f"unknown source {settings.source!r}: expected 'synthetic' or 'landing'")


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
