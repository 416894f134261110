"""The dbt project and CLI resource. The manifest is prepared ahead (``make setup`` / CI run ``dbt parse``);
only ``dagster dev`` re-parses it, so loading definitions never runs dbt."""

from __future__ import annotations

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from resources.settings import DBT_PROJECT_DIR, Settings, get_settings


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    _put_dbt_on_path()
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=get_settings().dbt_target
    )
    project.prepare_if_dev()
    return project


def dbt_resource(settings: Settings) -> DbtCliResource:
    # profiles.yml reads the warehouse path from the environment; dbt runs as a child process, so the path this
    # process resolved (from NIGHTJAR_WAREHOUSE_PATH or its default) is handed down the same way.
    os.environ["NIGHTJAR_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    os.environ["NIGHTJAR_DBT_TARGET"] = settings.dbt_target
    return DbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        target=settings.dbt_target,
        dbt_executable=_dbt_executable(),
    )


def _put_dbt_on_path() -> None:
    """Under `dagster dev`, prepare_if_dev() runs `dbt parse` with a plain "dbt" from PATH; a venv that was not
    activated (`.venv/bin/dagster dev`) has it only in its own bin folder."""
    executable = _dbt_executable()
    folder = os.path.dirname(executable)
    if folder and shutil.which("dbt") is None:
        os.environ["PATH"] = os.pathsep.join([folder, os.environ.get("PATH", "")])


def _dbt_executable() -> str:
    """The dbt installed in this Python's environment (the venv's), so a non-activated venv still finds it.

    sys.prefix, not sys.executable: Dagster's code server may run the venv's interpreter through its resolved
    path, outside .venv/bin, while sys.prefix still names the venv.
    """
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"
