"""Tables computed chunk by chunk from one read of a source window (scoring), with the compute one chunk ahead.

``Warehouse.replace_windows_mapped`` reads the source window once and hands every chunk to each target's
transform (the champion's predictions and the challenger's shadow scores come from the same rows in memory).
:func:`mapped_ahead` runs the transforms of chunk k on one worker thread while the calling thread reads chunk
k + 1 and writes the rows of chunk k - 1: every warehouse call (the read's cursor, the write's transaction) stays
on the calling thread, so no connection is shared between threads; only the CPU work moves (scikit-learn's tree
predictions and numpy release the GIL in their heavy parts). At most two source chunks wait or run there, one
being read and the rows of one being written: memory stays bounded by the chunk size, not the window's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resources.source.schema import Column

if TYPE_CHECKING:
    import pandas as pd

Transform = Callable[[Iterator["pd.DataFrame"]], Iterator["pd.DataFrame"]]


@dataclass(frozen=True)
class MappedTable:
    """A table whose window is ``transform`` of the source window's chunks, with its declared ``columns``.

    ``transform`` takes and yields pandas frames and must pickle (an engine that computes runs it where the data
    is: Spark, on its executors, one iterator per partition); it must treat every chunk on its own, as those
    partitions do: here it is called once per chunk."""

    table: str
    transform: Transform
    columns: Sequence[Column]


def mapped_ahead(chunks: Iterable[pd.DataFrame], transforms: Sequence[Transform]) -> Iterator[list[list[pd.DataFrame]]]:
    """For each chunk of ``chunks``, in order, what each transform yields for it (one list per transform); the
    transforms of a chunk run on a worker thread while this generator's caller reads the next chunk and writes the
    previous one's rows. An error of a transform is raised here, at that chunk."""
    from concurrent.futures import Future, ThreadPoolExecutor

    def run(chunk: pd.DataFrame) -> list[list[pd.DataFrame]]:
        return [list(transform(iter([chunk]))) for transform in transforms]

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nightjar-mapped")
    try:
        pending: Future | None = None
        for chunk in chunks:  # reading chunk k + 1 here overlaps the worker's chunk k
            submitted = pool.submit(run, chunk)
            if pending is not None:
                yield pending.result()  # the caller writes these rows while the worker computes the next chunk
            pending = submitted
        if pending is not None:
            yield pending.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close = getattr(chunks, "close", None)  # a reader's generator: its cursor and connection closed now
        if close is not None:
            close()
