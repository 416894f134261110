"""Dagster's SQLite run and schedule storage, created by one process at a time.

Dagster creates a fresh home's SQLite databases (tables, then an alembic stamp) in whichever process opens the
instance first, with no lock: two runs started at once on a fresh ``DAGSTER_HOME`` crash one of them (``table
secondary_indexes already exists``, ``table jobs already exists``) before it has a run record, and can leave the
alembic table with two rows, which every later process refuses ("Version table 'alembic_version' has more than
one head present"): a home broken until a person deletes it. Measured here: 8 of 8 fresh homes opened by three
processes at once.

These classes are Dagster's own, unchanged, except that creating (or opening) their database holds an OS lock on
a file beside it, so the second process waits and then finds the database made. The event log takes the same
lock (``nightjar_instance.event_log``). Listed in ARCHITECTURE.md's register: a Dagster that serialises its own
first-time set-up makes these unnecessary; ``tests/test_first_use.py`` fails if they stop being used or stop
working.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# Dagster's documented module paths for configuring its SQLite storages in dagster.yaml.
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage

CREATE_LOCK = ".nightjar-create.lock"


@contextmanager
def creation_lock(base_dir: str) -> Iterator[None]:
    """Hold an exclusive OS lock on ``<base_dir>/.nightjar-create.lock`` (freed by the kernel if we die)."""
    os.makedirs(base_dir, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, as Dagster
        yield
        return
    fd = os.open(os.path.join(base_dir, CREATE_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def dagster_home() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise dg.DagsterInvariantViolationError(
            "nightjar_instance: no base_dir in dagster.yaml's storage config and DAGSTER_HOME is not set"
        )
    return os.path.abspath(os.path.expanduser(home))


def _base_dir(config_value: dict, *default: str) -> str:
    """``base_dir`` from dagster.yaml, or where Dagster's default storage keeps it under ``DAGSTER_HOME``: a home
    switched to these classes keeps its history. Read from the environment because a storage class is never told
    which home it belongs to (open a home as Dagster's processes do, with ``DAGSTER_HOME`` pointing at it)."""
    return config_value.get("base_dir") or os.path.join(dagster_home(), *default)


class _CreatedUnderLock:
    """``from_config_value`` of Dagster's SQLite storage classes, holding :func:`creation_lock` while the storage
    creates (or opens) its database. Config: ``base_dir`` (default ``$DAGSTER_HOME/<DEFAULT_DIR>``)."""

    DEFAULT_DIR: tuple[str, ...] = ()

    @classmethod
    def config_type(cls):
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = _base_dir(config_value, *cls.DEFAULT_DIR)
        with creation_lock(base_dir):
            return cls.from_local(base_dir, inst_data=inst_data)


class LockedSqliteRunStorage(_CreatedUnderLock, SqliteRunStorage):
    """Dagster's SQLite run storage; see the module docstring."""

    DEFAULT_DIR = ("history",)


class LockedSqliteScheduleStorage(_CreatedUnderLock, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage; see the module docstring."""

    DEFAULT_DIR = ("schedules",)
