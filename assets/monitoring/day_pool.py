"""The days of a monitoring range run, their Evidently work spread over this machine's cores.

A day's check is a generator (its reads, then Evidently, then its writes and results): where it needs the
expensive part it yields a :class:`Compute` and receives the result. One day, or a machine with one core: the
compute runs in place. Several days: it runs in a pool of processes while the next days read their data, at most
``workers`` days ahead, and each day's writes and results follow in day order in this process (the warehouse
writer, Dagster's events). Evidently is about 85% of a drift day, pure computation on frames: on two cores a range
runs in a bit more than half the time.

Workers are spawned (not forked: the Dagster process holds threads and open connections) and import Evidently once
each (about 3.5 s), so short ranges (< ``MIN_POOLED_DAYS``) run in place unless ``NIGHTJAR_MONITORING_WORKERS`` is
set.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MIN_POOLED_DAYS = 6


@dataclass(frozen=True)
class Compute:
    """``func(**kwargs)``, asked for by a day's check: a module-level function and picklable arguments."""

    func: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Any:
        return self.func(**self.kwargs)


DayCheck = Generator[Any, Any, None]


def workers_for(days: int) -> int:
    """Processes for a range of ``days``: this machine's cores from ``MIN_POOLED_DAYS`` days on; as many as
    ``NIGHTJAR_MONITORING_WORKERS`` says, for any range of two days or more, when it is set (0: none)."""
    configured = os.environ.get("NIGHTJAR_MONITORING_WORKERS", "").strip()
    if configured.isdigit():
        return min(int(configured), days) if days > 1 else 0
    cores = os.cpu_count() or 1
    return min(cores, days) if days >= MIN_POOLED_DAYS and cores > 1 else 0


def run_in_place(check: DayCheck) -> list:
    """A day's events, its computes run here."""
    events, sent = [], None
    while True:
        try:
            item = check.send(sent)
        except StopIteration:
            return events
        sent = item() if isinstance(item, Compute) else None
        if not isinstance(item, Compute):
            events.append(item)


def run_pooled(days: list[date], check_day: Callable[[date], DayCheck], workers: int) -> Iterator[tuple[date, Any]]:
    """``(day, events)`` for each day in order, or ``(day, exception)`` where its check raised; computes in a pool
    of ``workers`` processes, the next days' reads overlapping them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque = deque()  # (day, check, events so far, future or None)

        def advance(check: DayCheck, events: list, outcome: Any = None, error: BaseException | None = None):
            """Run the check up to its next compute (submitted: its future) or its end (None). A compute that
            raised is thrown into the check, where it raised for the day as it would have in place."""
            while True:
                try:
                    item = check.throw(error) if error is not None else check.send(outcome)
                except StopIteration:
                    return None
                error = outcome = None
                if isinstance(item, Compute):
                    return pool.submit(item.func, **item.kwargs)
                events.append(item)

        def settle(day: date, check: DayCheck, events: list, future) -> tuple[date, Any]:
            try:
                while future is not None:
                    try:
                        outcome = future.result()
                    except Exception as error:  # noqa: BLE001 (thrown into the check)
                        future = advance(check, events, error=error)
                    else:
                        future = advance(check, events, outcome)
            except Exception as error:  # noqa: BLE001 (the caller decides what a day's failure means)
                return day, error
            return day, events

        for day in days:
            check, events = check_day(day), []
            try:
                future = advance(check, events)
            except Exception as error:  # noqa: BLE001
                pending.append((day, None, error, None))
            else:
                pending.append((day, check, events, future))
            while len(pending) > workers:
                yield _settled(pending.popleft(), settle)
        while pending:
            yield _settled(pending.popleft(), settle)


def _settled(entry, settle) -> tuple[date, Any]:
    day, check, events, future = entry
    if check is None:  # it raised before its compute
        return day, events
    return settle(day, check, events, future)
