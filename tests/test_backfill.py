"""The past-window flags of the bootstrap (jobs/backfill.py): the default training day, and each flag that cannot be
honoured refused with its name and what is wrong, before any run. Fast: nothing runs (tests/test_foreign_domain.py
runs the command end to end)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest

from assets.ml.spec import load_spec
from jobs.backfill import FlagError, PastWindow, default_train_as_of, plan_past_window
from resources.settings import MODEL_SPECS_DIR, Settings

START, LAST = date(2025, 1, 1), date(2025, 12, 31)


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env(), start_date=START, end_date=LAST, label_delay_days=30)


@pytest.fixture
def specs():
    loans = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")  # 90-day window, the settings' label delay
    parcels = load_spec(Path(__file__).parent / "foreign_domain" / "parcel_late.yaml")  # 30-day window
    return [loans, parcels]


def _with_delay(spec, days: int):
    return spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"label_delay_days": days})})


def test_the_default_training_day_is_when_every_first_window_has_its_labels(settings, specs):
    loans, parcels = specs
    day, why = default_train_as_of([parcels], settings)
    assert day == START + timedelta(days=30 - 1 + 30)  # the settings' label delay
    assert day == default_train_as_of([_with_delay(parcels, 30)], settings)[0]
    assert default_train_as_of([_with_delay(parcels, 2)], settings)[0] == START + timedelta(days=29 + 2)
    day, why = default_train_as_of(specs, settings)  # the latest: the loans' 90-day window
    assert day == START + timedelta(days=90 - 1 + 30) and "loan_default_risk" in why and "90-day" in why


def test_all_history_ingests_the_window_trains_as_of_a_day_and_scores_the_rest(settings, specs):
    default = START + timedelta(days=119)
    assert plan_past_window(settings, specs, LAST, all_history=True) == PastWindow(
        last=LAST, score_from=default + timedelta(days=1), score_to=LAST, ingest_from=START, train_as_of=default
    )
    given = date(2025, 3, 1)
    plan = plan_past_window(settings, specs, LAST, all_history=True, train_as_of=given)
    assert (plan.ingest_from, plan.train_as_of, plan.score_from, plan.score_to) == (
        START,
        given,
        date(2025, 3, 2),
        LAST,
    )


def test_scoring_days_alone_neither_ingests_nor_trains(settings, specs):
    plan = plan_past_window(settings, specs, LAST, all_history=False, score_from=date(2025, 6, 1))
    assert plan == PastWindow(last=LAST, score_from=date(2025, 6, 1), score_to=LAST)
    plan = plan_past_window(
        settings, specs, LAST, all_history=False, score_from=date(2025, 6, 1), score_to=date(2025, 6, 1)
    )
    assert (plan.score_from, plan.score_to, plan.ingest_from, plan.train_as_of) == (
        date(2025, 6, 1),
        date(2025, 6, 1),
        None,
        None,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"all_history": True, "train_as_of": date(2024, 12, 31)}, "--train-as-of 2024-12-31 is outside the window"),
        ({"all_history": True, "train_as_of": date(2026, 1, 1)}, "--train-as-of 2026-01-01 is outside the window"),
        ({"all_history": True, "train_as_of": LAST}, "--train-as-of 2025-12-31 leaves no day to score"),
        ({"all_history": False, "train_as_of": date(2025, 3, 1)}, "--train-as-of trains before scoring"),
        ({"all_history": True, "score_from": date(2025, 3, 1)}, "--all-history scores every day after"),
        ({"all_history": False, "score_to": date(2025, 3, 1)}, "--score-to needs --score-from"),
        ({"all_history": False, "score_from": date(2024, 3, 1)}, "--score-from 2024-03-01 is outside the window"),
        (
            {"all_history": False, "score_from": date(2025, 3, 1), "score_to": date(2026, 3, 1)},
            "--score-to 2026-03-01 is outside the window",
        ),
        (
            {"all_history": False, "score_from": date(2025, 3, 2), "score_to": date(2025, 3, 1)},
            "--score-from 2025-03-02 is after --score-to 2025-03-01",
        ),
    ],
)
def test_a_flag_that_cannot_be_honoured_is_refused_naming_it(settings, specs, flags, message):
    with pytest.raises(FlagError, match=message):
        plan_past_window(settings, specs, LAST, **flags)


def test_a_window_too_short_for_the_default_training_day_asks_for_the_flag(settings, specs):
    short = dataclasses.replace(settings, end_date=START + timedelta(days=60))
    with pytest.raises(FlagError, match=r"--train-as-of not given, and its default 2025-04-30 .*loan_default_risk"):
        plan_past_window(short, specs, short.end_date, all_history=True)


def test_the_command_stops_before_any_run_naming_the_flag(nightjar_env, capsys):
    from jobs.bootstrap import main

    with pytest.raises(SystemExit) as stopped:
        main(["--all-history", "--train-as-of", "1999-01-01"])
    assert stopped.value.code == 2
    assert "--train-as-of 1999-01-01 is outside the window" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--score-from", "2025-13-01"])
    assert "argument --score-from: '2025-13-01' is not a day (YYYY-MM-DD)" in capsys.readouterr().err
