"""Replaying a decision (issue #24): the real predictions asset scores a day of the loan example on the lab
(tests/ml_lab.py: its own warehouse, MLflow store, real training), and one case of it is replayed from the model
input kept with the predictions, with the version its row names.

- a replayed case gives its stored score, decision and reasons exactly, also after its mart row is rebuilt with
  other values (the replay reads the input as scored, not the mart); re-scoring the day replaces its inputs;
- a day re-scored by a new champion replays with the version on its row, an older day with its own;
- the command prints stored and replayed side by side, and no input value; a case it cannot replay (unknown, its
  version's files changed or the version deleted, its input not kept) is a named error and a non-zero exit.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from assets.ml.evaluation import predict
from assets.ml.replay import (
    DIFFERS,
    EXACT,
    ROUNDING,
    AmbiguousCase,
    CaseNotFound,
    InputNotStored,
    VersionUnavailable,
    replay_case,
    same,
)
from assets.ml.spec.loading import load_spec
from jobs import replay as replay_command
from tests.ml_lab import MODEL, WEAK, Lab
from tests.scoring_lab import DAY, predictions, score_day, write_scoring_day
from tests.test_model_integrity import stored_files, tamper

INPUTS = f"predictions.{MODEL}_inputs"
REPO = Path(__file__).resolve().parents[1]


def _spec(lab: Lab):
    return load_spec(lab.specs / "loan_default.yaml")


def _one_day_of_applications(lab: Lab) -> pd.DataFrame:
    mart = lab.write_mart(2)
    return mart[mart["application_date"] == mart["application_date"].max()]


def _inputs(lab: Lab, day) -> pd.DataFrame:
    return lab.warehouse.query(
        f"SELECT * FROM {INPUTS} WHERE application_date = DATE '{day.isoformat()}' ORDER BY application_id"
    )


def _stored(rows: pd.DataFrame, case: str) -> tuple:
    row = rows.set_index("application_id").loc[case]
    return float(row["score"]), row["decision"], row["reasons"]


def test_a_replayed_case_matches_its_stored_decision_even_after_its_mart_row_is_rebuilt(lab):
    assert lab.train() == 1
    applications = _one_day_of_applications(lab)
    write_scoring_day(lab, DAY, applications)
    score_day(lab, DAY)
    scored = predictions(lab, DAY)
    kept = _inputs(lab, DAY)
    # One input row per prediction row, scored at the same moment, with the columns the version read.
    assert list(kept["application_id"]) == list(scored["application_id"])
    assert set(kept["scored_at"]) == set(scored["scored_at"])
    assert set(_spec(lab).features.all) <= set(kept.columns)

    declined = scored[scored["reasons"].notna()]["application_id"].iloc[0]  # outside approve: has reasons
    approved = scored[scored["decision"] == "approve"]["application_id"].iloc[0]
    for case in (declined, approved):
        replay = replay_case(lab.warehouse, lab.registry, _spec(lab), case)
        assert replay.matches, replay.compared
        # The decision and the reasons exactly; the score too, or but for the last digits a batch's sum moves.
        assert replay.verdicts["decision"] == replay.verdicts["reasons"] == EXACT
        assert replay.verdicts["score"] in (EXACT, ROUNDING)
        assert (replay.version, replay.decided_by, replay.day) == (1, "champion", DAY)
        assert tuple(stored for stored, _ in replay.compared.values()) == _stored(scored, case)
    assert replay_case(lab.warehouse, lab.registry, _spec(lab), declined).compared["reasons"][0]  # not empty

    # The mart's day is rebuilt with other values: the model would now score the case differently...
    changed = applications.assign(
        credit_score=applications["credit_score"] - 120, annual_income=applications["annual_income"] / 3
    )
    rebuilt = write_scoring_day(lab, DAY, changed)
    version_1 = lab.registry.load(lab.registry.version(MODEL, 1))
    now = float(predict(version_1, rebuilt[rebuilt["application_id"] == declined], _spec(lab)).score[0])
    assert same("score", _stored(scored, declined)[0], now) == DIFFERS
    # ... but the replay reads the input as scored, and still gives the stored decision.
    replay = replay_case(lab.warehouse, lab.registry, _spec(lab), declined)
    assert replay.matches and replay.compared["score"][0] == _stored(scored, declined)[0]

    # Scoring the day again replaces its inputs with the predictions: no duplicates, and the replay follows.
    score_day(lab, DAY)
    assert list(_inputs(lab, DAY)["application_id"]) == list(scored["application_id"])
    replay = replay_case(lab.warehouse, lab.registry, _spec(lab), declined)
    assert replay.matches and same("score", replay.compared["score"][0], now) != DIFFERS


def test_a_day_rescored_by_a_new_champion_replays_with_the_version_on_its_row(lab):
    assert lab.train(**WEAK) == 1  # reads age, state and channel only
    applications = _one_day_of_applications(lab)
    next_day = DAY + timedelta(days=1)
    for day in (DAY, next_day):
        write_scoring_day(lab, day, applications)
        score_day(lab, day)
    assert lab.train() == 2 and lab.champion() == 2  # the spec's own features: better, promoted (policy auto)
    score_day(lab, DAY, rescore=True)

    case = predictions(lab, DAY)["application_id"].iloc[0]
    assert set(predictions(lab, DAY)["model_version"]) == {2}
    assert set(predictions(lab, next_day)["model_version"]) == {1}
    rescored = replay_case(lab.warehouse, lab.registry, _spec(lab), case, DAY)
    older = replay_case(lab.warehouse, lab.registry, _spec(lab), case, next_day)
    assert (rescored.version, older.version) == (2, 1)
    assert rescored.matches and older.matches, (rescored.compared, older.compared)
    assert rescored.compared["score"] != older.compared["score"]
    # Version 1's day kept what version 1 read: the columns only version 2 reads are NULL there.
    assert _inputs(lab, next_day)["annual_income"].isna().all() and _inputs(lab, DAY)["annual_income"].notna().all()

    with pytest.raises(AmbiguousCase, match=rf"case '{case}' of model '{MODEL}' has 2 rows .*name the day"):
        replay_case(lab.warehouse, lab.registry, _spec(lab), case)


def test_the_command_shows_stored_and_replayed_side_by_side_or_names_why_it_cannot(lab):
    assert lab.train() == 1
    write_scoring_day(lab, DAY, _one_day_of_applications(lab))
    score_day(lab, DAY)
    scored = predictions(lab, DAY)
    case = scored[scored["reasons"].notna()]["application_id"].iloc[0]
    score, decision, reasons = _stored(scored, case)

    # The documented command, in a process of its own, on the deployment's settings (this test's stores).
    shown = subprocess.run(
        [sys.executable, "-m", "jobs.replay", "--model", MODEL, "--case", case, "--day", DAY.isoformat()],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"case '{case}' of {MODEL} on {DAY.isoformat()}: decided by champion version 1")
    [score_line] = [line for line in lines if line.startswith("score ")]
    assert score_line.split()[1] == repr(score) and score_line.split()[3] == "yes"
    assert any(line.split() == ["decision", decision, decision, "yes"] for line in lines)
    assert any(line.startswith("reasons") and line.count(reasons) == 2 for line in lines)
    assert lines[-1].startswith("MATCH: ")
    # No input value is shown: not a feature's name, nor the case's income.
    income = _inputs(lab, DAY).set_index("application_id").loc[case, "annual_income"]
    assert "annual_income" not in shown.stdout and f"{income:g}" not in shown.stdout

    # A case that was never scored, and a day whose input is not kept: named errors, exit status 2.
    out, err = io.StringIO(), io.StringIO()
    assert replay_command.main(["--model", MODEL, "--case", "app-nobody"], out, err) == 2
    assert err.getvalue().startswith("cannot replay: CaseNotFound: case 'app-nobody' of model 'loan_default_risk'")
    assert out.getvalue() == ""
    with pytest.raises(CaseNotFound, match=f"no row in predictions.{MODEL} on {DAY + timedelta(days=1)}"):
        replay_case(lab.warehouse, lab.registry, _spec(lab), case, DAY + timedelta(days=1))

    # The spec's bands changed since the day was scored: the same score, another decision, shown and exit 1.
    bands = [{"name": "approve", "below": 0.99}, {"name": "review", "below": 0.995}, {"name": "decline"}]
    lab.write_spec(decision_bands=bands)
    out = io.StringIO()
    assert replay_command.main(["--model", MODEL, "--case", case], out, io.StringIO()) == 1
    assert out.getvalue().splitlines()[-1] == "DIFFERS: decision, reasons"
    assert any(line.split()[:4] == ["decision", decision, "approve", "NO"] for line in out.getvalue().splitlines())
    lab.write_spec()

    # The version's stored files changed since registration: refused before MLflow reads them.
    tamper(stored_files(lab, 1))
    err = io.StringIO()
    assert replay_command.main(["--model", MODEL, "--case", case], io.StringIO(), err) == 2
    assert err.getvalue().startswith("cannot replay: ModelIntegrityError: ") and "version 1" in err.getvalue()
    tamper(stored_files(lab, 1))  # the byte flipped back: the files are the registered ones again
    assert replay_case(lab.warehouse, lab.registry, _spec(lab), case).matches

    # The version that decided it is deleted from the registry.
    lab.registry.client().delete_model_version(MODEL, "1")
    with pytest.raises(VersionUnavailable, match=f"on {DAY.isoformat()} was decided by version 1: model '{MODEL}'"):
        replay_case(lab.warehouse, lab.registry, _spec(lab), case)

    lab.warehouse.drop_table(INPUTS)  # as for a day scored before inputs were kept
    err = io.StringIO()
    assert replay_command.main(["--model", MODEL, "--case", case], io.StringIO(), err) == 2
    assert "cannot replay: InputNotStored: " in err.getvalue() and f"{INPUTS} does not exist" in err.getvalue()
    with pytest.raises(InputNotStored):
        replay_case(lab.warehouse, lab.registry, _spec(lab), case)
