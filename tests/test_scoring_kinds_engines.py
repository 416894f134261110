"""Regression and multiclass prediction rows written by every warehouse engine as the predictions asset writes them
(``Warehouse.replace_window_mapped`` with the picklable :class:`assets.ml.scorer.ScoreRows`; on Spark, run on its
executors) and the review queue copied from them: the same declared columns, the class probabilities a JSON text
every engine reads back, a regression without bands NULL in ``decision``. DuckDB always; Postgres and Spark where
their binaries and Java are installed (skipped otherwise, as in tests/test_warehouse_engines.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml

from assets.ml.evaluation import features, labels
from assets.ml.inference import prediction_columns, review_queue_where
from assets.ml.reasons import explainer_for
from assets.ml.scorer import Scorer, ScoreRows
from assets.ml.spec import load_spec
from resources.registry import VersionInfo
from resources.settings import PROJECT_ROOT
from tests.test_warehouse_engines import _postgres_warehouse, _spark_warehouse, postgres  # noqa: F401 (fixture)

DAY = date(2026, 3, 1)
NEXT = DAY + timedelta(days=1)
SOURCE = "marts.fct_application_features"


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def warehouse(request, tmp_path):
    from resources.warehouse import DuckDBWarehouse

    if request.param == "duckdb":
        yield DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    elif request.param == "spark":
        spark = _spark_warehouse(request.getfixturevalue("spark_server"))
        yield spark
        spark.spark().stop()
    else:
        yield _postgres_warehouse(request.getfixturevalue("postgres"))


def _spec(tmp_path, file: str, **changes):
    spec = yaml.safe_load((PROJECT_ROOT / "model_specs" / "examples" / file).read_text())
    for key, value in changes.items():
        spec[key] = value
        if value is None:
            del spec[key]
    (tmp_path / file).write_text(yaml.safe_dump(spec))
    return load_spec(tmp_path / file)


def _applications(n: int, seed: int = 0) -> pd.DataFrame:
    """Made-up applications with every column the example specs read."""
    rng = np.random.default_rng(seed)
    income = rng.uniform(20_000, 150_000, n)
    amount = rng.uniform(1_000, 40_000, n)
    purposes = np.asarray(["debt_consolidation", "credit_card", "small_business"], dtype=object)
    return pd.DataFrame(
        {
            "application_id": [f"app-{i:04d}" for i in range(n)],
            "application_date": pd.Timestamp(DAY),
            "loan_amount": amount,
            "annual_income": income,
            "loan_to_income": amount / income,
            "term_months": rng.choice([36, 60], n).astype("float64"),
            "age": rng.integers(21, 70, n).astype("float64"),
            "employment_length_years": rng.integers(0, 20, n).astype("float64"),
            "credit_score": rng.integers(550, 820, n).astype("float64"),
            "debt_to_income": rng.uniform(0, 0.5, n),
            "delinquencies_2y": rng.integers(0, 3, n).astype("float64"),
            "revolving_utilization": rng.uniform(0, 1, n),
            "inquiries_6m": rng.integers(0, 4, n).astype("float64"),
            "home_ownership": rng.choice(np.asarray(["RENT", "OWN", "MORTGAGE"], dtype=object), n),
            "channel": rng.choice(np.asarray(["web", "branch"], dtype=object), n),
            "purpose": purposes[(amount > 20_000).astype(int) + (income > 100_000).astype(int)],
            "interest_rate": 30 - (rng.integers(550, 820, n) / 40) + rng.normal(0, 1, n),
        }
    )


def _scorer(spec) -> Scorer:
    """The spec's pipeline fitted on other made-up applications, as the champion, with its reason codes."""
    from assets.ml.training import build_pipeline

    rows = _applications(300, seed=1)
    pipeline = build_pipeline(spec)
    pipeline.fit(features(rows, spec), labels(rows, spec))
    explainer = explainer_for(pipeline, spec.features.numeric, spec.features.categorical, spec.reason_codes, spec.task)
    return Scorer("champion", VersionInfo(spec.name, 1, "run", {}), pipeline, explainer)


