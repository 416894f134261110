"""Where raw rows come from: the one ``source`` resource reads any declared table for a day from its declared
origin, the landing folder or a generator (the built-in synthetic loans), so both live side by side.

A landing file is read only once it is complete by its table's ``complete_when`` (``resources.source.schema.
CompleteWhen``); one that is there but not complete yet raises :class:`FileNotComplete`: the day has not arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from resources.source.base import SourceDataError, as_day
from resources.source.schema import LANDING, RawTable
from resources.source.synthetic import SyntheticSource

if TYPE_CHECKING:
    import pandas as pd

    from resources.settings import Settings

__all__ = [
    "FileNotComplete",
    "PortableSources",
    "RawSources",
    "SourceDataError",
    "SourceDay",
    "SyntheticSource",
    "build_source",
]


class FileNotComplete(SourceDataError):
    """A day's landing file is there but not complete yet (still being written, its marker missing, it changed
    while it was read...): the day has not arrived yet. Not a broken contract: the stored day is kept, nothing is
    published for it (not even an empty day), and a later run reads the file once it is complete. A
    ``SourceDataError`` so that code unaware of it still refuses the day rather than publishing it."""

    def __init__(self, message: str, file: Path | None = None) -> None:
        super().__init__(message)
        self.file = file


@dataclass(frozen=True)
class SourceDay:
    """One table's rows for one day: ``chunks`` is None when a landing table has no file that day (a generator
    always yields, maybe no chunks: it decides which days have rows); ``origin`` names the file or generator."""

    chunks: Iterator[pd.DataFrame] | None
    origin: str
    file: Path | None = None


class RawSources(dg.ConfigurableResource):
    """Reads declared raw tables: ``landing`` tables from ``landing_dir``, generated ones from their generator."""

    landing_dir: str = Field(description="Landing folder: <landing_dir>/<source>/<table>/<day>.csv|.parquet")
    synthetic_loans: SyntheticSource = Field(
        description="The built-in synthetic loan generator (origin synthetic_loans)"
    )

    def read(self, table: RawTable, day: date) -> SourceDay:
        """The day's rows; raises :class:`FileNotComplete` (now, or from ``chunks`` once read) when a landing file
        is not complete yet, :class:`SourceDataError` when the data breaks the declaration."""
        day = as_day(day)
        if table.origin == LANDING:
            from resources.source.landing import LandingFolder

            folder = LandingFolder(self.landing_dir)
            found = folder.complete_file(table, day)  # raises FileNotComplete
            if found is None:
                expected = " or ".join(str(p) for p in folder.candidates(table, day))
                return SourceDay(None, f"no file (expected {expected})")
            file, state = found
            return SourceDay(folder.read(table, day, file, state), str(file), file)
        generator = self.generator(table.origin)
        return SourceDay(generator.read(table.name, day), f"generator {table.origin} ({generator.describe()})")

    def generator(self, name: str) -> SyntheticSource:
        if name == "synthetic_loans":
            return self.synthetic_loans
        raise SourceDataError(f"no generator named {name!r}")

    def portable(self) -> PortableSources:
        """The same sources as plain values, which pickle (a Dagster resource does not): a day is then read where
        the data is, e.g. on a Spark executor that sees the landing folder."""
        generator = self.synthetic_loans
        return PortableSources(
            landing_dir=self.landing_dir,
            synthetic_loans={name: getattr(generator, name) for name in type(generator).model_fields},
        )

    def describe(self, table: RawTable) -> str:
        if table.origin == LANDING:
            return f"landing folder {Path(self.landing_dir) / table.source / table.name}"
        return f"generator {table.origin} ({self.generator(table.origin).describe()})"


@dataclass(frozen=True)
class PortableSources:
    """What a :class:`RawSources` reads from, as plain values (see :meth:`RawSources.portable`)."""

    landing_dir: str
    synthetic_loans: dict[str, Any]

    def read(self, table: RawTable, day: date) -> SourceDay:
        """As :meth:`RawSources.read`."""
        return _sources(self.landing_dir, tuple(sorted(self.synthetic_loans.items()))).read(table, day)


@lru_cache(maxsize=8)
def _sources(landing_dir: str, synthetic_loans: tuple[tuple[str, Any], ...]) -> RawSources:
    """The resource :class:`PortableSources` stands for, built once per process: a Dagster resource validates its
    config when built (1.7 ms), which a year's backfill paid for every table and day (1.2 s a table,
    ``python -m bench.backfill``). The resources are immutable: one serves every read."""
    return RawSources(landing_dir=landing_dir, synthetic_loans=SyntheticSource(**dict(synthetic_loans)))


def build_source(settings: Settings) -> RawSources:
    return RawSources(
        landing_dir=str(settings.landing_dir.absolute()),  # the same folder from any working directory
        synthetic_loans=SyntheticSource(
            rows_per_day=settings.rows_per_day,
            seed=settings.seed,
            label_delay_days=settings.label_delay_days,
            start_date=_iso(settings.start_date),
            drift_start=_iso(settings.drift_start),
            concept_drift_start=_iso(settings.concept_drift_start),
        ),
    )


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
