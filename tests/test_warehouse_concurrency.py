"""Warehouse writers never collide on DuckDB's single-writer lock, and no crash leaves them blocked.

- The writer lock (``resources.warehouse.writer_lock``) is exclusive across processes: checked on the intervals
  each process certainly held it, whatever the timing.
- It dies with its holder: after ``kill -9`` of a holder the next writer gets it at once, no person, no daemon.
- A waiter names the holder (run, pid, since) and the real time it waited.
- Two first runs on a fresh Dagster home, with or without ``make setup`` first, both finish with a run record.
- Two overlapping backfill runs on the multiprocess executor, as the UI launches them, both succeed.
- Opening the DuckDB file waits out another program's lock with backoff and then fails naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import PROJECT_ROOT
from resources.warehouse import DuckDBWarehouse
from resources.warehouse.writer_lock import WriterLockTimeout, exclusive_writer
from tests.chain import RANGE_END, RANGE_START, scalar
from tests.run_launch import launch_job
from tests.stores import TEST_ROWS_PER_DAY

WRITERS, CYCLES = 4, 20
MULTIPROCESS = {"NIGHTJAR_EXECUTOR": "multiprocess"}  # as the UI launches a backfill in a deployment

# One writer process: CYCLES times, take the writer lock, hold it briefly, let go; print the intervals during which
# it certainly held it. All start on one "go" line, once all are ready.
_WRITER = """
import json, sys, time
from pathlib import Path
from resources.warehouse.writer_lock import exclusive_writer
lock, name, cycles = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
held = []
print("ready", flush=True)
sys.stdin.readline()
for cycle in range(cycles):
    with exclusive_writer(lock, run_id=name, poll_seconds=0.005):
        acquired = time.time()
        time.sleep(0.01)
        held.append((acquired, time.time(), name))
print(json.dumps(held))
"""

# Holds the lock as run "crashed-run" until killed.
_HOLDER = """
import sys, time
from pathlib import Path
from resources.warehouse.writer_lock import exclusive_writer
with exclusive_writer(Path(sys.argv[1]), run_id="crashed-run", step="job ingest"):
    print("held", flush=True)
    time.sleep(3600)
"""


def _start(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, **kwargs
    )


def test_writer_lock_is_exclusive_across_processes(tmp_path):
    lock = tmp_path / "w.duckdb.writer.lock"
    writers = [_start(_WRITER, str(lock), f"writer-{i}", str(CYCLES), stdin=subprocess.PIPE) for i in range(WRITERS)]
    for writer in writers:  # blocks until that writer has started
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    intervals = []
    for writer in writers:
        out, _ = writer.communicate(timeout=600)
        assert writer.returncode == 0
        intervals += [tuple(i) for i in json.loads(out)]
    assert len(intervals) == WRITERS * CYCLES
    overlaps = [(a, b) for a, b in combinations(sorted(intervals), 2) if a[2] != b[2] and a[0] < b[1] and b[0] < a[1]]
    assert overlaps == [], f"{len(overlaps)} overlapping holds of the writer lock, e.g. {overlaps[:2]}"


def test_writer_lock_dies_with_its_holder(tmp_path):
    lock = tmp_path / "w.duckdb.writer.lock"
    holder = _start(_HOLDER, str(lock), start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(WriterLockTimeout, match=r"run crashed-run \(job ingest\), pid \d+"),
            exclusive_writer(lock, wait_seconds=0),
        ):
            pass
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=120)
    with exclusive_writer(lock, run_id="next-run", wait_seconds=0) as held:  # no wait at all: the kernel freed it
        assert held["run_id"] == "next-run"


def test_a_waiting_writer_says_for_whom_and_how_long(tmp_path, caplog):
    lock = tmp_path / "w.duckdb.writer.lock"
    holder = _start(_HOLDER, str(lock), start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with (
            caplog.at_level(logging.INFO, logger="nightjar.warehouse"),
            pytest.raises(WriterLockTimeout) as raised,
            exclusive_writer(lock, wait_seconds=2),
        ):
            pass
        waited = time.monotonic() - started
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=120)
    assert f"pid {holder.pid}" in str(raised.value) and "crashed-run" in str(raised.value)
    reported = int(str(raised.value).split(" after ")[1].split(" s ")[0])
    assert 2 <= reported <= waited + 1  # the real time waited, not the setting
    assert any(
        "waiting for the warehouse writer lock" in r.getMessage() and "crashed-run" in r.getMessage()
        for r in caplog.records
    )


# One first run of a trivial asset on the (fresh) home in DAGSTER_HOME; all start on one "go" line.
_FIRST_RUN = """
import sys
import dagster as dg

