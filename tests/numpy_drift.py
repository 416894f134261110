"""Drift statistics with numpy/scipy only, computed the way Evidently computes them: the reference that
tests/test_drift.py cross-checks ``assets.monitoring.drift.run_drift`` (Evidently) against, and the plain-numpy
baseline of bench/drift_bench.py. Not used by the platform."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from assets.monitoring.drift import CATEGORICAL_METHOD, NUMERIC_METHOD, DriftResult, checked_features


def drift_numpy(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    score_column: str,
    column_threshold: float,
    *,
    partition_rows: int | None = None,
) -> DriftResult:
    """The statistics of ``run_drift`` with its default methods (Wasserstein / Jensen-Shannon, one threshold),
    computed the way Evidently computes them, with numpy/scipy only."""
    features = checked_features(numeric, categorical, score_column)
    scores = {c: wasserstein_normed(reference[c], current[c]) for c in numeric}
    scores |= {c: jensen_shannon(reference[c], current[c]) for c in categorical}
    scores = {c: scores[c] for c in features}
    drifted = [c for c in features if scores[c] >= column_threshold]
    return DriftResult(
        column_scores=scores,
        column_methods={c: NUMERIC_METHOD if c in numeric else CATEGORICAL_METHOD for c in features},
        column_threshold=column_threshold,
        drifted_columns=drifted,
        drift_share=len(drifted) / len(features),
        score_drift=wasserstein_normed(reference[score_column], current[score_column]),
        score_method=NUMERIC_METHOD,
        rows_current=len(current) if partition_rows is None else partition_rows,
        rows_reference=len(reference),
        sample_rows=len(current),
        column_thresholds={c: column_threshold for c in features},
        score_reference_rows=int(np.isfinite(reference[score_column].to_numpy(dtype=float, na_value=np.nan)).sum()),
    )


def wasserstein_normed(reference: pd.Series, current: pd.Series) -> float:
    """Wasserstein distance divided by the reference's population std (floored at 0.001), non-finite values dropped.

    As evidently.legacy.calculations.stattests.wasserstein_distance_norm.
    """
    from scipy.stats import wasserstein_distance

    ref = _finite(reference)
    cur = _finite(current)
    norm = max(float(np.std(ref)), 0.001)
    return float(wasserstein_distance(ref, cur) / norm)


def jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (natural log) between the category frequencies, missing values dropped.

    As evidently.legacy.calculations.stattests.jensenshannon for a categorical column: frequencies over the union of
    the categories seen in either frame, no smoothing of empty categories.
    """
    from scipy.spatial.distance import jensenshannon

    ref = _present(reference)
    cur = _present(current)
    ref_counts = ref.value_counts(sort=False)
    cur_counts = cur.value_counts(sort=False)
    ref_counts = ref_counts[ref_counts > 0]  # a Categorical dtype also counts unused categories
    cur_counts = cur_counts[cur_counts > 0]
    keys = ref_counts.index.union(cur_counts.index, sort=False)
    ref_share = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(ref)
    cur_share = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / len(cur)
    return float(jensenshannon(ref_share, cur_share))


def _finite(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"column '{series.name}' has no finite values to compare")
    return values


def _present(series: pd.Series) -> pd.Series:
    values = series.dropna()
    if values.empty:
        raise ValueError(f"column '{series.name}' has no values to compare")
    return values
