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
    report = tmp_path_factory.mktemp("quality") / "quality.html"
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


def test_html_report_is_written(good):
    _, report = good
    assert report.is_file()
    assert report.stat().st_size > 100_000


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
