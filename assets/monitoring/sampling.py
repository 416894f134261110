"""Deterministic row sampling, so that drift checks cost the same whatever a partition's size.

A row is kept when the hash of its key is among the ``n`` smallest. The hash is pandas' fixed-key SipHash of the
value (``hash_pandas_object``), not Python's salted ``hash()``, so the same partition gives the same sample in every
process and on every run, and a row's membership does not depend on the order the rows arrive in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def deterministic_sample(frame: pd.DataFrame, n: int, key_column: str) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``, chosen by a stable hash of ``key_column``, in their original order.

    All rows (a copy) when ``n >= len(frame)``. Keys are expected to be unique; with duplicated keys the rows that
    tie at the cut-off are taken in frame order.
    """
    if n < 1:
        raise ValueError(f"sample size must be at least 1, got {n}")
    if key_column not in frame.columns:
        raise KeyError(f"cannot sample on '{key_column}': no such column (columns: {list(frame.columns)})")
    if n >= len(frame):
        return frame.copy()
    hashes = pd.util.hash_pandas_object(frame[key_column], index=False).to_numpy()
    cutoff = np.partition(hashes, n - 1)[n - 1]
    below = np.flatnonzero(hashes < cutoff)
    at_cutoff = np.flatnonzero(hashes == cutoff)[: n - len(below)]
    positions = np.sort(np.concatenate([below, at_cutoff]))
    return frame.iloc[positions].copy()  # a frame of its own: no SettingWithCopyWarning when the caller adds columns
