"""Evaluation and the time split: pure functions on small hand-made arrays and frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assets.ml.evaluation import (
    calibration_by_decile,
    decide,
    features,
    labels,
    metrics,
    segment_metrics,
)
from assets.ml.gate import improvement, judge
from assets.ml.spec import DecisionBands, ModelSpec, SpecError, load_spec
from assets.ml.training import TrainingDataError, content_hash, time_split

SPEC_PATH = Path(__file__).resolve().parents[1] / "model_specs" / "loan_default.yaml"


def small_spec(**evaluation) -> ModelSpec:
    raw = yaml.safe_load(SPEC_PATH.read_text())
    raw["evaluation"] = {**raw["evaluation"], "holdout_days": 3, "min_training_rows": 10, **evaluation}
    return ModelSpec.model_validate(raw)


def dated_frame(days: int = 10, rows_per_day: int = 4, seed: int = 0) -> pd.DataFrame:
    """``days`` days of ``rows_per_day`` rows, both classes every day, shuffled the way a database may return them."""
    start = pd.Timestamp("2024-03-01")
    rows = [
        {
            "application_id": f"{d:03d}-{i}",
            "application_date": start + pd.Timedelta(days=d),
            "defaulted": i % 2,
        }
        for d in range(days)
        for i in range(rows_per_day)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


# --- time_split -------------------------------------------------------------------------------------------------


def test_time_split_holds_out_the_newest_days_without_overlap():
    spec = small_spec()
    frame = dated_frame(days=10, rows_per_day=4)
    train, holdout = time_split(frame, spec)

    assert len(train) + len(holdout) == len(frame)
    assert set(train["application_id"]).isdisjoint(holdout["application_id"])
    holdout_days = sorted(holdout["application_date"].unique())
    newest = sorted(frame["application_date"].unique())[-3:]
    assert holdout_days == newest
    assert train["application_date"].max() < holdout["application_date"].min()
    # Ordered by time, never shuffled.
    assert train["application_date"].is_monotonic_increasing
    assert holdout["application_date"].is_monotonic_increasing


def test_time_split_counts_distinct_days_not_rows():
    spec = small_spec()
    frame = dated_frame(days=10, rows_per_day=4)
    # Most rows on one old day: the holdout is still the newest three days.
    crowded = frame[frame["application_date"] == frame["application_date"].min()]
    copies = [crowded.assign(application_id=crowded["application_id"] + f"-copy{k}") for k in range(5)]
    frame = pd.concat([frame, *copies], ignore_index=True)
    _, holdout = time_split(frame, spec)
    assert holdout["application_date"].nunique() == 3
    assert len(holdout) == 12


def test_time_split_same_rows_in_any_order_give_the_same_split():
    spec = small_spec()
    a_train, a_holdout = time_split(dated_frame(seed=1), spec)
    b_train, b_holdout = time_split(dated_frame(seed=2), spec)
    pd.testing.assert_frame_equal(a_train, b_train)
    pd.testing.assert_frame_equal(a_holdout, b_holdout)


def test_time_split_refuses_too_few_training_rows_naming_spec_and_counts():
    spec = small_spec(min_training_rows=100)
    with pytest.raises(TrainingDataError, match=r"loan_default_risk.*28 training row.*min_training_rows=100"):
        time_split(dated_frame(days=10, rows_per_day=4), spec)


def test_time_split_refuses_a_single_class_in_the_holdout():
    spec = small_spec()
    frame = dated_frame(days=10, rows_per_day=4)
    newest = frame["application_date"] >= frame["application_date"].max() - pd.Timedelta(days=2)
    frame.loc[newest, "defaulted"] = 0
    with pytest.raises(TrainingDataError, match=r"loan_default_risk.*holdout rows hold a single class"):
        time_split(frame, spec)


def test_time_split_needs_more_days_than_the_holdout():
    with pytest.raises(TrainingDataError, match=r"3 distinct application_date day\(s\)"):
        time_split(dated_frame(days=3), small_spec())


# --- metrics ----------------------------------------------------------------------------------------------------


def test_metrics_of_a_perfect_ranking():
    y = np.array([0, 0, 0, 1, 1])
    m = metrics(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["base_rate"] == pytest.approx(0.4)
    assert m["mean_score"] == pytest.approx(0.46)


def test_metrics_of_a_reversed_ranking_and_of_a_constant_prediction():
    y = np.array([0, 0, 1, 1])
    assert metrics(y, np.array([0.9, 0.8, 0.2, 0.1]))["roc_auc"] == 0.0
    constant = metrics(y, np.full(4, 0.5))
    assert constant["roc_auc"] == 0.5
    assert constant["brier"] == pytest.approx(0.25)
    assert constant["log_loss"] == pytest.approx(math.log(2))
    # Brier of a constant equal to the base rate is the label variance.
    y = np.array([0, 0, 0, 1])
    assert metrics(y, np.full(4, 0.25))["brier"] == pytest.approx(0.25 * 0.75)


def test_ranking_metrics_are_nan_with_a_single_class():
    m = metrics(np.zeros(5, dtype=int), np.linspace(0.1, 0.5, 5))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert m["base_rate"] == 0.0
    assert m["brier"] > 0


def test_metrics_refuse_mismatched_arrays():
    with pytest.raises(ValueError, match="equal"):
        metrics(np.array([0, 1]), np.array([0.5]))


# --- calibration, segments --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 10, 1000, 1003])
def test_calibration_by_decile_covers_every_row(n):
    rng = np.random.default_rng(0)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    table = calibration_by_decile(y, p)
    assert list(table.columns) == ["decile", "mean_score", "positive_rate", "count"]
    assert table["count"].sum() == n
    assert len(table) == min(10, n)
    assert table["decile"].tolist() == list(range(1, len(table) + 1))
    assert table["mean_score"].is_monotonic_increasing
    assert table["count"].max() - table["count"].min() <= 1


def test_calibration_by_decile_with_tied_scores_still_has_ten_groups():
    table = calibration_by_decile(np.array([0, 1] * 50), np.full(100, 0.3))
    assert len(table) == 10 and table["count"].tolist() == [10] * 10
    assert np.allclose(table["mean_score"], 0.3)


def test_segment_metrics_per_value_with_nan_auc_for_a_single_class():
    frame = pd.DataFrame({"purpose": ["car", "car", "car", "medical", "medical", None]})
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.9, 0.2, 0.6, 0.7, 0.3])
    table = segment_metrics(frame, y, p, ["purpose"])
    assert list(table.columns) == ["segment", "value", "rows", "roc_auc", "positive_rate", "mean_score"]
    rows = table.set_index("value")
    assert rows.loc["car", "rows"] == 3 and rows.loc["car", "roc_auc"] == 1.0
    assert math.isnan(rows.loc["medical", "roc_auc"])
    assert rows.loc["medical", "positive_rate"] == 1.0
    assert rows.loc["(missing)", "rows"] == 1
    assert table["rows"].sum() == len(frame)


# --- decision bands, comparisons --------------------------------------------------------------------------------


def bands(*spec) -> DecisionBands:
    """``bands("a", 0.1, "b", 0.5, "c")``: names with the ``below`` between them."""
    rows = [{"name": spec[i], **({"below": spec[i + 1]} if i + 1 < len(spec) else {})} for i in range(0, len(spec), 2)]
    return DecisionBands.model_validate(rows)


def test_decide_edges_with_the_shipped_bands():
    shipped = small_spec().decision_bands
    assert shipped.names == ["approve", "review", "decline"]
    p = np.array([0.0, 0.0799999, 0.08, 0.2, 0.2999999, 0.30, 0.95, 1.0])
    assert decide(p, shipped).tolist() == [
        "approve",
        "approve",
        "review",  # exactly the first band's below is not below it
        "review",
        "review",
        "decline",  # exactly the second band's below goes to the last band
        "decline",
        "decline",
    ]


def test_decide_with_two_bands():
    two = bands("keep", 0.5, "flag")
    assert decide(np.array([0.0, 0.49, 0.5, 1.0]), two).tolist() == ["keep", "keep", "flag", "flag"]


def test_decide_with_four_bands_uses_the_spec_names_in_order():
    four = bands("very_low", 0.1, "low", 0.25, "high", 0.6, "very_high")
    p = np.array([0.05, 0.1, 0.2, 0.25, 0.59, 0.6, 0.99, 0.0999])
    assert decide(p, four).tolist() == ["very_low", "low", "low", "high", "high", "very_high", "very_high", "very_low"]


def test_decide_with_a_band_below_one_leaves_only_a_score_of_one_to_the_last():
    assert decide(np.array([0.999, 1.0]), bands("usual", 1.0, "certain")).tolist() == ["usual", "certain"]


def test_decide_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        decide(np.array([0.1, np.nan]), small_spec().decision_bands)


def test_decide_of_no_scores_is_empty():
    assert decide(np.array([]), small_spec().decision_bands).tolist() == []


def write_spec(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(SPEC_PATH.read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def band(name: str, below: float | None = None, **extra) -> dict:
    return {"name": name, **({} if below is None else {"below": below}), **extra}


@pytest.mark.parametrize(
    ("decision_bands", "review_band", "message"),
    [
        ([band("low", 0.2), band("high")], "review", r"field 'review_band': .*'review' is not one of .*'low', 'high'"),
        ([band("only")], None, r"field 'decision_bands': .*at least two bands"),
        ([band("a", 0.2), band("a")], None, r"field 'decision_bands': .*distinct, \['a'\]"),
        ([band("Approve", 0.2), band("b")], None, r"field 'decision_bands\.0\.name': .*lower_snake_case"),
        ([band("a b", 0.2), band("b")], None, r"field 'decision_bands\.0\.name': .*lower_snake_case"),
        ([band("a", 0.5), band("b", 0.5), band("c")], None, r"field 'decision_bands': .*increase.*band 1 \('b'\)"),
        ([band("a", 0.5), band("b", 0.3), band("c")], None, r"field 'decision_bands': .*increase.*band 1 \('b'\)"),
        ([band("a", 0), band("b")], None, r"field 'decision_bands': .*below 0.0 is not in \(0, 1\]"),
        ([band("a", 1.2), band("b")], None, r"field 'decision_bands': .*below 1.2 is not in \(0, 1\]"),
        ([band("a"), band("b")], None, r"field 'decision_bands': .*band 0 \('a'\) has no 'below'"),
        ([band("a", 0.2), band("b", 0.6)], None, r"field 'decision_bands': .*last band \('b'\) must have no 'below'"),
        ([band("a", above=0.2), band("b")], None, r"field 'decision_bands\.0\.above': unknown field"),
        (
            {"approve_below": 0.08, "decline_at_or_above": 0.3},
            None,
            r"field 'decision_bands': .*must be a list of bands",
        ),
        ([], None, r"field 'decision_bands': .*at least two bands \(found 0\)"),
        ("approve", None, r"field 'decision_bands': .*valid list"),
    ],
)
def test_band_errors_name_the_field(tmp_path, decision_bands, review_band, message):
    path = write_spec(tmp_path, decision_bands=decision_bands, review_band=review_band)
    with pytest.raises(SpecError, match=message) as raised:
        load_spec(path)
    assert str(path) in str(raised.value)


def test_review_band_is_optional(tmp_path):
    spec = load_spec(write_spec(tmp_path, review_band=None))
    assert spec.review_band is None
    assert spec.decision_bands.names == ["approve", "review", "decline"]


def test_review_queue_filter_follows_the_spec(tmp_path):
    from assets.ml.inference import review_queue_where

    assert review_queue_where(small_spec()) == "decision = 'review'"
    assert review_queue_where(load_spec(write_spec(tmp_path, review_band=None))) == "FALSE"
    custom = load_spec(
        write_spec(tmp_path, decision_bands=[{"name": "pass", "below": 0.5}, {"name": "check"}], review_band="check")
    )
    assert review_queue_where(custom) == "decision = 'check'"


# --- the gate's comparison (assets.ml.gate: improvement, the one comparison, and judge) --------------------------


def test_improvement_knows_which_metrics_are_lower_is_better():
    # Higher is better: positive when the challenger is better.
    assert improvement("roc_auc", 0.80, 0.79) == pytest.approx(0.01)
    assert improvement("pr_auc", 0.28, 0.30) == pytest.approx(-0.02)
    # Lower is better: a smaller brier or log loss is an improvement.
    assert improvement("brier", 0.080, 0.085) == pytest.approx(0.005)
    assert improvement("log_loss", 0.31, 0.30) == pytest.approx(-0.01)
    # A tie is exactly zero, and a bound written in the spec holds as written (no 0.005000000000000004).
    assert improvement("roc_auc", 0.7, 0.7) == 0.0
    assert improvement("roc_auc", 0.785, 0.79) == -0.005
    with pytest.raises(ValueError, match="unknown metric"):
        improvement("f2_score", 0.9, 0.8)


def test_improvement_with_a_nan_on_either_side_is_nan():
    assert math.isnan(improvement("roc_auc", math.nan, 0.7))
    assert math.isnan(improvement("roc_auc", 0.7, math.nan))
    assert math.isnan(improvement("brier", 0.1, math.nan))


def _metrics(roc_auc: float, brier: float = 0.08) -> dict[str, float]:
    return {"roc_auc": roc_auc, "pr_auc": 0.3, "log_loss": 0.3, "brier": brier}


def promotion_spec(**promotion) -> ModelSpec:
    """The shipped spec (floor 0.65 ROC AUC, tolerance 0.01, brier guardrail 0.005) with ``promotion`` changes."""
    raw = yaml.safe_load(SPEC_PATH.read_text())
    raw["promotion"] = {**raw["promotion"], **promotion}
    return ModelSpec.model_validate(raw)


def test_judge_a_first_version_needs_only_the_floor():
    spec = promotion_spec()
    first = judge(spec, _metrics(0.70), None)
    assert first.passed and first.beats_champion and first.champion_version is None and first.gain is None
    low = judge(spec, _metrics(0.60), None)
    assert not low.passed and not low.beats_champion and "does not clear the floor 0.65" in low.reason
    undefined = judge(spec, _metrics(math.nan), None)
    assert not undefined.passed and "cannot be judged" in undefined.reason


def test_judge_a_tie_passes_the_gate_but_keeps_the_champion():
    verdict = judge(promotion_spec(), _metrics(0.75), _metrics(0.75), champion_version=1)
    assert verdict.passed  # a person may promote it without force
    assert verdict.gain == 0.0 and not verdict.beats_champion
    assert "does not beat the champion by more than min_improvement 0.0" in verdict.reason
    assert verdict.tags()["gate.beats_champion"] == "false" and verdict.tags()["gate.champion_version"] == "1"


def test_judge_better_by_more_than_min_improvement_beats_the_champion():
    spec = promotion_spec()
    better = judge(spec, _metrics(0.76), _metrics(0.75), champion_version=3)
    assert better.passed and better.beats_champion and better.gain == pytest.approx(0.01)
    assert better.tags() == {
        "gate.passed": "true",
        "gate.reason": better.reason,
        "gate.champion_version": "3",
        "gate.improvement": repr(better.gain),
        "gate.beats_champion": "true",
    }
    margin = promotion_spec(min_improvement=0.01)
    at_margin = judge(margin, _metrics(0.76), _metrics(0.75), champion_version=3)
    assert at_margin.passed and not at_margin.beats_champion  # by exactly the margin is not more than it
    assert judge(margin, _metrics(0.7601), _metrics(0.75), champion_version=3).beats_champion


def test_judge_tolerance_and_guardrails_against_the_champion():
    spec = promotion_spec()
    within = judge(spec, _metrics(0.74), _metrics(0.75), champion_version=1)  # trails by exactly the tolerance
    assert within.passed and not within.beats_champion
    trailing = judge(spec, _metrics(0.7399), _metrics(0.75), champion_version=1)
    assert not trailing.passed and "trails the champion's 0.7500 by 0.0101 (tolerance 0.01)" in trailing.reason
    worse_brier = judge(spec, _metrics(0.80, brier=0.0851), _metrics(0.75, brier=0.08), champion_version=1)
    assert not worse_brier.passed and not worse_brier.beats_champion
    assert "brier 0.0851 is 0.0051 worse than the champion's 0.0800 (allowed 0.005)" in worse_brier.reason


def test_judge_a_nan_never_lets_a_challenger_pass_or_beat_the_champion():
    spec = promotion_spec()
    nan_champion = judge(spec, _metrics(0.80), _metrics(math.nan), champion_version=1)
    assert not nan_champion.passed and not nan_champion.beats_champion
    assert "roc_auc cannot be compared with the champion's (nan)" in nan_champion.reason
    nan_challenger = judge(spec, _metrics(math.nan), _metrics(0.75), champion_version=1)
    assert not nan_challenger.passed and not nan_challenger.beats_champion
    nan_guardrail = judge(spec, _metrics(0.80, brier=math.nan), _metrics(0.75), champion_version=1)
    assert not nan_guardrail.passed and "brier cannot be compared" in nan_guardrail.reason


def test_min_improvement_is_a_non_negative_spec_field(tmp_path):
    assert promotion_spec().promotion.min_improvement == 0.0
    raw = yaml.safe_load(SPEC_PATH.read_text())
    raw["promotion"]["min_improvement"] = -0.01
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"field 'promotion.min_improvement'"):
        load_spec(tmp_path / "bad.yaml")


# --- model input ------------------------------------------------------------------------------------------------


def test_features_normalizes_dtypes_and_missing_values():
    spec = small_spec()
    n = 3
    frame = pd.DataFrame({c: np.arange(n, dtype="int64") for c in spec.features.numeric})
    frame["credit_score"] = pd.array([700, None, 650], dtype="Int64")
    for c in spec.features.categorical:
        frame[c] = ["a", "b", "c"]
    frame["purpose"] = ["car", None, np.nan]
    frame["extra"] = 1
    X = features(frame, spec)
    assert list(X.columns) == spec.features.all
    assert all(X[c].dtype == "float64" for c in spec.features.numeric)
    assert all(X[c].dtype == object for c in spec.features.categorical)
    assert math.isnan(X.loc[1, "credit_score"])
    assert X.loc[0, "purpose"] == "car"
    assert X["purpose"].iloc[1:].map(lambda v: isinstance(v, float) and math.isnan(v)).all()


def test_features_names_missing_columns():
    spec = small_spec()
    with pytest.raises(KeyError, match="loan_default_risk.*annual_income"):
        features(pd.DataFrame({"x": [1]}), spec)


def test_content_hash_sees_values_not_dtypes():
    spec = small_spec()
    frame = pd.DataFrame({c: [1.0, 2.0] for c in spec.features.numeric})
    for c in spec.features.categorical:
        frame[c] = ["a", "b"]
    frame["application_id"] = ["x1", "x2"]
    frame["application_date"] = pd.to_datetime(["2024-01-01", "2024-01-02"])
    frame["defaulted"] = [0, 1]
    as_ints = frame.astype({c: "int64" for c in spec.features.numeric})
    assert content_hash(frame, spec) == content_hash(as_ints, spec)
    changed = frame.copy()
    changed.loc[1, "credit_score"] = 3.0
    assert content_hash(frame, spec) != content_hash(changed, spec)


def test_labels_accept_int_and_bool_and_refuse_anything_else():
    spec = small_spec()
    assert labels(pd.DataFrame({"defaulted": [True, False]}), spec).tolist() == [1, 0]
    assert labels(pd.DataFrame({"defaulted": pd.array([0, 1], dtype="Int64")}), spec).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"must be 0/1, found \[0.5\]"):
        labels(pd.DataFrame({"defaulted": [0.5, 1.0]}), spec)
    with pytest.raises(ValueError, match="1 null"):
        labels(pd.DataFrame({"defaulted": [1.0, None]}), spec)
