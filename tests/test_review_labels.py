"""Reviewed outcomes as labels (the spec's ``review.labels_from_reviews``), on the lab's real chain (DuckDB, dbt's
mart rows, MLflow, the real jobs): reviews recorded from a landed file reach the training set only for cases whose
real label never arrived and whose case day is old enough, with the value the reviewer's latest decision maps to; a
real label always wins; the holdout holds none; the count is in the training set's metadata and on the MLflow run,
and the fingerprint follows the rows (no churn on the same reviews). Off, nothing changes. A mapping that does not fit
the spec is a named spec error. The query behind the review rows reads alike on DuckDB, Postgres and Spark Connect."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assets.ml.spec import SpecError, load_spec
from assets.ml.training_set import ALL_TIME
from resources.settings import MODEL_SPECS_DIR
from tests.dbt_marts import FIRST_DAY, LABELED_MART, labeled_applications
from tests.ml_lab import MODEL, Lab
from tests.scoring_lab import score_day, write_scoring_day
from tests.stores import TEST_LABEL_DELAY_DAYS
from tests.test_reviews import land, record_landed
from tests.test_warehouse_engines import postgres, warehouse  # noqa: F401 (the engines' fixtures)

START = date(2026, 1, 1)  # the mart's 30 application days moved into the test deployment's partitions
SHIFT = START - FIRST_DAY
OLD_DAY, YOUNG_DAY, HOLDOUT_DAY = date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 20)  # holdout from Jan 17
LAST_LABEL = START + timedelta(days=29 + TEST_LABEL_DELAY_DAYS)  # the last application's outcome day
REVIEW_DAY = date(2026, 1, 25)
LABELS = {"decline": 1, "approve": 0}
TRAINING_SET_STEP, MODEL_STEP = f"{MODEL}__training_set", f"{MODEL}__model"
OUTCOME_COLUMNS = ["outcome_date", "defaulted", "observed_at"]  # what the scoring mart does not hold


def _shifted(mart: pd.DataFrame) -> pd.DataFrame:
    for column in ("application_date", "applied_at", "outcome_date", "observed_at"):
        mart[column] = pd.to_datetime(mart[column]) + SHIFT
    return mart


def _write_labeled(lab: Lab, mart: pd.DataFrame) -> None:
    lab.warehouse.replace_window(LABELED_MART, "application_date", *ALL_TIME, [mart])


def _cases(mart: pd.DataFrame, day: date, n: int, skip: int = 0) -> list[str]:
    return mart[mart["application_date"] == pd.Timestamp(day)]["application_id"].iloc[skip : skip + n].tolist()


def _review(case: str, decision: str, at: datetime) -> str:
    return f"{case},{MODEL},ana,{decision},checked,{at.isoformat()}"


@pytest.fixture
def reviewed(lab: Lab) -> dict:
    """A champion trained on the whole mart; then cases of three days lose their real label (the mart no longer
    holds them), are scored and reviewed; two reviewed cases of the old day keep theirs. One old case is reviewed
    twice: declined, then approved (the latest counts)."""
    mart = _shifted(labeled_applications(30))
    _write_labeled(lab, mart)
    lab.train()
    old, labeled = _cases(mart, OLD_DAY, 4), _cases(mart, OLD_DAY, 2, skip=4)
    young, late = _cases(mart, YOUNG_DAY, 2), _cases(mart, HOLDOUT_DAY, 2)
    unlabeled = old + young + late
    _write_labeled(lab, mart[~mart["application_id"].isin(unlabeled)])
    for day, cases in ((OLD_DAY, old + labeled), (YOUNG_DAY, young), (HOLDOUT_DAY, late)):
        rows = mart[mart["application_id"].isin(cases)].drop(columns=OUTCOME_COLUMNS)
        write_scoring_day(lab, day, rows)
        score_day(lab, day)
    at = datetime(2026, 1, 25, 10)
    real = mart.set_index("application_id")["defaulted"]
    lines = [_review(old[0], "decline", at), _review(old[1], "decline", at), _review(old[2], "approve", at)]
    lines += [_review(old[3], "decline", at), _review(old[3], "approve", at + timedelta(hours=1))]  # amended
    lines += [_review(c, "approve" if real[c] == 1 else "decline", at) for c in labeled]  # against the real label
    lines += [_review(c, "decline", at) for c in young + late]
    land(lab, REVIEW_DAY, lines)
    assert record_landed(lab, REVIEW_DAY).success
    expected = {old[0]: 1, old[1]: 1, old[2]: 0, old[3]: 0}
    return {"old": expected, "labeled": {c: int(real[c]) for c in labeled}, "young": young, "late": late}


def _training_set(lab: Lab) -> pd.DataFrame:
    return lab.warehouse.query(f"SELECT * FROM ml.{MODEL}_training_set").set_index("application_id")


def _metadata(result, step: str) -> dict:
    [materialized] = result.asset_materializations_for_node(step)
    return {k: v.value for k, v in materialized.metadata.items()}


def _on(after_days: int) -> dict:
    return {"labels_from_reviews": {"after_days": after_days, "labels": LABELS}}


def test_old_reviewed_cases_without_a_real_label_are_learned_from_with_their_mapped_label(lab, reviewed):
    from assets.ml.training import time_split

    # Off (the shipped default): the training set is the mart's labeled rows, as before.
    off = lab.run_training()
    assert off.success
    frame = _training_set(lab)
    assert "label_source" not in frame.columns
    assert not set(reviewed["old"]) & set(frame.index)
    assert "review_labeled_rows" not in _metadata(off, TRAINING_SET_STEP)
    off_fingerprint = _metadata(off, MODEL_STEP)["training_fingerprint"]

    # On: the old day's cases are LAST_LABEL - OLD_DAY days old; the young day's are not old enough.
    after_days = (LAST_LABEL - OLD_DAY).days - 3
    on = lab.run_training(review=_on(after_days))
    assert on.success
    frame = _training_set(lab)
    from_reviews = frame[frame["label_source"] == "review"]
    assert from_reviews["defaulted"].to_dict() == reviewed["old"]  # the latest decision, mapped
    assert (from_reviews["application_date"] == pd.Timestamp(OLD_DAY)).all()
    assert (from_reviews["outcome_date"] == pd.Timestamp(REVIEW_DAY)).all()  # labeled on the review's day
    for case, label in reviewed["labeled"].items():  # a review never overrides a real label
        assert (frame.loc[case, "label_source"], frame.loc[case, "defaulted"]) == ("real", label)
    assert not set(reviewed["young"] + reviewed["late"]) & set(frame.index)
    assert _metadata(on, TRAINING_SET_STEP)["review_labeled_rows"] == 4
    model = _metadata(on, MODEL_STEP)
    assert model["new_version"] is True and model["review_labeled_rows"] == 4
    assert model["training_fingerprint"] != off_fingerprint
    run = lab.registry.client().get_run(model["mlflow_run_id"])
    assert run.data.tags["training.review_labeled_rows"] == "4"

    # The same reviews again: nothing new to learn.
    again = lab.run_training(review=_on(after_days))
    assert _metadata(again, MODEL_STEP)["new_version"] is False

    # A shorter wait takes the young day's cases too, never the holdout's: the gate judges real labels only.
    short = lab.run_training(review=_on(1))
    assert short.success
    frame = _training_set(lab)
    assert set(frame[frame["label_source"] == "review"].index) == set(reviewed["old"]) | set(reviewed["young"])
    assert not set(reviewed["late"]) & set(frame.index)
    spec = load_spec(lab.specs / "loan_default.yaml")
    _, holdout = time_split(frame.reset_index(), spec)
    assert len(holdout) > 0 and (holdout["label_source"] == "real").all()
    assert _metadata(short, TRAINING_SET_STEP)["review_labeled_rows"] == 6
    assert _metadata(short, MODEL_STEP)["training_fingerprint"] != model["training_fingerprint"]


def _load(tmp_path: Path, spec: dict):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_spec(path)


def _with_labels(spec: dict, value) -> dict:
    spec["review"] = {**spec.get("review", {}), "labels_from_reviews": value}
    return spec


def _loan() -> dict:
    return yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())


def test_the_shipped_spec_has_it_off_and_the_on_form_loads(tmp_path):
    assert load_spec(MODEL_SPECS_DIR / "loan_default.yaml").review.review_labels is None
    on = _load(tmp_path, _with_labels(_loan(), {"after_days": 60, "labels": LABELS})).review.review_labels
    assert (on.after_days, on.labels) == (60, LABELS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"after_days": 60, "labels": {"maybe": 1}}, r"labels: 'maybe' is not a decision this spec makes"),
        ({"after_days": 60, "labels": {"review": 1}}, r"labels: 'review' is the review band"),
        ({"after_days": 60, "labels": {"decline": 2}}, r"labels\.decline: 2 is not a value of a binary target"),
        ({"after_days": 60, "labels": {"decline": "yes"}}, r"labels\.decline: 'yes' is not a value of a binary"),
        ({"after_days": 0, "labels": {"decline": 1}}, r"labels_from_reviews\.ReviewLabels\.after_days"),
        (True, r"field 'review\.labels_from_reviews': .*true says too little"),
    ],
)
def test_a_mapping_that_does_not_fit_the_spec_is_a_named_spec_error(tmp_path, value, message):
    with pytest.raises(SpecError, match=message) as raised:
        _load(tmp_path, _with_labels(_loan(), value))
    assert "mine.yaml" in str(raised.value) and "review.labels_from_reviews" in str(raised.value)


def test_a_regression_spec_cannot_learn_from_reviews(tmp_path):
    spec = yaml.safe_load((MODEL_SPECS_DIR / "examples" / "interest_rate.yaml").read_text())
    with pytest.raises(SpecError, match=r"review\.labels_from_reviews: task regression has no decision"):
        _load(tmp_path, _with_labels(spec, {"after_days": 60, "labels": {"prime": 1}}))


def test_the_review_labeled_rows_are_read_alike_on_every_engine(warehouse):  # noqa: F811
    """The query behind the training set's review rows, on DuckDB, Postgres and Spark Connect: 20 labeled days (the
    holdout from Mar 7); reviewed cases without a label on Mar 2-3 join with their latest decision's value, not a
    labeled case, not a holdout day's case, not a review after the reference day."""
    from assets.ml.spec.review import ReviewLabels
    from assets.ml.training_set import MARTS_SCHEMA, review_labeled_rows
    from assets.review.store import review_columns, reviews_table

    shipped = load_spec(MODEL_SPECS_DIR / "loan_default.yaml")
    on = shipped.review.model_copy(update={"labels_from_reviews": ReviewLabels(after_days=5, labels=LABELS)})
    spec = shipped.model_copy(update={"review": on})
    first = date(2026, 3, 1)
    days = [pd.Timestamp(first + timedelta(days=i)) for i in range(20)]
    mart = pd.DataFrame(
        {
            "application_id": [f"m-{i}" for i in range(20)] + ["l-1"],
            "application_date": days + [days[1]],
            "credit_score": [600 + i for i in range(21)],
            "outcome_date": [d + timedelta(days=3) for d in days] + [days[1] + timedelta(days=3)],
            "defaulted": [i % 2 for i in range(20)] + [1],
        }
    )
    scoring = pd.DataFrame(
        {
            "application_id": ["u-1", "u-2", "u-3", "u-4", "l-1"],
            "application_date": [days[1], days[2], days[9], days[1], days[1]],
            "credit_score": [701, 702, 703, 704, 705],
        }
    )
    reviews = pd.DataFrame(
        [
            (case, decision, pd.Timestamp(at))
            for case, decision, at in [
                ("u-1", "decline", "2026-03-05 09:00"),
                ("u-1", "approve", "2026-03-06 09:00"),  # the latest counts
                ("u-2", "decline", "2026-03-05 09:00"),
                ("u-3", "decline", "2026-03-12 09:00"),  # a holdout day's case
                ("u-4", "decline", "2026-03-24 09:00"),  # after the reference day (the last label, Mar 23)
                ("l-1", "approve", "2026-03-05 09:00"),  # labeled: the real label stands
            ]
        ],
        columns=["application_id", "decision", "reviewed_at"],
    ).assign(
        review_id=lambda f: f["application_id"] + "@" + f["reviewed_at"].astype(str),
        model_name=spec.name,
        reviewer="ana",
        reason="checked",
        review_date=lambda f: f["reviewed_at"].dt.normalize(),
        source="ui",
        sequence=1,
        amends=None,
        recorded_at=pd.Timestamp("2026-03-25"),
    )
    warehouse.replace_window(f"{MARTS_SCHEMA}.{spec.training_mart}", "application_date", *ALL_TIME, [mart])
    warehouse.replace_window(f"{MARTS_SCHEMA}.{spec.scoring_mart}", "application_date", *ALL_TIME, [scoring])
    warehouse.replace_window(reviews_table(spec), "review_date", *ALL_TIME, [reviews], review_columns(spec))

    frame = warehouse.read_window(f"{MARTS_SCHEMA}.{spec.training_mart}", "application_date", *ALL_TIME)
    rows = review_labeled_rows(warehouse, spec, frame, first, None, date(2026, 3, 23)).set_index("application_id")
    assert rows["defaulted"].to_dict() == {"u-1": 0, "u-2": 1}
    assert rows["credit_score"].to_dict() == {"u-1": 701, "u-2": 702}  # the scoring mart's row as stored
    assert [pd.Timestamp(d) for d in rows["outcome_date"]] == [pd.Timestamp("2026-03-06"), pd.Timestamp("2026-03-05")]
    assert (rows["label_source"] == "review").all()
