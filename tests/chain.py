"""Helpers the end-to-end tests share: run jobs of the real Definitions over days, read the warehouse, run dbt's
own CLI on the project."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg

from assets.partitions import RANGE_END_TAG as RANGE_END
from assets.partitions import RANGE_START_TAG as RANGE_START
from resources.build import open_warehouse
from resources.settings import DBT_PROJECT_DIR, Settings


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


def dbt_cli(args: list[str], target_path: Path, settings: Settings) -> subprocess.CompletedProcess:
    """dbt's own CLI on the repo's dbt project, as CI runs it, on the warehouse of ``settings``; its artifacts
    (run_results.json, manifest.json) go to ``target_path``. Returns the finished process, output captured."""
    dbt = Path(sys.executable).parent / "dbt"
    dbt_vars = {"warehouse_path": str(settings.warehouse_path)}
    return subprocess.run(
        [*(str(dbt), *args), "--profiles-dir", ".", "--project-dir", "."]
        + ["--target-path", str(target_path), "--vars", json.dumps(dbt_vars)],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )
