"""Drift on real Evidently runs: no false alarm on same-distribution data, exactly the shifted columns flagged, each
column judged by its threshold, the figures those of Evidently's own report on the same frames (one ValueDrift per
column, its public API), the spec's methods and thresholds per column type and per column, and a stable, bounded
sample."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assets.ml.inference import predictions_table
from assets.ml.spec import DRIFT_METHODS, Monitoring, Thresholds, load_spec
from assets.monitoring.drift import DriftResult, run_drift, severity
from assets.monitoring.scored_day import sample_scored_day
from resources.failures import DataFailure
from resources.warehouse import DuckDBWarehouse, NotInWarehouse

NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = ["cat_a", "cat_b"]
SCORE = "score"
THRESHOLD = 0.1  # what the default methods (wasserstein, jensenshannon) use when the spec sets none
CAT_A = ["a", "b", "c", "d"]
CAT_A_MIX = [0.4, 0.3, 0.2, 0.1]
CAT_A_SHIFTED_MIX = [0.2, 0.3, 0.2, 0.3]
SHIFTED_NUMERIC = ["num_0", "num_1", "num_2"]


def make_frame(rows: int, seed: int, shift_sd: float = 0.0, cat_a_mix: list[float] = CAT_A_MIX) -> pd.DataFrame:
    """Numeric columns of different locations and scales (the shift is in units of each column's sd)."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"id": np.arange(seed * 10_000_000, seed * 10_000_000 + rows)}
    for i, name in enumerate(NUMERIC):
        loc, scale = 10.0 * i, 1.0 + i
        shift = shift_sd * scale if name in SHIFTED_NUMERIC else 0.0
        data[name] = rng.normal(loc + shift, scale, rows)
    data["cat_a"] = rng.choice(CAT_A, rows, p=cat_a_mix)
    data["cat_b"] = rng.choice(["north", "south", "east", "west", "centre"], rows)
    data[SCORE] = rng.beta(2, 8, rows)
    return pd.DataFrame(data)


def evidently_scores(reference: pd.DataFrame, current: pd.DataFrame, methods: Mapping[str, str]) -> dict[str, float]:
    """Evidently's own drift score of each column of ``methods`` (column -> method) on these frames: a plain report
    of one ValueDrift per column, read through its public results, none of nightjar's code on the way."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    columns = list(methods)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )
    metrics = {column: ValueDrift(column=column, method=method) for column, method in methods.items()}
    snapshot = Report(list(metrics.values())).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return {column: float(snapshot.metric_results[m.metric_id].value) for column, m in metrics.items()}


def assert_evidently_s_figures(result: DriftResult, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """Each column's figure and the score's are Evidently's for these frames by the method the result names, and a
    column (all distance methods here) is drifted exactly when its figure reaches the threshold it was judged by."""
    expected = evidently_scores(reference, current, {**result.column_methods, SCORE: result.score_method})
    assert list(result.column_scores) == list(result.column_methods)
    for column, score in result.column_scores.items():
        assert score == pytest.approx(expected[column], rel=1e-9, abs=1e-12), column
    assert result.score_drift == pytest.approx(expected[SCORE], rel=1e-9)
    judged = [c for c, score in result.column_scores.items() if score >= result.column_thresholds[c]]
    assert result.drifted_columns == judged
    assert result.drift_share == pytest.approx(len(judged) / len(result.column_scores))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(5000, seed=1)


@pytest.fixture(scope="module")
def same(reference, tmp_path_factory) -> tuple[DriftResult, pd.DataFrame, Path]:
    current = make_frame(5000, seed=2)
    report = tmp_path_factory.mktemp("drift") / "same" / "drift.json.gz"
    evidently = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, report, partition_rows=123_456)
    return evidently, current, report


@pytest.fixture(scope="module")
def shifted(reference) -> tuple[DriftResult, pd.DataFrame]:
    current = make_frame(5000, seed=3, shift_sd=0.5, cat_a_mix=CAT_A_SHIFTED_MIX)
    return run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None), current


def test_same_distribution_has_no_drift(same, reference):
    evidently, current, _ = same
    monitoring = Monitoring()
    assert evidently.drifted_columns == []
    assert evidently.drift_share == 0.0
    assert severity(evidently.drift_share, monitoring.drift_share) == "ok"
    assert severity(evidently.score_drift, monitoring.score_drift) == "ok"
    assert max(evidently.column_scores.values()) < THRESHOLD / 2
    assert_evidently_s_figures(evidently, reference, current)


def test_result_describes_what_was_compared(same):
    evidently, _, _ = same
    assert set(evidently.column_scores) == set(NUMERIC + CATEGORICAL)
    assert {evidently.column_methods[c] for c in NUMERIC} == {"wasserstein"}
    assert {evidently.column_methods[c] for c in CATEGORICAL} == {"jensenshannon"}
    assert evidently.score_method == "wasserstein"
    assert evidently.column_threshold == THRESHOLD
    assert (evidently.rows_current, evidently.sample_rows, evidently.rows_reference) == (123_456, 5000, 5000)


def test_shifted_columns_and_only_those_drift(shifted, reference):
    evidently, current = shifted
    expected = [*SHIFTED_NUMERIC, "cat_a"]
    assert evidently.drifted_columns == expected
    assert evidently.drift_share == pytest.approx(len(expected) / len(NUMERIC + CATEGORICAL))
    for column in SHIFTED_NUMERIC:  # shifted by half a standard deviation: a normed Wasserstein distance of 0.5
        assert evidently.column_scores[column] == pytest.approx(0.5, abs=0.06)
    assert severity(evidently.drift_share, Monitoring().drift_share) == "error"
    assert_evidently_s_figures(evidently, reference, current)


def test_methods_are_forced_on_small_samples(reference):
    """Below 1000 reference rows Evidently would pick KS / chi-square; the check must keep the distances."""
    small_reference = reference.head(300)
    current = make_frame(400, seed=4)
    evidently = run_drift(small_reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert set(evidently.column_methods.values()) == {"wasserstein", "jensenshannon"}
    assert_evidently_s_figures(evidently, small_reference, current)


def test_default_methods_judge_at_their_default_threshold(reference):
    """The spec's defaults (no column_drift_threshold) are today's: 0.1 for Wasserstein and Jensen-Shannon."""
    monitoring = Monitoring()
    assert monitoring.column_drift_threshold is None
    assert (monitoring.num_method, monitoring.cat_method) == ("wasserstein", "jensenshannon")
    current = make_frame(5000, seed=3, shift_sd=0.5, cat_a_mix=CAT_A_SHIFTED_MIX)
    result = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, monitoring.column_drift_threshold, None)
    assert set(result.column_thresholds.values()) == {THRESHOLD}
    assert result.drifted_columns == [*SHIFTED_NUMERIC, "cat_a"]


def test_methods_and_thresholds_per_type_and_per_column(reference):
    """The spec's num_method / cat_method, column_methods and column_thresholds reach Evidently; each column's
    verdict follows its own method and threshold, and the result says which it was judged by."""
    current = make_frame(5000, seed=3, shift_sd=0.5, cat_a_mix=CAT_A_SHIFTED_MIX)
    result = run_drift(
        reference,
        current,
        NUMERIC,
        CATEGORICAL,
        SCORE,
        None,
        None,
        num_method="psi",
        cat_method="jensenshannon",
        column_methods={"num_5": "ks", "cat_b": "psi"},
        column_thresholds={"num_0": 5.0, "cat_a": 0.5},
    )
    assert result.column_methods == {
        **{c: "psi" for c in NUMERIC},
        "num_5": "ks",
        "cat_a": "jensenshannon",
        "cat_b": "psi",
    }
    assert result.column_thresholds == {
        **{c: 0.1 for c in NUMERIC},
        "num_0": 5.0,
        "num_5": 0.05,
        "cat_a": 0.5,
        "cat_b": 0.1,
    }
    # num_0's own threshold and cat_a's keep them from drifting; num_1, num_2 drift by PSI; num_5 by KS (p-value)
    # does not, nor anything unshifted.
    assert result.drifted_columns == ["num_1", "num_2"]
    assert 0.0 <= result.column_scores["num_5"] <= 1.0  # a p-value
    assert result.score_method == "wasserstein"


def test_the_method_table_is_evidently_s(reference):
    """assets.ml.spec.DRIFT_METHODS (checked at spec load, without importing evidently) against Evidently's own stat
    tests: those its stattests module exports (the module its "Customize Data Drift" page documents, under
    ``legacy`` in 0.7), each with the column types it accepts and its default threshold."""
    from evidently import ColumnType
    from evidently.legacy.calculations import stattests

    kinds = {ColumnType.Numerical: "numeric", ColumnType.Categorical: "categorical"}
    exported = [getattr(stattests, name) for name in stattests.__all__]
    registered = {
        test.name: ({kinds[t] for t in test.allowed_feature_types if t in kinds}, test.default_threshold)
        for test in exported
        if isinstance(test, stattests.StatTest) and set(test.allowed_feature_types) & set(kinds)
    }
    assert {name: (set(types), default) for name, (types, _, default) in DRIFT_METHODS.items()} == registered
    # p-value or distance: a p-value test drifts on the same-distribution frames at a threshold of 1 (every p < 1),
    # a distance never does at a huge threshold.
    same = make_frame(2000, seed=2)
    for name, (types, kind, _) in DRIFT_METHODS.items():
        if "numeric" not in types or name in {"es", "empirical_mmd", "anderson", "cramer_von_mises"}:
            continue  # slow or noisy on 2000 rows; the table's kind for them is taken from Evidently's source
        result = run_drift(
            reference.head(2000),
            same,
            ["num_3"],
            [],
            SCORE,
            None,
            None,
            num_method=name,
            column_thresholds={"num_3": 0.999999 if kind == "p_value" else 1e9},
        )
        assert result.drifted_columns == (["num_3"] if kind == "p_value" else []), name


def test_score_is_not_compared_without_reference_scores(reference):
    """A served-days reference scored by another version has no scores to compare: score drift is NaN, and the
    features are still compared."""
    current = make_frame(3000, seed=5)
    unscored = reference.assign(**{SCORE: np.nan})
    result = run_drift(unscored, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert np.isnan(result.score_drift) and result.score_reference_rows == 0
    assert result.drifted_columns == [] and len(result.column_scores) == len(NUMERIC + CATEGORICAL)
    # Partly scored: only the scored rows count; the score's drift is Evidently's against those rows alone.
    partly = reference.assign(**{SCORE: reference[SCORE].where(reference.index % 3 == 0)})
    evidently = run_drift(partly, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert evidently.score_reference_rows == (reference.index % 3 == 0).sum()
    scored_only = evidently_scores(partly[partly[SCORE].notna()], current, {SCORE: "wasserstein"})
    assert evidently.score_drift == pytest.approx(scored_only[SCORE], rel=1e-9)
    assert evidently.column_scores == result.column_scores  # the features, compared alike scored or not


def test_the_report_is_stored_compactly_and_renders_as_evidentlys_page(same):
    """Evidently's snapshot at 6 significant digits, gzipped: a fraction of its 4.7 MB standalone page, which it
    renders to the same dashboard."""
    from assets.monitoring.report_page import render

    _, _, report = same
    assert 5_000 < report.stat().st_size < 200_000
    page = render(report)
    assert len(page) > 1_000_000 and "<html" in page[:2000].lower() and "drawDashboard" in page
    for column in (*NUMERIC, *CATEGORICAL):
        assert column in page


def test_html_report_states_the_checks_drift_share_not_evidentlys(reference, tmp_path):
    """The report's header says at which share of drifted features the dataset counts as drifted: the check's
    warn threshold, not Evidently's default of 0.5, so report and check say the same."""
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    from assets.monitoring.report_page import render

    report = tmp_path / "drift.json.gz"
    run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, report, drift_share=0.15)
    html = render(report)
    assert "Dataset drift detection threshold is 0.15" in html
    assert "Dataset drift detection threshold is 0.5" not in html


def test_html_report_says_what_it_covers(reference, tmp_path):
    """Evidently's page is titled "Report" whatever it covers: the rendered page names the model, version, day and
    reference (escaped as text, as the snapshot keeps them), above Evidently's dashboard."""
    from assets.monitoring.report_page import ReportAbout, render

    about = ReportAbout(
        "Drift of m version 3 on 2026-02-11",
        {"model": "m", "version": "3", "day": "2026-02-11", "reference": "trailing <14> days & more"},
    )
    report = tmp_path / "m" / "drift" / "2026-02-11.json.gz"
    run_drift(reference.head(500), make_frame(500, seed=2), NUMERIC[:2], [], SCORE, THRESHOLD, report, about=about)
    head, body = render(report).split("<body>", 1)
    assert "<title>Drift of m version 3 on 2026-02-11</title>" in head
    header, dashboard = body.split("</header>", 1)
    for fact in (
        "<dt>model</dt><dd>m</dd>",
        "<dt>version</dt><dd>3</dd>",
        "<dt>day</dt><dd>2026-02-11</dd>",
        "<dt>reference</dt><dd>trailing &lt;14&gt; days &amp; more</dd>",
    ):
        assert fact in header
    assert "drawDashboard" in dashboard


def test_missing_values_are_left_out_of_a_column_s_drift(reference):
    """A column's missing values are not compared: its drift is what the rows holding a value give, and a day
    with some values missing (not shifted) does not drift."""
    current = make_frame(3000, seed=5)
    current.loc[current.index[::7], "num_3"] = np.nan
    current.loc[current.index[::11], "cat_b"] = None
    evidently = run_drift(reference, current, NUMERIC, CATEGORICAL, SCORE, THRESHOLD, None)
    assert evidently.drifted_columns == []
    assert_evidently_s_figures(evidently, reference, current)
    for column in ("num_3", "cat_b"):
        present = current[current[column].notna()]
        figure = evidently_scores(reference, present, {column: evidently.column_methods[column]})[column]
        assert evidently.column_scores[column] == pytest.approx(figure, rel=1e-9), column


def test_score_column_cannot_be_a_feature(reference):
    with pytest.raises(ValueError, match="score column 'num_0' must not also be a feature"):
        run_drift(reference, reference, NUMERIC, CATEGORICAL, "num_0", THRESHOLD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, "ok"), (0.099, "ok"), (0.1, "warn"), (0.19, "warn"), (0.2, "error"), (1.0, "error")],
)
def test_severity_bounds_are_inclusive(value, expected):
    assert severity(value, Thresholds(warn=0.1, error=0.2)) == expected


def test_severity_refuses_nan():
    with pytest.raises(ValueError):
        severity(float("nan"), Thresholds(warn=0.1, error=0.2))


DAY = date(2026, 3, 1)
SPEC = load_spec(Path(__file__).resolve().parents[1] / "model_specs" / "loan_default.yaml")


def _stored_scored_day(tmp_path, frame: pd.DataFrame, versions: list[int] | None = None) -> DuckDBWarehouse:
    """``frame`` as the day's scoring mart (its ids as the spec's entity) and its scores as the day's predictions."""
    entity, ts = SPEC.entity_id, SPEC.timestamp
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    mart = frame.drop(columns=[SCORE]).rename(columns={"id": entity}).assign(**{ts: pd.Timestamp(DAY)})
    mart[entity] = mart[entity].astype(str)
    following = DAY + timedelta(days=1)
    warehouse.replace_window(f"marts.{SPEC.scoring_mart}", ts, DAY, following, [mart])
    predictions = pd.DataFrame(
        {entity: mart[entity], ts: mart[ts], "score": frame[SCORE], "model_version": versions or 1}
    )
    warehouse.replace_window(predictions_table(SPEC), ts, DAY, following, [predictions])
    return warehouse


