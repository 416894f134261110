"""`dg`, Dagster's project CLI, works on the repo ([tool.dg] in pyproject.toml): `dg check defs` passes and `dg
launch` materializes a partition; and loading the definitions prints no warning the
project could avoid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import PROJECT_ROOT, Settings

# Warnings a fresh `import definitions` may print that nightjar cannot avoid: raised inside the libraries.
LIBRARY_WARNINGS = (("DeprecationWarning", "sqlglotrs is deprecated"),)  # sqlglot, through dagster-dbt
WARNING_LINE = re.compile(r"^\S+:\d+: (\w+Warning): (.*)$", re.MULTILINE)


def _dg(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`dg` from the repo root with the project's venv active, in the test's environment (its stores)."""
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(venv_bin.parent), "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(venv_bin / "dg"), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_dg_check_defs_passes(nightjar_env: Settings):
    result = _dg("check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout
    # The venv is the project's: dg has nothing to warn about.
    assert "does not match the virtual environment" not in result.stdout + result.stderr


@pytest.mark.slow
def test_dg_launch_materializes_a_partition(nightjar_env: Settings, defs: dg.Definitions):
    key = dg.AssetKey(["raw", "applications"])
    day = defs.get_assets_def(key).partitions_def.get_last_partition_key()
    result = _dg("launch", "--assets", key.to_user_string(), "--partition", day)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(key) == {day}


def test_loading_the_definitions_prints_no_avoidable_warning(nightjar_env: Settings):
    """A fresh process, as `dg dev` and every run worker load them, with every warning shown (the Beta APIs nightjar
    uses on purpose are silenced by message in definitions.py, KNOWN_BETA_WARNINGS)."""
    code = "import dagster as dg, definitions; dg.Definitions.validate_loadable(definitions.defs)"
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    warnings = WARNING_LINE.findall(result.stderr)
    avoidable = [
        (category, message)
        for category, message in warnings
        if not any(category == c and message.startswith(m) for c, m in LIBRARY_WARNINGS)
    ]
    assert avoidable == []
