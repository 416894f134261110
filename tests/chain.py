"""Helpers the end-to-end tests share: run jobs of the real Definitions over days, read the warehouse."""

from __future__ import annotations

from datetime import date

import dagster as dg

from assets.partitions import RANGE_END_TAG as RANGE_END
from assets.partitions import RANGE_START_TAG as RANGE_START
from resources.build import open_warehouse
from resources.settings import Settings


def run_days(
    defs: dg.Definitions,
    job: str,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    asset_selection: list[dg.AssetKey] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """One run of ``job`` over the days first..last (inclusive), as a single-run backfill would launch it."""
    if first == last:
        kwargs: dict = {"partition_key": first.isoformat()}
    else:
        kwargs = {"tags": {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}}
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=asset_selection, raise_on_error=raise_on_error, **kwargs
    )


def scalar(settings: Settings, sql: str):
    return open_warehouse(settings).query(sql).iloc[0, 0]
