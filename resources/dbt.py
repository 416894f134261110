"""The dbt project and CLI resource. The manifest is prepared ahead (``make setup`` / CI run ``dbt parse``);
only ``dagster dev`` re-parses it, so loading definitions never runs dbt."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
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


PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# dagster-dbt builds the dbt process's environment from os.environ when `cli` is called and has no parameter
# for it: the window is set for that call only, under this lock, and restored at once.
_ENVIRON_LOCK = threading.Lock()


class NightjarDbtCli(DbtCliResource):
    """dbt's CLI, kept from re-parsing the project on every run.

    dbt re-parses everything (seconds) when ``--vars``, the profile or the target differ from its saved parse
    state. So the partition window goes through the environment (read only at execution, see
    ``macros/in_window.sql``), the warehouse file is a constant var (``profiles.yml`` reads ``warehouse_path``),
    and the parse state of the last run is kept in ``state_dir`` and handed to the next (each run gets its own
    target folder, which would otherwise start from the state prepared at setup, under another profile).
    """

    warehouse_path: str | None = Field(default=None, description="DuckDB file of the dev target (None: prod target)")
    state_dir: str | None = Field(default=None, description="Where dbt's partial-parse state is kept between runs")
    spark_remote: str | None = Field(
        default=None, description="The Spark Connect address dbt-spark's session method reads (SPARK_REMOTE)"
    )

    @cached_property
    def _cli_version(self):
        """The dbt-core installed beside this Python. dagster-dbt asks the executable (`dbt --version`, a second
        dbt start-up: 1-3 s on every run) only to tell dbt-core from the Fusion engine; ours is always dbt-core
        from this environment (see _dbt_executable)."""
        from importlib.metadata import version as installed_version

        from packaging import version

        return version.parse(installed_version("dbt-core"))

    def vars_args(self, values: dict[str, str] | None = None) -> list[str]:
        """``--vars`` for a dbt command: ``values`` plus the warehouse path. Keep it constant between runs."""
        merged = {**({"warehouse_path": self.warehouse_path} if self.warehouse_path else {}), **(values or {})}
        return ["--vars", json.dumps(merged)] if merged else []

    def cli_in_window(self, args: Sequence[str], window: dict[str, str] | None, target_path: Path, **kwargs):
        """``cli([*args, *vars_args()])`` with the partition ``window`` (``min_date``, ``max_date``) in dbt's
        environment and the saved parse state in ``target_path``; call :meth:`save_parse_state` when done."""
        self._restore_parse_state(target_path)
        window_env = {f"NIGHTJAR_DBT_{name.upper()}": value for name, value in (window or {}).items()}
        if self.spark_remote:
            window_env["SPARK_REMOTE"] = self.spark_remote
        with _ENVIRON_LOCK, _environ(window_env):
            return self.cli([*args, *self.vars_args()], target_path=target_path, **kwargs)

    def save_parse_state(self, target_path: Path) -> None:
        produced = Path(target_path) / PARTIAL_PARSE_FILE
        if self.state_dir and produced.exists():
            state = Path(self.state_dir)
            state.mkdir(parents=True, exist_ok=True)
            partial = state / f"{PARTIAL_PARSE_FILE}.{os.getpid()}.tmp"
            shutil.copyfile(produced, partial)
            os.replace(partial, state / PARTIAL_PARSE_FILE)  # atomic: a concurrent run reads old or new, never half

    def _restore_parse_state(self, target_path: Path) -> None:
        saved = Path(self.state_dir) / PARTIAL_PARSE_FILE if self.state_dir else None
        if saved is not None and saved.exists():
            Path(target_path).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, Path(target_path) / PARTIAL_PARSE_FILE)


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_resource(settings: Settings) -> NightjarDbtCli:
    return NightjarDbtCli(
        project_dir=dbt_project(settings.dbt_project_dir, settings.dbt_target),
        profiles_dir=str(settings.dbt_project_dir),
        target=settings.dbt_target,
        dbt_executable=_dbt_executable(),
        warehouse_path=str(settings.warehouse_path) if settings.engine == "duckdb" else None,
        state_dir=str(settings.dbt_state_dir),
        spark_remote=settings.spark_remote if settings.engine == "spark" else None,
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
