"""The dbt project and CLI resource. The manifest is prepared ahead (``make setup`` / CI run ``dbt parse``);
only ``dagster dev`` re-parses it, so loading definitions never runs dbt."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path

from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource, DbtProject
from pydantic import Field

from resources.settings import Settings


@lru_cache(maxsize=4)
def dbt_project(project_dir: Path, target: str) -> DbtProject:
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target=target)
    VenvDbtPreparer().prepare_if_dev(project)
    return project


class VenvDbtPreparer(DagsterDbtProjectPreparer):
    """dagster-dbt's preparer (under ``dagster dev`` only: ``dbt deps`` if the project has packages, then
    ``dbt parse --quiet``, one process at a time) run with this environment's dbt, its manifest published whole.

    dagster-dbt's own preparer runs a plain ``dbt`` from PATH, which a venv that was not activated
    (``.venv/bin/dagster dev``) has only in its own bin folder; here the ``dbt_executable`` is the venv's. And
    dbt writes ``manifest.json`` in place, so a process loading definitions while ``dagster dev`` re-parses (a run,
    a CLI command) could read half of it: dbt parses into a staging folder and the result is renamed into place.
    """

    def prepare(self, project: DbtProject) -> None:
        manifest = Path(project.manifest_path)
        before = manifest.stat().st_mtime if manifest.exists() else 0.0
        # The lock file dagster-dbt's preparer takes (an flock, as its FileLock takes it on POSIX).
        with _flock(manifest.with_suffix(".concurrent-update-lock")):
            if manifest.exists() and manifest.stat().st_mtime > before:
                return  # another process parsed while this one waited
            dbt = NightjarDbtCli(project_dir=project, dbt_executable=dbt_executable())
            has_packages = any((Path(project.project_dir) / name).exists() for name in _PACKAGE_FILES)
            with _staged_target(manifest.parent) as staging:
                for command in (["deps", "--quiet"] if has_packages else None, ["parse", "--quiet"]):
                    if command:
                        dbt.cli(command, target_path=staging).wait()
                _publish(staging, manifest.parent)


@contextmanager
def _staged_target(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` for dbt to parse into, holding the last parse state (partial parsing goes
    on from it); removed afterwards, and any left by a killed parser with it (the caller holds the lock, so no
    other parser is using one)."""
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob(f"{_STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = target / f"{_STAGING_PREFIX}{os.getpid()}"
    staging.mkdir()
    try:
        if (target / PARTIAL_PARSE_FILE).exists():
            shutil.copyfile(target / PARTIAL_PARSE_FILE, staging / PARTIAL_PARSE_FILE)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, target: Path) -> None:
    """Moves what dbt wrote into ``target`` file by file with ``os.replace``, the manifest last: a process that
    loads definitions meanwhile reads the old manifest or the new one, never half of one (dbt writes in place)."""
    written = sorted(
        (path for path in staging.iterdir() if path.is_file()), key=lambda path: path.name == "manifest.json"
    )
    for path in written:
        os.replace(path, target / path.name)


_STAGING_PREFIX = ".parse-"


_PACKAGE_FILES = ("packages.yml", "dependencies.yml")


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# dbt commands that take the window as --event-time-start / --event-time-end (dbt-core 1.9+).
EVENT_TIME_COMMANDS = ("build", "run")