def _md5_lowest(ids, n: int) -> list[str]:
    return sorted(sorted(map(str, ids), key=lambda key: hashlib.md5(key.encode()).hexdigest())[:n])


def test_the_drift_sample_is_taken_in_the_warehouse_stable_bounded_and_order_independent(tmp_path):
    frame = make_frame(50_000, seed=6)
    first = sample_scored_day(_stored_scored_day(tmp_path / "a", frame), SPEC, DAY, 2000)
    ids = first.frame[SPEC.entity_id]
    assert (len(first.frame), first.rows, first.version) == (2000, 50_000, 1)
    assert sorted(ids) == _md5_lowest(frame["id"], 2000)  # the lowest md5 of the entity id, whatever the engine
    shuffled = frame.sample(frac=1.0, random_state=0)
    again = sample_scored_day(_stored_scored_day(tmp_path / "b", shuffled), SPEC, DAY, 2000)
    pd.testing.assert_frame_equal(again.frame, first.frame)
    # a grown day costs the same, and the old rows it keeps are rows the old sample had
    grown = pd.concat([frame, make_frame(50_000, seed=7)], ignore_index=True)
    grown_sample = sample_scored_day(_stored_scored_day(tmp_path / "c", grown), SPEC, DAY, 2000)
    assert (len(grown_sample.frame), grown_sample.rows) == (2000, 100_000)
    kept_old = set(grown_sample.frame[SPEC.entity_id]) & set(frame["id"].astype(str))
    assert kept_old and kept_old <= set(ids)
    # the rows are the stored rows, with their scores
    stored = frame.assign(id=frame["id"].astype(str)).set_index("id").loc[ids]
    np.testing.assert_allclose(first.frame["num_3"], stored["num_3"])
    np.testing.assert_allclose(first.frame["score"], stored[SCORE])


