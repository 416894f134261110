"""The dbt project and CLI resource. The manifest is prepared ahead (``make setup`` / CI run ``dbt parse``);
only ``dagster dev`` re-parses it, so loading definitions never runs dbt."""

from __future__ import annotations

import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from pydantic import Field

from resources.settings import Settings


@lru_cache(maxsize=4)
def dbt_project(project_dir: Path, target: str) -> DbtProject:
    _put_dbt_on_path()
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target=target)
    project.prepare_if_dev()
    return project


class NightjarDbtCli(DbtCliResource):
    """dbt's CLI with the warehouse file handed over as a dbt var (``profiles.yml`` reads ``warehouse_path``), so
    the path this process was configured with reaches dbt without touching the process environment."""

    warehouse_path: str | None = Field(default=None, description="DuckDB file of the dev target (None: prod target)")

    def vars_args(self, values: dict[str, str] | None = None) -> list[str]:
        """``--vars`` for a dbt command: ``values`` (e.g. the partition window) plus the warehouse path."""
        merged = {**({"warehouse_path": self.warehouse_path} if self.warehouse_path else {}), **(values or {})}
        return ["--vars", json.dumps(merged)] if merged else []


def dbt_resource(settings: Settings) -> NightjarDbtCli:
    return NightjarDbtCli(
        project_dir=dbt_project(settings.dbt_project_dir, settings.dbt_target),
        profiles_dir=str(settings.dbt_project_dir),
        target=settings.dbt_target,
        dbt_executable=_dbt_executable(),
        warehouse_path=str(settings.warehouse_path) if settings.env == "local" else None,
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