@dg.asset
def first_use():
    return 1

print("ready", flush=True)
sys.stdin.readline()
with dg.DagsterInstance.get() as instance:
    assert dg.materialize([first_use], instance=instance).success
"""


@pytest.mark.parametrize("prepared", [False, True], ids=["without-setup", "after-setup"])
def test_first_runs_on_a_fresh_home_at_once_all_finish_with_a_record(prepared, nightjar_env):
    home = Path(os.environ["DAGSTER_HOME"])
    assert not (home / "history").exists()
    if prepared:  # what `make setup` does; three preparers at once must not race either
        preparers = [_start("from resources.instance import main; main()", stderr=subprocess.STDOUT) for _ in range(3)]
        outputs = [p.communicate(timeout=600)[0] for p in preparers]
        assert [p.returncode for p in preparers] == [0, 0, 0], outputs
    runs = [_start(_FIRST_RUN, stdin=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready"
    for run in runs:
        run.stdin.write("go\n")
        run.stdin.flush()
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0, 0], outputs
    with dg.DagsterInstance.get() as instance:
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS] * 3


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the DuckDB file until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline(); c.close()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_duckdb_open_waits_for_another_process_lock(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold_lock(path)
    waiting = threading.Event()

    class _Seen(logging.Handler):
        def emit(self, record):
            if "locked by another process" in record.getMessage():
                waiting.set()

    handler = _Seen()
    logging.getLogger("nightjar.warehouse").addHandler(handler)
    outcome: dict = {}

    def query():
        try:
            outcome["value"] = DuckDBWarehouse(path=str(path), lock_wait_seconds=300).query("SELECT 42 AS x")["x"][0]
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    try:
        reader = threading.Thread(target=query)
        reader.start()
        assert waiting.wait(timeout=120), "the open did not report waiting for the lock"
        assert reader.is_alive(), outcome  # still waiting, not failed
        holder.communicate("release\n", timeout=120)
        reader.join(timeout=300)
    finally:
        logging.getLogger("nightjar.warehouse").removeHandler(handler)
        if holder.poll() is None:
            holder.kill()
    assert outcome == {"value": 42}


def test_duckdb_open_gives_up_naming_the_file(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="another process holds its lock") as raised:
            DuckDBWarehouse(path=str(path), lock_wait_seconds=1).query("SELECT 1")
        assert str(path) in str(raised.value)
        assert time.monotonic() - started < 60
    finally:
        holder.communicate("release\n", timeout=120)


@pytest.mark.slow
def test_overlapping_multiprocess_backfills_do_not_hit_the_duckdb_lock(nightjar_env, instance, defs, tmp_path):
    assert instance.get_runs() == []
    first = launch_job(
        "ingest", {RANGE_START: "2026-01-01", RANGE_END: "2026-01-04"}, tmp_path / "run1.log", env=MULTIPROCESS
    )
    second = launch_job(
        "ingest", {RANGE_START: "2026-01-03", RANGE_END: "2026-01-06"}, tmp_path / "run2.log", env=MULTIPROCESS
    )
    codes = [first.wait(timeout=1200), second.wait(timeout=1200)]
    logs = (tmp_path / "run1.log").read_text() + (tmp_path / "run2.log").read_text()

    assert "Could not set lock" not in logs
    assert codes == [0, 0], logs[-4000:]
    runs = instance.get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
    days = 6
    assert scalar(nightjar_env, "SELECT count(*) FROM raw.applications") == days * TEST_ROWS_PER_DAY
    assert scalar(nightjar_env, "SELECT count(*) FROM marts.fct_application_features") == days * TEST_ROWS_PER_DAY
    assert (
        scalar(nightjar_env, "SELECT count(DISTINCT application_id) FROM marts.fct_application_features")
        == days * TEST_ROWS_PER_DAY
    )
