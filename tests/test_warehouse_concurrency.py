"""Two overlapping backfill runs on the multiprocess executor, as the UI launches them, never collide on DuckDB's
single-writer lock: every warehouse step runs in the one-slot `warehouse` pool (dagster_home/dagster.yaml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import PROJECT_ROOT
from tests.chain import RANGE_END, RANGE_START, scalar
from tests.conftest import TEST_ROWS_PER_DAY

pytestmark = pytest.mark.slow


def _launch(tags: dict[str, str], log: Path) -> subprocess.Popen:
    dagster = Path(sys.executable).parent / "dagster"
    env = dict(os.environ, NIGHTJAR_EXECUTOR="multiprocess")
    return subprocess.Popen(
        [str(dagster), "job", "execute", "-f", "definitions.py", "-d", str(PROJECT_ROOT), "-j", "ingest",
         "--tags", json.dumps(tags)],
        cwd=PROJECT_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def test_overlapping_multiprocess_backfills_do_not_hit_the_duckdb_lock(nightjar_env, instance, tmp_path):
    # The webserver or daemon creates the instance's storage before any run; two runs racing to create it is
    # not the case under test.
    assert instance.get_runs() == []
    first = _launch({RANGE_START: "2026-01-01", RANGE_END: "2026-01-04"}, tmp_path / "run1.log")
    second = _launch({RANGE_START: "2026-01-03", RANGE_END: "2026-01-06"}, tmp_path / "run2.log")
    codes = [first.wait(timeout=600), second.wait(timeout=600)]
    logs = (tmp_path / "run1.log").read_text() + (tmp_path / "run2.log").read_text()

    assert "Could not set lock" not in logs
    assert codes == [0, 0], logs[-4000:]
    assert logs.count("RUN_SUCCESS") == 2
    days = 6
    assert scalar(nightjar_env, "SELECT count(*) FROM raw.applications") == days * TEST_ROWS_PER_DAY
    assert scalar(nightjar_env, "SELECT count(*) FROM marts.fct_application_features") == days * TEST_ROWS_PER_DAY
    assert scalar(nightjar_env, "SELECT count(DISTINCT application_id) FROM marts.fct_application_features") == days * TEST_ROWS_PER_DAY
