"""Runs launched the way a deployment launches them: ``dagster job execute`` in a process of its own (a run a test
can kill, or several that race), waited on by polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from resources.settings import PROJECT_ROOT

Found = TypeVar("Found")


def launch_job(
    job: str,
    tags: dict[str, str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    own_group: bool = False,
    config: Path | None = None,
) -> subprocess.Popen:
    """``dagster job execute`` of ``job`` of the real Definitions with ``tags`` (e.g. a range of days), output to
    ``log``. ``env`` is added to this process's environment; ``own_group`` starts it in its own process group, so
    that ``os.killpg`` takes its children (dbt) too; ``config``: a run config YAML file."""
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "job", "execute", "-f", "definitions.py", "-d", str(PROJECT_ROOT), "-j", job]
    if config is not None:
        command += ["-c", str(config)]
    return subprocess.Popen(
        [*command, "--tags", json.dumps(tags)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )


def poll_run(
    what: str, probe: Callable[[], Found | None], proc: subprocess.Popen, log: Path, timeout: float = 900
) -> Found:
    """Poll ``probe`` until it finds something; fail (with the run's log) if the run exits first or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        if proc.poll() is not None:
            pytest.fail(f"the run exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {what} after {timeout} s:\n{log.read_text()[-4000:]}")