class NightjarDbtCli(DbtCliResource):
    """dbt's CLI, kept from re-parsing the project on every run.

    dbt re-parses everything (seconds) when ``--vars``, the profile or the target differ from its saved parse
    state. So the partition window goes as dbt's event-time flags, which parsing ignores (read only at execution,
    see ``macros/in_window.sql``), the warehouse file and the Spark Connect address are constant vars
    (``profiles.yml`` reads ``warehouse_path``, ``spark_remote``), and the parse state of the last run is kept in
    ``state_dir`` and handed to the next (each run gets its own target folder, which would otherwise start from the
    state prepared at setup, under another profile).
    """

    warehouse_path: str | None = Field(default=None, description="DuckDB file of the dev target (None: prod target)")
    state_dir: str | None = Field(default=None, description="Where dbt's partial-parse state is kept between runs")
    spark_remote: str | None = Field(
        default=None, description="The Spark Connect address: the var profiles.yml hands dbt-spark as spark.remote"
    )

    @cached_property
    def _cli_version(self):
        """The dbt-core installed beside this Python. dagster-dbt asks the executable (`dbt --version`, a second
        dbt start-up: 1.7 s of CPU, 3 s here, on every run) only to tell dbt-core from the Fusion engine; ours is
        always dbt-core from this environment (see dbt_executable). ARCHITECTURE.md lists this override."""
        from importlib.metadata import version as installed_version

        from packaging import version

        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        """No dbt adapter in this process. dagster-dbt builds one before every dbt command (imports dbt-core's
        config and the adapter, loads the profile and project: 1.3-1.7 s of each dbt step, before dbt starts) only
        for ``fetch_column_metadata`` / ``fetch_row_counts``, which nightjar never calls (column types come from the
        manifest: assets/transform/translator.py); without one, dagster-dbt runs dbt as it does for Fusion.
        ARCHITECTURE.md lists this override."""
        return None

    def vars_args(self, values: dict[str, str] | None = None) -> list[str]:
        """``--vars`` for a dbt command: ``values`` plus the warehouse path or the Spark Connect address. Keep it
        constant between runs."""
        constant = {"warehouse_path": self.warehouse_path, "spark_remote": self.spark_remote}
        merged = {**{name: value for name, value in constant.items() if value}, **(values or {})}
        return ["--vars", json.dumps(merged)] if merged else []

    def cli_in_window(self, args: Sequence[str], window: dict[str, str] | None, target_path: Path, **kwargs):
        """``cli(args)`` with the partition ``window`` (``min_date`` inclusive, ``max_date`` exclusive), the
        warehouse var and the saved parse state in ``target_path``; call :meth:`save_parse_state` when done."""
        self._restore_parse_state(target_path)
        return self.cli([*args, *self.window_args(args, window)], target_path=target_path, **kwargs)

    def window_args(self, args: Sequence[str], window: Mapping[str, str] | None) -> list[str]:
        """The window as ``--event-time-start`` / ``--event-time-end`` for ``build`` and ``run`` (dbt keeps its
        parse state however they change), as vars for any other command (which takes no event-time flags: dbt
        re-parses then); with the constant ``--vars`` either way."""
        if window and args and args[0] in EVENT_TIME_COMMANDS:
            event_time = ["--event-time-start", window["min_date"], "--event-time-end", window["max_date"]]
            return [*event_time, *self.vars_args()]
        return self.vars_args(dict(window or {}))

    def save_parse_state(self, target_path: Path) -> None:
        produced = Path(target_path) / PARTIAL_PARSE_FILE
        if self.state_dir and produced.exists():
            state = Path(self.state_dir)
            state.mkdir(parents=True, exist_ok=True)
            partial = state / f"{PARTIAL_PARSE_FILE}.{os.getpid()}.tmp"
            shutil.copyfile(produced, partial)
            os.replace(partial, state / PARTIAL_PARSE_FILE)  # atomic: a concurrent run reads old or new, never half

    def seed_parse_state(self) -> bool:
        """Parse the project as the runs do (their profile, target and constant vars) and save that as the kept
        parse state, unless one is kept already; True when it parsed. Without it the first run after setup
        re-parses everything (the state prepared at setup, in the project's target folder, was parsed without the
        runs' vars): seconds of a first backfill. ``make setup`` runs it (``python -m resources.dbt_parse_state``)."""
        import tempfile

        if not self.state_dir or (Path(self.state_dir) / PARTIAL_PARSE_FILE).exists():
            return False
        with tempfile.TemporaryDirectory(prefix="nightjar-dbt-parse-") as target:
            self.cli(["parse", *self.vars_args()], target_path=Path(target)).wait()
            self.save_parse_state(Path(target))
        return True

    def _restore_parse_state(self, target_path: Path) -> None:
        saved = Path(self.state_dir) / PARTIAL_PARSE_FILE if self.state_dir else None
        if saved is not None and saved.exists():
            Path(target_path).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, Path(target_path) / PARTIAL_PARSE_FILE)


def dbt_resource(settings: Settings) -> NightjarDbtCli:
    return NightjarDbtCli(
        project_dir=dbt_project(settings.dbt_project_dir, settings.dbt_target),
        profiles_dir=str(settings.dbt_project_dir),
        target=settings.dbt_target,
        dbt_executable=dbt_executable(),
        warehouse_path=str(settings.warehouse_path) if settings.engine == "duckdb" else None,
        state_dir=str(settings.dbt_state_dir),
        spark_remote=settings.spark_remote if settings.engine == "spark" else None,
    )


def dbt_executable() -> str:
    """The dbt installed in this Python's environment (the venv's), so a non-activated venv still finds it.

    sys.prefix, not sys.executable: Dagster's code server may run the venv's interpreter through its resolved
    path, outside .venv/bin, while sys.prefix still names the venv.
    """
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"
