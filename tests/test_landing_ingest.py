"""A user's own data through the landing folder, end to end into the warehouse: a good day lands, a bad file
fails its partition with a message naming the file and column, and the day already stored is left as it was."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from resources.source import SyntheticSource
from tests.chain import run_days, scalar
from tests.conftest import point_stores_at

DAY = date(2026, 3, 1)


@pytest.fixture
def landing(tmp_path, monkeypatch):
    folder = tmp_path / "landing"
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_SOURCE="landing", NIGHTJAR_LANDING_DIR=str(folder))
    from definitions import build_definitions

    return settings, build_definitions(settings), folder


def _write_day(folder, frame: pd.DataFrame) -> None:
    path = folder / "applications" / f"{DAY.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_bad_landing_file_fails_the_partition_and_keeps_what_was_stored(landing):
    settings, defs, folder = landing
    good = pd.concat(SyntheticSource(rows_per_day=120).applications(DAY), ignore_index=True)
    _write_day(folder, good)
    raw = [k for k in defs.resolve_job_def("ingest").asset_layer.selected_asset_keys if k.path[0] == "raw"]
    assert run_days(defs, "ingest", DAY, DAY, asset_selection=raw).success
    stored = "SELECT count(*) FROM raw.applications WHERE application_date = DATE '2026-03-01'"
    assert scalar(settings, stored) == 120

    bad = good.astype(str)
    bad.loc[bad.index[:7], "credit_score"] = "excellent"
    _write_day(folder, bad)
    result = run_days(defs, "ingest", DAY, DAY, asset_selection=raw, raise_on_error=False)
    assert not result.success
    failure = " ".join(str(e.event_specific_data) for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "2026-03-01.csv" in failure and "credit_score" in failure and "7 row" in failure
    assert scalar(settings, stored) == 120
    assert scalar(settings, "SELECT min(credit_score) FROM raw.applications") == good["credit_score"].min()
