"""The reviews store and the final decisions on every engine (DuckDB always; Postgres and Spark Connect when their
servers can run here, as tests/test_warehouse_engines.py): landed reviews replace their day, a UI review is
appended as an amendment, the final decisions take the latest, and a refused batch stores nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from assets.ml.inference import prediction_columns, predictions_table
from assets.ml.spec import load_spec
from assets.review.final_decisions import final_decisions_table, override_figures, per_day, write_final_decisions
from assets.review.store import ReviewRefused, record_reviews, reviews_table
from resources.settings import MODEL_SPECS_DIR
from tests.test_warehouse_engines import postgres, warehouse  # noqa: F401 (the engines' fixtures)

SCORED = date(2026, 3, 1)
REVIEWED = date(2026, 3, 3)
SPEC = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")


def _predictions(engine, day: date = SCORED, case: str = "a") -> None:
    decisions = {"1": ("review", 0.2), "2": ("review", 0.25), "3": ("decline", 0.6), "4": ("approve", 0.01)}
    decisions = {f"{case}-{n}": decided for n, decided in decisions.items()}
    rows = pd.DataFrame(
        {
            "application_id": list(decisions),
            "application_date": [pd.Timestamp(day)] * 4,
            "score": [s for _, s in decisions.values()],
            "decision": [d for d, _ in decisions.values()],
            "model_name": SPEC.name,
            "model_version": 3,
            "dagster_run_id": "r",
            "scored_at": pd.Timestamp(SCORED),
            "decided_by": "champion",
            "reasons": None,
        }
    )
    engine.replace_window(
        predictions_table(SPEC),
        "application_date",
        day,
        day + timedelta(days=1),
        [rows],
        prediction_columns(SPEC),
    )


def _reviews(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "application_id": case,
                "model_name": SPEC.name,
                "reviewer": who,
                "decision": decision,
                "reason": "why",
                "reviewed_at": pd.Timestamp(at),
                "review_date": pd.Timestamp(REVIEWED),
            }
            for case, who, decision, at in rows
        ]
    )


def test_landed_and_appended_reviews_give_the_same_final_decisions_on_every_engine(warehouse):  # noqa: F811
    _predictions(warehouse)
    landed = _reviews(
        ("a-1", "bo", "approve", "2026-03-03 09:00"),
        ("a-2", "bo", "decline", "2026-03-03 09:05"),
        ("a-3", "cy", "approve", "2026-03-03 10:00"),
    )
    window = (REVIEWED, REVIEWED + timedelta(days=1))
    first = record_reviews(warehouse, SPEC, landed, "landing raw.reviews {day}", "file", replace_days=window)
    assert first.scored_days == [SCORED] and first.amendments == 0
    ui = _reviews(("a-1", "dee", "decline", "2026-03-03 12:00")).drop(columns="review_date")
    amended = record_reviews(warehouse, SPEC, ui, "ui run r1", "run r1")
    assert amended.amendments == 1
    record_reviews(warehouse, SPEC, landed, "landing raw.reviews {day}", "file", replace_days=window)  # landed again

    stored = warehouse.query(
        f"SELECT application_id, decision, source, sequence, amends FROM {reviews_table(SPEC)} "
        "ORDER BY application_id, reviewed_at"
    )
    assert stored["source"].tolist() == [
        "landing raw.reviews 2026-03-03",
        "ui run r1",
        "landing raw.reviews 2026-03-03",
        "landing raw.reviews 2026-03-03",
    ]
    assert stored["sequence"].tolist() == [1, 2, 1, 1]
    assert stored["amends"].iloc[1] == "a-1@2026-03-03T09:00:00" and stored["amends"].iloc[[0, 2, 3]].isna().all()

    with pytest.raises(ReviewRefused, match="never scored"):
        record_reviews(warehouse, SPEC, _reviews(("zz", "bo", "approve", "2026-03-03 13:00")), "ui run r2", "run r2")
    with pytest.raises(ReviewRefused, match="field 'decision'"):
        record_reviews(warehouse, SPEC, _reviews(("a-4", "bo", "maybe", "2026-03-03 13:00")), "ui run r3", "run r3")
    assert int(warehouse.query(f"SELECT count(*) AS n FROM {reviews_table(SPEC)}")["n"].iloc[0]) == 4

    written = write_final_decisions(warehouse, SPEC, SCORED, SCORED + timedelta(days=1))
    assert written.day_rows == {SCORED: 4} and written.rows == 4
    assert sorted(written.reviewed["application_id"]) == ["a-1", "a-2", "a-3"]  # what the override figures read
    final = warehouse.query(f"SELECT * FROM {final_decisions_table(SPEC)}").set_index("application_id")
    assert final["final_decision"].to_dict() == {"a-1": "decline", "a-2": "decline", "a-3": "approve", "a-4": "approve"}
    assert final["final_by"].to_dict() == {"a-1": "reviewer", "a-2": "reviewer", "a-3": "reviewer", "a-4": "model"}
    assert final.loc["a-1", "reviewer"] == "dee" and final.loc["a-1", "reviews"] == 2
    assert final["overridden"].to_dict() == {"a-1": False, "a-2": False, "a-3": True, "a-4": False}
    assert final.loc["a-4", "reviews"] == 0 and pd.isna(final.loc["a-4", "reviewer"])
    again = write_final_decisions(warehouse, SPEC, SCORED, SCORED + timedelta(days=1))  # a re-run replaces the day
    assert again.rows == 4 and len(warehouse.query(f"SELECT * FROM {final_decisions_table(SPEC)}")) == 4
    figures = override_figures(SPEC, written.reviewed)
    assert figures["override_rate"] == 1.0 and figures["override_rate_v3"] == 1.0 and figures["reviewed_review"] == 2
    assert figures["settled_decline"] == 2


def test_final_decisions_of_a_range_give_each_day_its_own_figures_on_every_engine(warehouse):  # noqa: F811
    following = SCORED + timedelta(days=1)
    _predictions(warehouse)
    _predictions(warehouse, following, "b")
    reviews = _reviews(("b-3", "bo", "approve", "2026-03-03 09:00"), ("b-2", "bo", "decline", "2026-03-03 09:05"))
    record_reviews(warehouse, SPEC, reviews, "ui run r1", "run r1")

    written = write_final_decisions(warehouse, SPEC, SCORED, following + timedelta(days=1))

    assert written.day_rows == {SCORED: 4, following: 4}
    figures = per_day(SPEC, written)
    assert figures[SCORED] == {"dagster/row_count": 4, "reviewed": 0, "reviewed_model_decisions": 0, "overridden": 0}
    assert figures[following]["dagster/row_count"] == 4 and figures[following]["reviewed"] == 2
    assert figures[following]["override_rate"] == 1.0 and figures[following]["settled_decline"] == 1
    stored = warehouse.query(f"SELECT application_date, count(*) AS n FROM {final_decisions_table(SPEC)} GROUP BY 1")
    assert sorted(stored["n"]) == [4, 4]