def test_the_drift_sample_is_not_biased_by_key_order(tmp_path):
    frame = make_frame(50_000, seed=8)
    sample = sample_scored_day(_stored_scored_day(tmp_path, frame), SPEC, DAY, 5000).frame
    # ids are sequential: a hash sample spreads over the whole range instead of taking the head
    numbers = sample[SPEC.entity_id].astype(int)
    assert numbers.min() < frame["id"].quantile(0.01) and numbers.max() > frame["id"].quantile(0.99)
    result = run_drift(frame, sample, NUMERIC, CATEGORICAL, SCORE, THRESHOLD)
    assert result.drifted_columns == []


def test_the_drift_sample_of_a_small_day_is_all_rows_and_names_the_serving_version(tmp_path):
    frame = make_frame(100, seed=9)
    scored = sample_scored_day(_stored_scored_day(tmp_path, frame, versions=[3] * 60 + [4] * 40), SPEC, DAY, 1000)
    assert (len(scored.frame), scored.rows, scored.version) == (100, 100, 3)
    assert sorted(scored.frame[SPEC.entity_id]) == sorted(frame["id"].astype(str))
    with pytest.raises(DataFailure, match="no predictions of 'loan_default_risk' for 2026-03-02"):
        sample_scored_day(DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb")), SPEC, DAY + timedelta(days=1), 10)
    with pytest.raises(NotInWarehouse, match=f"table {predictions_table(SPEC)} does not exist yet"):
        sample_scored_day(DuckDBWarehouse(path=str(tmp_path / "empty.duckdb")), SPEC, DAY, 10)
