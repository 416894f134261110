"""Drift on real Evidently runs: no false alarm on same-distribution data, exactly the shifted columns flagged,
Evidently and the numpy/scipy implementation agreeing, and a stable, bounded sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.ml.spec import Monitoring, Thresholds
from assets.monitoring.drift import DriftResult, drift_numpy, run_drift, severity
from assets.monitoring.sampling import deterministic_sample

NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = ["cat_a", "cat_b"]
SCORE = "score"
THRESHOLD = Monitoring().column_drift_threshold
CAT_A = ["a", "b", "c", "d"]
CAT_A_MIX = [0.4, 0.3, 0.2, 0.1]
CAT_A_SHIFTED_MIX = [0.2, 0.3, 0.2, 0.3]
SHIFTED_NUMERIC = ["num_0", "num_1", "num_2"]


def make_frame(rows: int, seed: int, shift_sd: float = 0.0, cat_a_mix: list[float] = CAT_A_MIX) -> pd.DataFrame:
    """Numeric columns of different locations and scales (the shift is in units of each column's sd)."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"id": np.arange(seed * 10_000_000, seed * 10_000_000 + rows)}
    for i, name in enumerate(NUMERIC):
        loc, scale = 10.0 * i, 1.0 + i
        shift = shift_sd * scale if name in SHIFTED_NUMERIC else 0.0
        data[name] = rng.normal(loc + shift, scale, rows)
    data["cat_a"] = rng.choice(CAT_A, rows, p=cat_a_mix)
    data["cat_b"] = rng.choice(["north", "south", "east", "west", "centre"], rows)
    data[SCORE] = rng.beta(2, 8, rows)
    return pd.DataFrame(data)


def assert_same_statistics(evidently: DriftResult, numpy: DriftResult) -> None:
    assert list(evidently.column_scores) == list(numpy.column_scores)
    for column, score in evidently.column_scores.items():
        assert numpy.column_scores[column] == pytest.approx(score, rel=1e-6, abs=1e-12), column
    assert evidently.column_methods == numpy.column_methods
    assert evidently.drifted_columns == numpy.drifted_columns
    assert evidently.drift_share == pytest.approx(numpy.drift_share)
    assert numpy.score_drift == pytest.approx(evidently.score_drift, rel=1e-6)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(5000, seed=1)


@pytest.fixture(scope="module")
def same(reference, tmp_path_factory) -> tuple[DriftResult, DriftResult, object]:
    current = make_frame(5000, seed=2)
    report = tmp_path_factory.mktemp("drift") / "same" / "drift.html"
    evidently = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, report, partition_rows=123_456)
    numpy = drift_numpy(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, partition_rows=123_456)
    return evidently, numpy, report


@pytest.fixture(scope="module")
def shifted(reference) -> tuple[DriftResult, DriftResult]:
    current = make_frame(5000, seed=3, shift_sd=0.5, cat_a_mix=CAT_A_SHIFTED_MIX)
    evidently = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    numpy = drift_numpy(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD)
    return evidently, numpy


def test_same_distribution_has_no_drift(same):
    evidently, numpy, _ = same
    monitoring = Monitoring()
    assert evidently.drifted_columns == []
    assert evidently.drift_share == 0.0
    assert severity(evidently.drift_share, monitoring.drift_share) == "ok"
    assert severity(evidently.score_drift, monitoring.score_drift) == "ok"
    assert max(evidently.column_scores.values()) < THRESHOLD / 2
    assert_same_statistics(evidently, numpy)


def test_result_describes_what_was_compared(same):
    evidently, _, _ = same
    assert set(evidently.column_scores) == set(NUMERIC + CATEGORICAL)
    assert {evidently.column_methods[c] for c in NUMERIC} == {"wasserstein"}
    assert {evidently.column_methods[c] for c in CATEGORICAL} == {"jensenshannon"}
    assert evidently.score_method == "wasserstein"
    assert evidently.column_threshold == THRESHOLD
    assert (evidently.rows_current, evidently.sample_rows, evidently.rows_reference) == (123_456, 5000, 5000)


