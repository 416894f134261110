"""Reviews as data, on the lab's real chain (DuckDB, MLflow, the real jobs): a review file landed in raw.reviews and
a decision from the record_review job both reach predictions.<model>_final_decisions and its override metadata;
bad reviews are refused by name and store nothing; a contradicting review is an amendment; re-landing a day
gives no duplicates; the override_rate check fails above its error threshold."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from assets.ml.spec import load_specs
from tests.ml_lab import MODEL, Lab
from tests.scoring_lab import DAY, predictions, score_day, write_scoring_day

REVIEW_DAY = DAY + timedelta(days=2)
REVIEWS_STEP = f"{MODEL}__reviews"
FINAL = f"predictions.{MODEL}_final_decisions"
FINAL_KEY = dg.AssetKey([MODEL, "final_decisions"])
HEADER = "application_id,model_name,reviewer,decision,reason,reviewed_at\n"


@pytest.fixture
def scored(lab: Lab) -> pd.DataFrame:
    """A champion and one scored day: its predictions, with cases in the review band and outside it."""
    lab.train()
    mart = lab.write_mart(2)
    write_scoring_day(lab, DAY, mart[mart["application_date"] == mart["application_date"].max()])
    score_day(lab, DAY)
    rows = predictions(lab, DAY)
    assert (rows["decision"] == "review").sum() >= 3 and (rows["decision"] != "review").sum() >= 2
    return rows


def land(lab: Lab, day: date, lines: list[str]) -> None:
    folder = lab.settings.landing_dir / "raw" / "reviews"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{day.isoformat()}.csv").write_text(HEADER + "".join(line + "\n" for line in lines))


def record_landed(lab: Lab, day: date) -> dg.ExecuteInProcessResult:
    """The nightly job's raw.reviews and <model>/reviews steps for ``day``, as the nightly run takes them."""
    keys = [dg.AssetKey(["raw", "reviews"]), dg.AssetKey([MODEL, "reviews"])]
    return (
        lab.defs()
        .resolve_job_def("nightly")
        .execute_in_process(
            partition_key=day.isoformat(), asset_selection=keys, instance=lab.instance, raise_on_error=False
        )
    )


def record_ui(
    lab: Lab, case: str, decision: str, reviewer: str = "ana", reason: str = "checked"
) -> dg.ExecuteInProcessResult:
    config = {"model": MODEL, "case_id": case, "reviewer": reviewer, "decision": decision, "reason": reason}
    return (
        lab.defs()
        .resolve_job_def("record_review")
        .execute_in_process(
            run_config={"ops": {"record_review_decision": {"config": config}}},
            instance=lab.instance,
            raise_on_error=False,
        )
    )


def failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    [error] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return (error.cause or error).message if error.cls_name != "ReviewRefused" else error.message


def final_rows(lab: Lab) -> pd.DataFrame:
    return lab.warehouse.query(f"SELECT * FROM {FINAL} ORDER BY application_id").set_index("application_id")


def stored_reviews(lab: Lab) -> pd.DataFrame:
    if not lab.warehouse.table_exists(f"reviews.{MODEL}"):
        return pd.DataFrame()
    return lab.warehouse.query(f"SELECT * FROM reviews.{MODEL} ORDER BY reviewed_at")


def final_materialization(result: dg.ExecuteInProcessResult, day: date) -> dict:
    [event] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key == FINAL_KEY
        and e.event_specific_data.materialization.partition == day.isoformat()
    ]
    return {k: v.value for k, v in event.metadata.items()}


