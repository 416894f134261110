"""The synthetic source: deterministic, true to its tables' declarations, chunked, with outcomes and a dated drift
scenario."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from resources.source import RawSources, SyntheticSource
from resources.source.declarations import load_raw_tables
from resources.source.schema import PANDAS_DTYPES, RawTable
from resources.source.synthetic import APPLICATION_COLUMNS, CHUNK_ROWS, OUTCOME_COLUMNS, TABLES
from resources.source.synthetic_draws import DRIFTED_COLUMNS, STABLE_COLUMNS, default_probability

DAY = date(2026, 3, 1)
DRIFT_DAY = date(2026, 4, 1)
DRIFT_THRESHOLD = 0.1  # what a Wasserstein / Jensen-Shannon drift test flags


@pytest.fixture(scope="module")
def declared(dbt_manifest) -> dict[str, RawTable]:
    """The generator's tables as declared in dbt_project/models/staging/loans/__sources.yml."""
    return {t.name: t for t in load_raw_tables(dbt_manifest).values() if t.origin == "synthetic_loans"}


def _all(chunks) -> pd.DataFrame:
    frames = list(chunks)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _labelled(source: SyntheticSource, day: date) -> pd.DataFrame:
    applications = _all(source.applications(day))
    outcomes = _all(source.outcomes(day + timedelta(days=source.label_delay_days)))
    return applications.merge(outcomes[["application_id", "defaulted"]], on="application_id", validate="1:1")


