"""A user's own data through the landing folder, end to end into the warehouse: a good day lands, a bad file
fails its partition with a message naming the file and column, and the day already stored is left as it was.

The loan applications are declared with origin synthetic_loans; here they are read from the landing folder
(<landing>/raw/applications/<day>.csv) by the raw-asset factory's asset for the same declaration, with
``complete_when: {quiet_seconds: 0}``: the test writes each file whole before it ingests it."""

from __future__ import annotations

import dataclasses
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from assets.partitions import build_daily_partitions
from assets.raw import build_raw_assets
from resources.build import build_resources
from resources.source import SyntheticSource
from resources.source.declarations import load_raw_tables
from resources.source.schema import CompleteWhen
from tests.chain import scalar
from tests.stores import point_stores_at

DAY = date(2026, 3, 1)


@pytest.fixture
def landing(tmp_path, monkeypatch):
    folder = tmp_path / "landing"
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_LANDING_DIR=str(folder))
    table = dataclasses.replace(
        load_raw_tables(settings.manifest_path)["raw.applications"],
        origin="landing",
        complete_when=CompleteWhen(quiet_seconds=0),
    )
    assets = build_raw_assets([table], build_daily_partitions(settings), settings.warehouse_kind)
    resources = build_resources(settings)
    resources = {k: resources[k] for k in ("source", "warehouse", "alerts")}

    def materialize(day: date) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, resources=resources, partition_key=day.isoformat(), raise_on_error=False)

    return settings, materialize, folder


def _write_day(folder, frame: pd.DataFrame) -> None:
    path = folder / "raw" / "applications" / f"{DAY.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_bad_landing_file_fails_the_partition_and_keeps_what_was_stored(landing):
    settings, materialize, folder = landing
    good = pd.concat(SyntheticSource(rows_per_day=120).applications(DAY), ignore_index=True)
    _write_day(folder, good)
    assert materialize(DAY).success
    stored = "SELECT count(*) FROM raw.applications WHERE application_date = DATE '2026-03-01'"
    assert scalar(settings, stored) == 120

    bad = good.astype(str)
    bad.loc[bad.index[:7], "credit_score"] = "excellent"
    _write_day(folder, bad)
    result = materialize(DAY)
    assert not result.success
    failure = " ".join(str(e.event_specific_data) for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "2026-03-01.csv" in failure and "credit_score" in failure and "7 row" in failure
    assert scalar(settings, stored) == 120
    assert scalar(settings, "SELECT min(credit_score) FROM raw.applications") == good["credit_score"].min()
