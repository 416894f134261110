"""A full disk under the warehouse fails naming the file and "no space left on device", not DuckDB's follow-on
"cannot rollback - no transaction is active", and the days stored before stay whole.

The disk is a real one: a 3 MB tmpfs mounted in the test's folder (skipped where this process may not mount)."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from resources.warehouse import DuckDBWarehouse

ROWS = 20_000


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _day(day: date) -> pd.DataFrame:
    rng = np.random.default_rng(day.toordinal())
    return pd.DataFrame({"d": pd.Timestamp(day), "x": rng.random(ROWS), "s": ["the same long text value " * 2] * ROWS})


def test_a_full_disk_names_the_file_and_keeps_the_stored_days(small_disk):
    warehouse = DuckDBWarehouse(path=str(small_disk / "w.duckdb"))
    first = date(2026, 1, 1)
    stored = []
    with pytest.raises(Exception) as raised:  # noqa: PT011 - DuckDB's own exception class, whichever it is
        for n in range(200):
            day = first + timedelta(days=n)
            warehouse.replace_window("raw.t", "d", day, day + timedelta(days=1), [_day(day)])
            stored.append(day)
    message = str(raised.value) + "\n".join(getattr(raised.value, "__notes__", []))
    assert "no space left on device" in message.lower() and str(small_disk / "w.duckdb") in message
    assert "cannot rollback" not in message
    assert stored, "the disk was full before the first day"
    counts = warehouse.query("SELECT d, count(*) AS n FROM raw.t GROUP BY d ORDER BY d")
    assert [ts.date() for ts in counts["d"]] == stored and set(counts["n"]) == {ROWS}