def test_landed_and_ui_reviews_reach_the_final_decisions_and_the_override_figures(lab, scored):
    in_band = scored[scored["decision"] == "review"]["application_id"].tolist()
    decided = scored[scored["decision"] != "review"].iloc[0]
    flipped = "approve" if decided["decision"] == "decline" else "decline"
    land(
        lab,
        REVIEW_DAY,
        [
            f"{in_band[0]},{MODEL},bo,approve,income verified,{REVIEW_DAY} 09:00:00",
            f'{in_band[1]},{MODEL},bo,decline,"too many inquiries, thin file",{REVIEW_DAY} 09:05:00',
            f"{decided['application_id']},{MODEL},cy,{flipped},appeal upheld,{REVIEW_DAY} 10:00:00",
        ],
    )
    landed = record_landed(lab, REVIEW_DAY)
    assert landed.success, failure(landed)
    figures = final_materialization(landed, DAY)  # the scored day of the reviewed cases, rewritten at once
    assert figures["reviewed"] == 3 and figures["reviewed_review"] == 2
    assert figures["settled_approve"] == 1 and figures["settled_decline"] == 1
    assert figures["override_rate"] == 1.0 and figures[f"override_rate_{decided['decision']}"] == 1.0
    assert figures["override_rate_v1"] == 1.0
    [check] = [c for c in landed.get_asset_check_evaluations() if c.check_name == "override_rate"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR  # 1.0 > the spec's 0.4

    final = final_rows(lab)
    assert len(final) == len(scored)
    assert final.loc[in_band[0], ["final_decision", "final_by", "reviewer"]].tolist() == ["approve", "reviewer", "bo"]
    assert final.loc[in_band[1], "reason"] == "too many inquiries, thin file"
    assert final.loc[decided["application_id"], "overridden"]
    assert final.loc[in_band[2], ["final_decision", "final_by"]].tolist() == ["review", "model"]
    assert final.loc[in_band[0], "review_source"] == f"landing raw.reviews {REVIEW_DAY}"

    ui = record_ui(lab, in_band[2], "decline", reviewer="dee", reason="collateral missing")
    assert ui.success, failure(ui)
    final = final_rows(lab)
    assert final.loc[in_band[2], ["final_decision", "reviewer", "reason"]].tolist() == [
        "decline",
        "dee",
        "collateral missing",
    ]
    assert final.loc[in_band[2], "review_source"] == f"ui run {ui.run_id}"
    assert final.loc[in_band[2], "model_version"] == 1
    assert final_materialization(ui, DAY)["settled_decline"] == 2

    # The daily asset itself (as the nightly run materializes it) gives the same table and figures.
    result = (
        lab.defs()
        .resolve_job_def("nightly")
        .execute_in_process(partition_key=DAY.isoformat(), asset_selection=[FINAL_KEY], instance=lab.instance)
    )
    [materialized] = result.asset_materializations_for_node(f"{MODEL}__final_decisions")
    assert materialized.metadata["reviewed"].value == 4 and materialized.metadata["override_rate"].value == 1.0
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


def test_an_unknown_case_or_a_decision_the_model_does_not_make_is_refused_by_name_and_stores_nothing(lab, scored):
    case = scored[scored["decision"] == "review"]["application_id"].iloc[0]
    unknown = record_ui(lab, "no-such-application", "approve")
    assert "never scored" in failure(unknown) and "no-such-application" in failure(unknown)
    bad = record_ui(lab, case, "maybe")
    assert "field 'decision'" in failure(bad) and "'maybe'" in failure(bad)
    assert "approve" in failure(bad) and "decline" in failure(bad)
    settled_by_review = record_ui(lab, case, "review")  # the review band settles nothing
    assert "'review'" in failure(settled_by_review)
    land(
        lab,
        REVIEW_DAY,
        [f"{case},{MODEL},bo,approve,ok,{REVIEW_DAY} 09:00:00", f"x-1,{MODEL},bo,approve,ok,{REVIEW_DAY} 09:01:00"],
    )
    landed = record_landed(lab, REVIEW_DAY)
    assert f"raw.reviews {REVIEW_DAY} (its landing file)" in failure(landed) and "x-1" in failure(landed)
    assert stored_reviews(lab).empty


def test_a_contradicting_review_is_an_amendment_and_relanding_a_day_adds_no_duplicates(lab, scored):
    case = scored[scored["decision"] == "review"]["application_id"].iloc[0]
    land(lab, REVIEW_DAY, [f"{case},{MODEL},bo,approve,income verified,{REVIEW_DAY} 09:00:00"])
    assert record_landed(lab, REVIEW_DAY).success
    ui = record_ui(lab, case, "decline", reviewer="dee", reason="fraud flag")
    assert ui.success, failure(ui)
    reviews = stored_reviews(lab)
    assert reviews["decision"].tolist() == ["approve", "decline"] and reviews["sequence"].tolist() == [1, 2]
    assert reviews["amends"].iloc[1] == reviews["review_id"].iloc[0]  # recorded as an amendment, nothing replaced
    assert final_rows(lab).loc[case, ["final_decision", "reviewer", "reviews"]].tolist() == ["decline", "dee", 2]

    again = record_landed(lab, REVIEW_DAY)  # the same day landed again
    assert again.success
    after = stored_reviews(lab)
    assert len(after) == 2 and after["review_id"].tolist() == reviews["review_id"].tolist()
    assert final_rows(lab).loc[case, "final_decision"] == "decline"  # the latest still counts

    quiet_day = record_landed(lab, REVIEW_DAY + timedelta(days=1))  # no file that day (missing_day: empty)
    assert quiet_day.success and len(stored_reviews(lab)) == 2


def test_the_loan_examples_review_file_and_ui_amendment_show_in_the_final_decisions(lab, scored):
    """What `make run` does after scoring (jobs/review_example.py), on the lab's scored day; done twice, it stores
    the same reviews (the file lands again, the UI decision is not recorded twice)."""
    import io

    from jobs.review_example import land_and_record_reviews

    spec = next(iter(load_specs(lab.specs).values()))
    for _ in range(2):
        land_and_record_reviews(io.StringIO(), lab.settings, lab.defs(), lab.instance, [spec], DAY, REVIEW_DAY)
    assert (lab.settings.landing_dir / "raw" / "reviews" / f"{REVIEW_DAY}.csv").exists()
    reviews = stored_reviews(lab)
    landed = reviews[reviews["source"] == f"landing raw.reviews {REVIEW_DAY}"]
    ui = reviews[reviews["source"].str.startswith("ui run ")]
    assert len(landed) >= 5 and len(ui) == 1 and ui["amends"].notna().all()
    final = final_rows(lab)
    assert (final["final_by"] == "reviewer").sum() == len(landed)
    assert final.loc[ui["application_id"].iloc[0], "reviewer"] == "reviewer.lead"
