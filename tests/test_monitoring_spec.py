"""The spec's ``monitoring:`` part, validated on load: checked columns, reference, methods and thresholds, each
error naming the field. Fast: no Evidently, no warehouse."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from assets.ml.spec import DriftReference, ModelSpec, Monitoring, SpecError, load_spec

SHIPPED = Path(__file__).resolve().parents[1] / "model_specs" / "loan_default.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def _load(raw: dict, tmp_path: Path, **monitoring) -> ModelSpec:
    spec = copy.deepcopy(raw)
    spec["monitoring"] = {**spec.get("monitoring", {}), **monitoring}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_spec(path)


def test_defaults_are_every_feature_against_the_training_reference(raw, tmp_path):
    spec = _load(raw, tmp_path)
    monitoring = spec.monitoring
    assert monitoring.reference == DriftReference(kind="training")
    assert monitoring.checked(spec.features) == (spec.features.numeric, spec.features.categorical)
    assert {monitoring.method(c, spec.features) for c in spec.features.numeric} == {"wasserstein"}
    assert {monitoring.method(c, spec.features) for c in spec.features.categorical} == {"jensenshannon"}
    assert {monitoring.threshold(c, spec.features) for c in spec.features.all} == {0.1}
    # Without the shipped spec's explicit 0.1, each method's default: 0.1 for both, as before.
    bare = Monitoring()
    assert bare.column_drift_threshold is None
    assert {bare.threshold(c, spec.features) for c in spec.features.all} == {0.1}


def test_the_spec_chooses_columns_reference_methods_and_thresholds(raw, tmp_path):
    spec = _load(
        raw,
        tmp_path,
        columns=["credit_score", "loan_amount", "purpose"],
        reference={"trailing_days": 14},
        num_method="psi",
        column_methods={"purpose": "TVD"},
        column_drift_threshold=None,
        column_thresholds={"loan_amount": 0.25},
    )
    monitoring, features = spec.monitoring, spec.features
    assert monitoring.checked(features) == (["loan_amount", "credit_score"], ["purpose"])  # the spec's order
    assert monitoring.reference == DriftReference(kind="trailing_days", days=14)
    assert [monitoring.method(c, features) for c in ("credit_score", "purpose")] == ["psi", "TVD"]
    assert [monitoring.threshold(c, features) for c in ("credit_score", "loan_amount", "purpose")] == [0.1, 0.25, 0.1]
    # The spec logged with a version (model_dump) loads again, and says what was written.
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert dumped["monitoring"]["reference"] == {"trailing_days": 14}
    assert ModelSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(
    ("monitoring", "field", "message"),
    [
        (
            {"reference": "trailing"},
            "monitoring.reference",
            "must be 'training', {trailing_days: N} or {same_weekday: N}",
        ),
        ({"reference": {"trailing_days": 0}}, "monitoring.reference", "at least 1"),
        ({"reference": {"same_weekday": 4, "trailing_days": 3}}, "monitoring.reference", "must be 'training'"),
        ({"columns": ["no_such_column"]}, "monitoring", "monitoring.columns: ['no_such_column'] are not features"),
        ({"exclude": ["nope"]}, "monitoring", "monitoring.exclude: ['nope'] are not features"),
        ({"columns": ["age"], "exclude": ["age"]}, "monitoring", "also listed in monitoring.columns"),
        ({"columns": []}, "monitoring", "no feature is left to check"),
        ({"num_method": "chisquare"}, "monitoring.num_method", "does not apply to numeric columns"),
        ({"cat_method": "wasserstein"}, "monitoring.cat_method", "does not apply to categorical columns"),
        ({"num_method": "kolmogorov"}, "monitoring.num_method", "is not one of Evidently's drift methods"),
        ({"column_methods": {"state": "ks"}}, "monitoring", "'ks' does not apply to categorical feature 'state'"),
        ({"column_methods": {"age": "nope"}}, "monitoring.column_methods", "not Evidently drift methods"),
        ({"column_thresholds": {"age": 0}}, "monitoring.column_thresholds", "must be above 0"),
        (
            {"exclude": ["age"], "column_thresholds": {"age": 0.2}},
            "monitoring",
            "monitoring.column_thresholds: ['age'] are not checked features",
        ),
        ({"num_method": "ks"}, "monitoring", "monitoring.column_drift_threshold: one threshold cannot serve p-value"),
        (
            {"num_method": "ks", "cat_method": "chisquare", "column_drift_threshold": 2},
            "monitoring",
            "2.0 is no p-value threshold for 'ks'",
        ),
        (
            {"column_methods": {"age": "ks"}, "column_drift_threshold": None, "column_thresholds": {"age": 1.5}},
            "monitoring",
            "monitoring.column_thresholds.age: 1.5 is no p-value threshold",
        ),
        ({"trailing_days": 14}, "monitoring.trailing_days", "unknown field"),
    ],
)
def test_a_wrong_monitoring_field_fails_at_load_naming_it(raw, tmp_path, monitoring, field, message):
    with pytest.raises(SpecError) as error:
        _load(raw, tmp_path, **monitoring)
    text = str(error.value)
    assert f"field '{field}'" in text and message in text, text


def test_p_value_methods_get_their_own_default_thresholds(raw, tmp_path):
    spec = _load(raw, tmp_path, num_method="ks", cat_method="chisquare", column_drift_threshold=None)
    assert {spec.monitoring.threshold(c, spec.features) for c in spec.features.all} == {0.05}
