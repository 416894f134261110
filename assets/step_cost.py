"""What a step cost, as numeric metadata on what it materializes: Dagster plots numeric metadata across
materializations (the asset's "Plots" tab), so each asset's cost reads as a curve over days.

``@with_cost`` goes between ``@dg.asset`` and the function. Every ``MaterializeResult`` / ``Output`` the step
yields or returns gets, measured from the step's start to that moment:

- ``wall_seconds``: elapsed time;
- ``cpu_seconds``: CPU time of the step's process, all threads (OpenMP scoring included), plus that of child
  processes it waited for (dbt);
- ``peak_memory_mb``: the process's peak resident memory so far (``ru_maxrss``). On the multiprocess executor the
  process is the step's own; on the in-process executor it is the run's, so it is an upper bound for the step;
- ``rows_per_second``: the result's ``dagster/row_count`` over ``wall_seconds``, when it has one.

A step that needs its cost before it returns (scoring: CPU per 1,000 predictions, a budget) calls
:func:`cost_so_far` instead.
"""

from __future__ import annotations

import functools
import inspect
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

ROW_COUNT = "dagster/row_count"


@dataclass(frozen=True)
class Clock:
    wall: float
    cpu: float

    @classmethod
    def start(cls) -> Clock:
        return cls(time.perf_counter(), _cpu_seconds())


@dataclass(frozen=True)
class Cost:
    wall_seconds: float
    cpu_seconds: float
    peak_memory_mb: float

    def metadata(self, rows: int | None = None) -> dict[str, dg.MetadataValue]:
        values = {
            "wall_seconds": dg.MetadataValue.float(float(round(self.wall_seconds, 3))),
            "cpu_seconds": dg.MetadataValue.float(float(round(self.cpu_seconds, 3))),
            "peak_memory_mb": dg.MetadataValue.float(float(round(self.peak_memory_mb, 1))),
        }
        if rows is not None and self.wall_seconds > 0:
            values["rows_per_second"] = dg.MetadataValue.float(float(round(rows / self.wall_seconds, 1)))
        return values


def cost_so_far(clock: Clock) -> Cost:
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    return Cost(time.perf_counter() - clock.wall, _cpu_seconds() - clock.cpu, peak_kb / 1024)


def with_cost(fn: Callable) -> Callable:
    """The asset function, its results carrying the step's cost (see the module docstring)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            clock = Clock.start()
            for item in fn(*args, **kwargs):
                yield _with_cost(item, clock)

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        clock = Clock.start()
        return _with_cost(fn(*args, **kwargs), clock)

    return function


def _with_cost(item, clock: Clock):
    if isinstance(item, dg.MaterializeResult):
        metadata = dict(item.metadata or {})
        return item._replace(metadata={**cost_so_far(clock).metadata(_rows(metadata)), **metadata})
    if isinstance(item, dg.Output):
        metadata = dict(item.metadata or {})
        return item.with_metadata({**cost_so_far(clock).metadata(_rows(metadata)), **metadata})
    return item


def _rows(metadata: dict) -> int | None:
    value = metadata.get(ROW_COUNT)
    value = getattr(value, "value", value)
    return int(value) if isinstance(value, int | float) else None


def _cpu_seconds() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime
