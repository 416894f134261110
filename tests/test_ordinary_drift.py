"""Drift judged against what ordinary days do: a column that moves with the day (weather) no longer fails every
ordinary day, and a real shift still fails; on real Evidently (its report for the verdicts, its stat tests for the
ordinary days, whose figures are those its report gives for a day against the rest)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from assets.ml.spec import Thresholds
from assets.monitoring.drift import run_drift
from assets.monitoring.ordinary_drift import DAY_COLUMN, MARGIN, REST_ROWS, column_methods, ordinary_drift

FIRST = date(2026, 1, 1)
ROWS_PER_DAY = 2000
METHODS = column_methods(["temperature", "income"], ["channel"], "wasserstein", "jensenshannon", {})


def day_rows(day: date, *, income_factor: float = 1.0, temperature_offset: float = 0.0) -> pd.DataFrame:
    """A day: its temperature moves with the day (a day-level value plus a little spread), income and channel do
    not; the score follows the temperature."""
    rng = np.random.default_rng(day.toordinal())
    level = 10 + 8 * np.sin(day.toordinal() / 3.0) + temperature_offset
    temperature = rng.normal(level, 1.0, ROWS_PER_DAY)
    return pd.DataFrame(
        {
            "temperature": temperature,
            "income": rng.lognormal(10.9, 0.4, ROWS_PER_DAY) * income_factor,
            "channel": rng.choice(["web", "branch", "phone"], ROWS_PER_DAY, p=[0.6, 0.3, 0.1]),
            "score": 1 / (1 + np.exp(-(temperature - 10) / 4)),
            DAY_COLUMN: day.isoformat(),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.concat([day_rows(FIRST + timedelta(days=i)) for i in range(14)], ignore_index=True)


def _judged(reference: pd.DataFrame, current: pd.DataFrame, calibrate: bool):
    ordinary = ordinary_drift(reference, METHODS, "score") if calibrate else None
    base = dict.fromkeys(METHODS, 0.1)
    thresholds = ordinary.raised(base) if ordinary else {}
    score = ordinary.score_thresholds(Thresholds(warn=0.1, error=0.2)) if ordinary else Thresholds(warn=0.1, error=0.2)
    result = run_drift(
        reference.drop(columns=[DAY_COLUMN]),
        current.drop(columns=[DAY_COLUMN]),
        ["temperature", "income"],
        ["channel"],
        "score",
        0.1,
        column_thresholds=thresholds,
        score_threshold=score.warn,
    )
    return result, score


def test_a_day_level_column_is_raised_and_a_steady_one_is_not(reference):
    ordinary = ordinary_drift(reference, METHODS, "score")
    assert ordinary is not None and ordinary.days == 14
    raised = ordinary.raised(dict.fromkeys(METHODS, 0.1))
    assert set(raised) == {"temperature"}, raised  # income and channel drift less than 0.1 on ordinary days
    assert raised["temperature"] == pytest.approx(MARGIN * ordinary.columns["temperature"])
    assert ordinary.score is not None and ordinary.score_thresholds(Thresholds(warn=0.1, error=0.2)).warn > 0.1
    assert "temperature 0.1 ->" in ordinary.describe(dict.fromkeys(METHODS, 0.1), Thresholds(warn=0.1, error=0.2))


def test_ordinary_later_days_pass_calibrated_and_fail_as_written(reference):
    later = [FIRST + timedelta(days=20 + i) for i in range(6)]
    calibrated = [_judged(reference, day_rows(d), calibrate=True) for d in later]
    written = [_judged(reference, day_rows(d), calibrate=False) for d in later]
    assert sum("temperature" in r.drifted_columns for r, _ in written) >= 4  # the daily false alarm
    assert not any(r.drifted_columns for r, _ in calibrated), [r.drifted_columns for r, _ in calibrated]
    assert all(r.score_drift < s.warn for r, s in calibrated)


def test_a_real_shift_still_fails(reference):
    day = FIRST + timedelta(days=21)
    incomes, _ = _judged(reference, day_rows(day, income_factor=1.6), calibrate=True)
    assert incomes.drifted_columns == ["income"]
    heat, _ = _judged(reference, day_rows(day, temperature_offset=30.0), calibrate=True)
    assert heat.drifted_columns == ["temperature"]


def test_too_few_or_no_recorded_days_calibrate_nothing(reference):
    assert ordinary_drift(reference.drop(columns=[DAY_COLUMN]), METHODS, "score") is None  # an older version
    three_days = reference[reference[DAY_COLUMN] < (FIRST + timedelta(days=3)).isoformat()]
    assert ordinary_drift(three_days, METHODS, "score") is None
    # p-value methods are left as written: their p-values shrink with the row count, not with the day.
    ks = column_methods(["temperature"], [], "ks", "jensenshannon", {})
    assert ordinary_drift(reference, ks, None).columns == {}


def test_the_ordinary_drifts_are_those_evidently_s_report_gives(reference):
    """Each column's ordinary drift is the largest that Evidently's own report (one ValueDrift per column, the
    column's method) gives for one reference day against the other days: the stat tests called by name measure
    what the check's report measures."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    five_days = reference[reference[DAY_COLUMN] < (FIRST + timedelta(days=5)).isoformat()]
    small = five_days.groupby(DAY_COLUMN).head(1000).reset_index(drop=True)
    assert len(small) - 1000 <= REST_ROWS  # a day's rest (the other 4 days) is compared whole, not sampled
    ordinary = ordinary_drift(small, METHODS, "score")
    methods = {**{c: m for c, (m, _) in METHODS.items()}, "score": "wasserstein"}
    definition = DataDefinition(numerical_columns=["temperature", "income", "score"], categorical_columns=["channel"])
    largest = dict.fromkeys(methods, 0.0)
    for day in sorted(small[DAY_COLUMN].unique()):
        metrics = {c: ValueDrift(column=c, method=m) for c, m in methods.items()}
        on_day = small[DAY_COLUMN] == day
        snapshot = Report(list(metrics.values())).run(
            Dataset.from_pandas(small.loc[on_day, list(methods)], data_definition=definition),
            Dataset.from_pandas(small.loc[~on_day, list(methods)], data_definition=definition),
        )
        for column, metric in metrics.items():
            largest[column] = max(largest[column], float(snapshot.metric_results[metric.metric_id].value))
    assert ordinary is not None and ordinary.days == 5
    assert ordinary.columns == pytest.approx({c: largest[c] for c in METHODS}, rel=1e-9)
    assert ordinary.score == pytest.approx(largest["score"], rel=1e-9)