def test_shifted_columns_and_only_those_drift(shifted):
    evidently, numpy = shifted
    expected = [*SHIFTED_NUMERIC, "cat_a"]
    assert evidently.drifted_columns == expected
    assert evidently.drift_share == pytest.approx(len(expected) / len(NUMERIC + CATEGORICAL))
    for column in SHIFTED_NUMERIC:
        assert evidently.column_scores[column] == pytest.approx(0.5, abs=0.06)
    assert severity(evidently.drift_share, Monitoring().drift_share) == "error"
    assert_same_statistics(evidently, numpy)


def test_methods_are_forced_on_small_samples(reference):
    """Below 1000 reference rows Evidently would pick KS / chi-square; the check must keep the distances."""
    small_reference = reference.head(300)
    current = make_frame(400, seed=4)
    evidently = run_drift(small_reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert set(evidently.column_methods.values()) == {"wasserstein", "jensenshannon"}
    assert_same_statistics(evidently, drift_numpy(small_reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD))


def test_html_report_is_written(same):
    _, _, report = same
    assert report.is_file()
    assert report.stat().st_size > 100_000
    head = report.read_text(errors="replace")[:2000].lower()
    assert "<html" in head


def test_missing_values_are_ignored_alike(reference):
    current = make_frame(3000, seed=5)
    current.loc[current.index[::7], "num_3"] = np.nan
    current.loc[current.index[::11], "cat_b"] = None
    evidently = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert_same_statistics(evidently, drift_numpy(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD))


def test_score_column_cannot_be_a_feature(reference):
    with pytest.raises(ValueError, match="score column"):
        drift_numpy(reference, reference, NUMERIC, CATEGORICAL, "num_0", THRESHOLD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, "ok"), (0.099, "ok"), (0.1, "warn"), (0.19, "warn"), (0.2, "error"), (1.0, "error")],
)
def test_severity_bounds_are_inclusive(value, expected):
    assert severity(value, Thresholds(warn=0.1, error=0.2)) == expected


def test_severity_refuses_nan():
    with pytest.raises(ValueError):
        severity(float("nan"), Thresholds(warn=0.1, error=0.2))


def test_sample_is_stable_bounded_and_order_independent():
    frame = make_frame(50_000, seed=6)
    first = deterministic_sample(frame, 2000, "id")
    assert len(first) == 2000
    assert first.equals(deterministic_sample(frame, 2000, "id"))
    shuffled = frame.sample(frac=1.0, random_state=0)
    assert set(deterministic_sample(shuffled, 2000, "id")["id"]) == set(first["id"])
    # a grown partition costs the same, and the old rows it keeps are rows the old sample had
    grown = pd.concat([frame, make_frame(50_000, seed=7)])
    grown_sample = deterministic_sample(grown, 2000, "id")
    assert len(grown_sample) == 2000
    kept_old = set(grown_sample["id"]) & set(frame["id"])
    assert kept_old and kept_old <= set(first["id"])
    # rows come back in their original order, untouched
    assert first.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(first, frame.loc[first.index])


def test_sample_is_not_biased_by_key_order():
    frame = make_frame(50_000, seed=8)
    sample = deterministic_sample(frame, 5000, "id")
    # ids are sequential: a hash sample spreads over the whole range instead of taking the head
    assert sample["id"].min() < frame["id"].quantile(0.01)
    assert sample["id"].max() > frame["id"].quantile(0.99)
    result = drift_numpy(frame, sample, NUMERIC, CATEGORICAL, SCORE, THRESHOLD)
    assert result.drifted_columns == []


def test_sample_of_a_small_frame_is_all_rows():
    frame = make_frame(100, seed=9)
    pd.testing.assert_frame_equal(deterministic_sample(frame, 100, "id"), frame)
    pd.testing.assert_frame_equal(deterministic_sample(frame, 1000, "id"), frame)
    with pytest.raises(ValueError):
        deterministic_sample(frame, 0, "id")
    with pytest.raises(KeyError):
        deterministic_sample(frame, 10, "no_such_column")