def _write(warehouse, spec, scorer) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the day into the predictions table and copy the review queue, as score_window does; read both."""
    warehouse.replace_window(SOURCE, "application_date", DAY, NEXT, [_applications(40)])
    table, queue = f"predictions.{spec.name}", f"predictions.{spec.name}_review_queue"
    columns = prediction_columns(spec)
    written = warehouse.replace_window_mapped(
        table, "application_date", DAY, NEXT, SOURCE, ScoreRows(spec, scorer, "run-1"), columns
    )
    assert written == 40
    warehouse.ensure_table(queue, columns, "application_date")
    names = [c.name for c in columns]
    warehouse.replace_window_from(
        queue, "application_date", DAY, NEXT, table, where=review_queue_where(spec), columns=names
    )
    read = [warehouse.query(f"SELECT * FROM {t} ORDER BY application_id") for t in (table, queue)]
    assert [sorted(r.columns) for r in read] == [sorted(names)] * 2  # Spark puts its partition column last
    return read[0], read[1]


def test_multiclass_rows_on_every_engine(warehouse, tmp_path):
    logistic = {"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}}
    spec = _spec(tmp_path, "loan_purpose.yaml", estimator=logistic)
    scorer = _scorer(spec)
    scored, queue = _write(warehouse, spec, scorer)
    proba = scorer.model.predict_proba(features(_applications(40), spec))
    classes = list(scorer.model.classes_)
    assert scored["predicted_class"].tolist() == [classes[i] for i in proba.argmax(axis=1)]
    parsed = [json.loads(text) for text in scored["class_probabilities"]]
    assert all(list(row) == classes for row in parsed)
    np.testing.assert_allclose([[row[c] for c in classes] for row in parsed], proba, rtol=1e-9)
    np.testing.assert_allclose(scored["score"], proba.max(axis=1), rtol=1e-9)
    decisions = [spec.class_decisions.get(c, c) for c in scored["predicted_class"]]
    assert scored["decision"].tolist() == decisions
    in_review = scored["decision"] == spec.review_band
    assert 0 < in_review.sum() < len(scored)
    assert queue["application_id"].tolist() == scored.loc[in_review, "application_id"].tolist()
    assert scored.loc[in_review, "reasons"].notna().all() and scored.loc[~in_review, "reasons"].isna().all()


def test_regression_without_bands_on_every_engine(warehouse, tmp_path):
    spec = _spec(
        tmp_path,
        "interest_rate.yaml",
        estimator={"class": "sklearn.linear_model.Ridge"},
        decision_bands=None,
        review_band=None,
    )
    scorer = _scorer(spec)
    scored, queue = _write(warehouse, spec, scorer)
    np.testing.assert_allclose(scored["score"], scorer.model.predict(features(_applications(40), spec)), rtol=1e-9)
    assert scored["decision"].isna().all() and scored["reasons"].notna().all() and queue.empty
    assert (scored["decided_by"] == "champion").all() and (scored["model_version"] == 1).all()


@pytest.mark.parametrize("file", ["loan_purpose.yaml", "interest_rate.yaml"])
def test_the_kept_inputs_replay_every_row_on_every_engine(warehouse, tmp_path, file):
    """The model input kept beside the predictions (``InputRows``, one write with them) comes back from every engine
    as scored: each row re-scored from it alone gives its stored outputs (assets.ml.replay); a re-run replaces it."""
    from assets.ml.inference import input_columns, inputs_table
    from assets.ml.replay import DIFFERS, rescored, same
    from assets.ml.scorer import InputRows, read_columns
    from resources.warehouse.mapped import MappedTable

    estimator = {"loan_purpose.yaml": "LogisticRegression", "interest_rate.yaml": "Ridge"}[file]
    spec = _spec(tmp_path, file, estimator={"class": f"sklearn.linear_model.{estimator}"})
    scorer = _scorer(spec)
    day = _applications(40)
    day.loc[3, spec.features.categorical[0]] = None  # a missing value of each kind is kept as missing
    day.loc[5, spec.features.numeric[0]] = np.nan
    warehouse.replace_window(SOURCE, "application_date", DAY, NEXT, [day])
    scored_at = pd.Timestamp("2026-03-02 01:02:03.456789").to_pydatetime()
    inputs = InputRows(
        spec.name, "application_id", "application_date", *map(tuple, read_columns(spec, [scorer])), scored_at
    )
    targets = [
        MappedTable(
            f"predictions.{spec.name}", ScoreRows(spec, scorer, "run-1", None, scored_at), prediction_columns(spec)
        ),
        MappedTable(inputs_table(spec), inputs, input_columns(spec, inputs)),
    ]
    for _ in range(2):  # a re-run of the day replaces both
        assert warehouse.replace_windows_mapped("application_date", DAY, NEXT, SOURCE, targets) == [40, 40]
    scored = warehouse.query(f"SELECT * FROM predictions.{spec.name} ORDER BY application_id")
    kept = warehouse.query(f"SELECT * FROM {inputs_table(spec)} ORDER BY application_id")
    assert kept["application_id"].tolist() == scored["application_id"].tolist() == day["application_id"].tolist()
    assert sorted(kept.columns) == sorted({c.name for c in input_columns(spec, inputs)})
    assert pd.isna(kept.loc[3, spec.features.categorical[0]]) and pd.isna(kept.loc[5, spec.features.numeric[0]])
    assert kept[spec.features.categorical[0]].drop(3).tolist() == day[spec.features.categorical[0]].drop(3).tolist()
    assert (pd.to_datetime(kept["scored_at"]) == pd.Timestamp(scored_at)).all()
    for i in range(len(scored)):
        compared = rescored(spec, scorer, scored.iloc[i], kept.iloc[[i]].reset_index(drop=True))
        assert [name for name, pair in compared.items() if same(name, *pair) == DIFFERS] == [], compared