def _drift_score(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance for categories, Wasserstein distance over the reference std for numbers."""
    if reference.dtype == object:
        shares = pd.concat([reference.value_counts(normalize=True), current.value_counts(normalize=True)], axis=1)
        p, q = shares.fillna(0).to_numpy().T
        m = (p + q) / 2
        kl = lambda a: np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / m), 0))  # noqa: E731
        return float(np.sqrt((kl(p) + kl(q)) / 2))
    assert len(reference) == len(current)  # equal sizes: W1 is the mean gap between sorted samples
    gap = np.abs(np.sort(reference.to_numpy(float)) - np.sort(current.to_numpy(float))).mean()
    return float(gap / reference.std())


def _auc(labels: pd.Series, scores: pd.Series) -> float:
    ranks = scores.rank().to_numpy()
    positive = labels.to_numpy(bool)
    n1, n0 = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_same_day_and_settings_give_identical_rows():
    first = _all(SyntheticSource(rows_per_day=500).applications(DAY))
    second = _all(SyntheticSource(rows_per_day=500).applications(DAY))
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(
        _all(SyntheticSource(rows_per_day=500).outcomes(DAY)), _all(SyntheticSource(rows_per_day=500).outcomes(DAY))
    )


def test_other_days_and_seeds_differ():
    base = _all(SyntheticSource(rows_per_day=500).applications(DAY))
    next_day = _all(SyntheticSource(rows_per_day=500).applications(DAY + timedelta(days=1)))
    other_seed = _all(SyntheticSource(rows_per_day=500, seed=8).applications(DAY))
    assert not np.array_equal(base["credit_score"], next_day["credit_score"])
    assert not np.array_equal(base["credit_score"], other_seed["credit_score"])


def test_a_day_does_not_depend_on_other_days_generated():
    alone = SyntheticSource(rows_per_day=300)
    busy = SyntheticSource(rows_per_day=300)
    for offset in (5, -3, 40):
        _all(busy.applications(DAY + timedelta(days=offset)))
        _all(busy.outcomes(DAY + timedelta(days=offset)))
    pd.testing.assert_frame_equal(_all(alone.applications(DAY)), _all(busy.applications(DAY)))
    pd.testing.assert_frame_equal(_all(alone.outcomes(DAY)), _all(busy.outcomes(DAY)))


def test_the_generator_makes_exactly_the_declared_tables(declared):
    assert sorted(declared) == sorted(TABLES)
    assert tuple(declared["applications"].column_names) == APPLICATION_COLUMNS
    assert tuple(declared["outcomes"].column_names) == OUTCOME_COLUMNS


@pytest.mark.parametrize("name", TABLES)
def test_chunks_match_the_declaration(declared, name):
    table = declared[name]
    source = SyntheticSource(rows_per_day=400)
    chunks = list(source.read(name, DAY))
    assert chunks
    for chunk in chunks:
        assert list(chunk.columns) == table.column_names
        assert {c.name: str(chunk[c.name].dtype) for c in table.columns} == {
            c.name: PANDAS_DTYPES[c.dtype] for c in table.columns
        }
        assert not chunk.isna().any().any()
        # Every declared rule holds, so the raw layer's audit publishes generated days.
        for column in table.columns:
            values = chunk[column.name]
            if column.accepted_values:
                assert set(values) <= set(column.accepted_values), column.name
            if column.min is not None:
                assert (values >= column.min).all(), column.name
            if column.max is not None:
                assert (values <= column.max).all(), column.name
        assert (chunk[table.partition_column] == pd.Timestamp(DAY)).all()
        assert not chunk.duplicated(list(table.key)).any()


def test_read_by_table_name_is_the_same_as_the_named_methods():
    source = SyntheticSource(rows_per_day=300)
    pd.testing.assert_frame_equal(_all(source.read("applications", DAY)), _all(source.applications(DAY)))
    pd.testing.assert_frame_equal(_all(source.read("outcomes", DAY)), _all(source.outcomes(DAY)))
    with pytest.raises(KeyError, match="no table 'trips'"):
        source.read("trips", DAY)


def test_the_source_resource_reads_generated_tables_from_their_generator(declared, tmp_path):
    generator = SyntheticSource(rows_per_day=300, seed=11)
    sources = RawSources(landing_dir=str(tmp_path), synthetic_loans=generator)
    for name in TABLES:
        read = sources.read(declared[name], DAY)
        assert read.file is None and "synthetic_loans" in read.origin and "seed=11" in read.origin
        pd.testing.assert_frame_equal(_all(read.chunks), _all(generator.read(name, DAY)))


def test_feature_values_are_plausible():
    apps = _all(SyntheticSource(rows_per_day=5000).applications(DAY))
    assert apps["credit_score"].between(300, 850).all()
    assert apps["age"].between(21, 80).all()
    assert apps["employment_length_years"].between(0, 10).all()
    assert set(apps["term_months"]) == {36, 60}
    assert apps["revolving_utilization"].between(0, 1.5).all()
    assert (apps["annual_income"] > 0).all() and (apps["loan_amount"] > 0).all()
    assert set(apps["home_ownership"]) == {"RENT", "MORTGAGE", "OWN"}
    assert set(apps["channel"]) == {"web", "branch", "broker"}
    assert len(set(apps["purpose"])) == 7 and len(set(apps["state"])) == 12
    # Correlated, in the directions a lender would expect.
    assert apps["credit_score"].corr(apps["interest_rate"]) < -0.5
    assert apps["annual_income"].corr(apps["loan_amount"]) > 0.4
    assert (apps["application_date"] == pd.Timestamp(DAY)).all()
    assert apps["applied_at"].is_monotonic_increasing
    assert apps["applied_at"].min() >= pd.Timestamp(DAY)
    assert apps["applied_at"].max() < pd.Timestamp(DAY + timedelta(days=1))


def test_ids_are_unique_across_days():
    source = SyntheticSource(rows_per_day=1000)
    ids = pd.concat([_all(source.applications(DAY + timedelta(days=i)))["application_id"] for i in range(2)])
    assert len(ids) == 2000 and ids.is_unique


def test_rows_per_day_is_exact_and_chunks_are_bounded():
    chunks = list(SyntheticSource(rows_per_day=250_001).applications(DAY))
    assert [len(c) for c in chunks] == [CHUNK_ROWS, CHUNK_ROWS, 50_001]
    assert pd.concat([c["application_id"] for c in chunks]).is_unique


def test_outcomes_of_a_day_are_the_applications_of_delay_days_before():
    source = SyntheticSource(rows_per_day=700, label_delay_days=30)
    applications = _all(source.applications(DAY))
    outcome_day = DAY + timedelta(days=30)
    outcomes = _all(source.outcomes(outcome_day))
    assert list(outcomes["application_id"]) == list(applications["application_id"])
    assert (outcomes["application_date"] == pd.Timestamp(DAY)).all()
    assert (outcomes["outcome_date"] == pd.Timestamp(outcome_day)).all()
    assert outcomes["observed_at"].dt.normalize().eq(pd.Timestamp(outcome_day)).all()


def test_nothing_before_start_date():
    source = SyntheticSource(rows_per_day=100, start_date=DAY.isoformat(), label_delay_days=10)
    assert list(source.applications(DAY - timedelta(days=1))) == []
    assert list(source.outcomes(DAY + timedelta(days=9))) == []
    assert len(_all(source.outcomes(DAY + timedelta(days=10)))) == 100


def test_base_default_rate_is_realistic():
    rate = _all(SyntheticSource(rows_per_day=20_000).outcomes(DAY))["defaulted"].mean()
    assert 0.08 <= rate <= 0.15


def test_covariate_drift_shifts_the_documented_columns_only():
    source = SyntheticSource(rows_per_day=3000, drift_start=DRIFT_DAY.isoformat())
    reference = _all(source.applications(DRIFT_DAY - timedelta(days=10)))
    before = _all(source.applications(DRIFT_DAY - timedelta(days=1)))
    after = _all(source.applications(DRIFT_DAY))
    features = list(APPLICATION_COLUMNS[3:])
    assert all(_drift_score(reference[c], before[c]) < DRIFT_THRESHOLD for c in features)
    assert all(_drift_score(reference[c], after[c]) > DRIFT_THRESHOLD for c in DRIFTED_COLUMNS)
    assert all(_drift_score(reference[c], after[c]) < DRIFT_THRESHOLD for c in STABLE_COLUMNS)
    assert 30 < reference["credit_score"].mean() - after["credit_score"].mean() < 50
    assert after["loan_amount"].mean() > 1.2 * reference["loan_amount"].mean()
    assert (after["purpose"] == "small_business").mean() > 0.12
    assert (after["channel"] == "broker").mean() > 0.3


def test_drift_start_does_not_change_earlier_days():
    day = DRIFT_DAY - timedelta(days=1)
    plain = SyntheticSource(rows_per_day=300)
    start = DRIFT_DAY.isoformat()
    drifting = SyntheticSource(rows_per_day=300, drift_start=start, concept_drift_start=start)
    pd.testing.assert_frame_equal(_all(plain.applications(day)), _all(drifting.applications(day)))
    pd.testing.assert_frame_equal(_labelled(plain, day), _labelled(drifting, day))


def test_concept_drift_changes_how_features_relate_to_default():
    source = SyntheticSource(rows_per_day=20_000, concept_drift_start=DRIFT_DAY.isoformat())
    before = _labelled(source, DRIFT_DAY - timedelta(days=1))
    after = _labelled(source, DRIFT_DAY)
    # The applicants themselves are the same population on both days.
    assert _drift_score(before["debt_to_income"], after["debt_to_income"]) < DRIFT_THRESHOLD

    def dti_risk_ratio(labelled: pd.DataFrame) -> float:
        """Default rate of the top debt_to_income quartile over that of the bottom quartile."""
        dti, defaulted = labelled["debt_to_income"], labelled["defaulted"]
        return defaulted[dti > dti.quantile(0.75)].mean() / defaulted[dti < dti.quantile(0.25)].mean()

    assert dti_risk_ratio(after) > 2 * dti_risk_ratio(before)
    # A model of the old relationship (here the old latent probability itself) ranks the new labels worse.
    old_model_before = _auc(before["defaulted"], default_probability(before, concept_drifted=False))
    old_model_after = _auc(after["defaulted"], default_probability(after, concept_drifted=False))
    assert 0.70 < old_model_before < 0.85
    assert old_model_after < old_model_before - 0.04


def test_dates_that_are_not_iso_fail_when_the_source_is_built():
    with pytest.raises(ValueError, match="drift_start"):
        SyntheticSource(drift_start="2026-02-30")


def test_describe_names_the_settings():
    text = SyntheticSource(rows_per_day=123, seed=9, drift_start="2026-04-01").describe()
    assert "seed=9" in text and "rows/day=123" in text and "drift_start=2026-04-01" in text
