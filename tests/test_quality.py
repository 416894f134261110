"""Quality on real Evidently runs: a good score vs a shuffled one, and a calibration gap that sees a biased score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.monitoring.quality import QualityResult, run_quality

ROWS = 20_000


@pytest.fixture(scope="module")
def labeled() -> pd.DataFrame:
    """A score that is the true probability of label 1, so it is both discriminating and calibrated."""
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, ROWS)
    probability = 1 / (1 + np.exp(-(-2.0 + 1.5 * x)))
    return pd.DataFrame({"label": (rng.random(ROWS) < probability).astype(int), "score": probability})


@pytest.fixture(scope="module")
def good(labeled, tmp_path_factory) -> tuple[QualityResult, object]:
    report = tmp_path_factory.mktemp("quality") / "quality.json.gz"
    return run_quality(labeled, "label", "score", report), report


def test_good_score_discriminates_and_is_calibrated(good, labeled):
    from sklearn.metrics import log_loss, roc_auc_score

    result, _ = good
    assert result.rows == ROWS
    assert result.roc_auc > 0.75
    # Evidently's numbers are the usual ones
    assert result.roc_auc == pytest.approx(roc_auc_score(labeled["label"], labeled["score"]), rel=1e-9)
    assert result.log_loss == pytest.approx(log_loss(labeled["label"], labeled["score"]), rel=1e-6)
    assert result.positive_rate == pytest.approx(labeled["label"].mean())
    assert result.predicted_rate == pytest.approx(labeled["score"].mean())
    assert result.brier == pytest.approx(((labeled["score"] - labeled["label"]) ** 2).mean())
    assert result.calibration_gap < 0.01


def test_calibration_table_by_decile(good):
    result, _ = good
    table = result.calibration
    assert list(table["decile"]) == list(range(1, 11))
    assert table["rows"].sum() == ROWS
    assert table["positive_rate"].is_monotonic_increasing
    assert (table["score_min"].diff().dropna() > 0).all()
    assert table["gap"].abs().max() < 0.05


def test_shuffled_score_is_no_better_than_chance(labeled, good):
    shuffled = labeled.assign(score=np.random.default_rng(12).permutation(labeled["score"].to_numpy()))
    result = run_quality(shuffled, "label", "score", None)
    assert result.roc_auc == pytest.approx(0.5, abs=0.03)
    assert result.log_loss > good[0].log_loss
    assert result.brier > good[0].brier
    # the mean is unchanged by shuffling: calibration-in-the-large cannot see this, the AUC can
    assert result.calibration_gap < 0.01


def test_biased_score_opens_the_calibration_gap(labeled, good):
    biased = labeled.assign(score=labeled["score"] * 0.5)
    result = run_quality(biased, "label", "score", None)
    assert result.roc_auc == pytest.approx(good[0].roc_auc)  # ranking unchanged
    assert result.calibration_gap == pytest.approx(labeled["score"].mean() * 0.5, rel=0.1)
    assert result.calibration_gap > 0.06
    assert (result.calibration["gap"] > 0).all()


def test_the_report_is_stored_compactly_and_renders(good):
    from assets.monitoring.report_page import render

    _, report = good
    assert 1_000 < report.stat().st_size < 200_000
    assert "drawDashboard" in render(report)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"label": [0, 1, np.nan], "score": [0.1, 0.2, 0.3]}), "missing"),
        (pd.DataFrame({"label": [0, 1, 2], "score": [0.1, 0.2, 0.3]}), "0/1"),
        (pd.DataFrame({"label": [0, 0, 0], "score": [0.1, 0.2, 0.3]}), "single class"),
        (pd.DataFrame({"label": [0, 1, 1], "score": [0.1, 0.2, 1.3]}), "probability"),
    ],
)
def test_unusable_input_is_refused(frame, message):
    with pytest.raises(ValueError, match=message):
        run_quality(frame, "label", "score", None)


def test_the_auc_interval_covers_the_true_auc_about_95_times_in_100():
    """Simulated days of 900 labeled rows from one known model: the interval holds the AUC of the whole population
    in about 95% of them, and a day that small is uncertain by several points (why one day is not judged alone)."""
    from sklearn.metrics import roc_auc_score

    from assets.monitoring.quality import auc_interval

    rng = np.random.default_rng(5)

    def day(rows: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0, 1, rows)
        p = 1 / (1 + np.exp(-(-1.5 + 1.2 * x)))
        return (rng.random(rows) < p).astype(int), p

    truth = roc_auc_score(*day(400_000))
    covered, widths = 0, []
    for _ in range(400):
        y, p = day(900)
        low, high = auc_interval(roc_auc_score(y, p), int(y.sum()), int(len(y) - y.sum()))
        covered += low <= truth <= high
        widths.append(high - low)
    assert 0.92 <= covered / 400 <= 0.98
    assert 0.05 < np.median(widths) < 0.15


def test_quality_says_how_sure_it_is_and_grades_only_what_the_rows_can_tell_from_noise(labeled, good):
    result, _ = good
    low, high = result.roc_auc_interval
    assert low < result.roc_auc < high and high - low < 0.03  # 20,000 rows: sure to about a point
    assert result.judged_auc_drop(high - 0.001) == 0.0  # inside the interval: noise
    assert result.judged_auc_drop(high + 0.05) == pytest.approx(high + 0.05 - result.roc_auc)
    assert result.judged_calibration_gap() == 0.0  # calibrated: the interval holds 0
    few = run_quality(labeled.head(400), "label", "score", None)
    assert few.roc_auc_interval[1] - few.roc_auc_interval[0] > 3 * (high - low)  # 400 rows: far less sure
    assert few.judged_auc_drop(few.roc_auc + 0.05) == 0.0  # a 0.05 drop on 400 rows is within the noise
    biased = run_quality(labeled.assign(score=labeled["score"] * 0.5), "label", "score", None)
    gap_low, gap_high = biased.calibration_gap_interval
    assert 0 < gap_low < gap_high and biased.judged_calibration_gap() == pytest.approx(biased.calibration_gap)
