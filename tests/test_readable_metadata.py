"""Metadata a person reads in the Dagster UI is words, tables and numbers: a figure that could not be measured is
absent (plots skip the day), never "NaN". The drift side is in tests/test_drift_reference.py, the dbt assets' in
tests/test_ui_conventions.py.

A multi-class version whose holdout macro F1 is known neither from its tag nor from a reference sample, on real
Evidently, DuckDB and MLflow (a SQLite store under tmp_path), built as tests/test_monitoring_kinds.py builds it.
"""

from __future__ import annotations

import math

import dagster as dg

from assets.ml.run_artifacts import REFERENCE_PATH
from tests.monitoring_lab import check_evaluations, run_monitoring
from tests.test_monitoring_kinds import MARTS, NORMAL, _stores, multiclass_day, multiclass_spec


def test_a_figure_that_cannot_be_measured_is_absent_not_nan(tmp_path, empty_mlflow_db):
    spec = multiclass_spec()
    resources = _stores(tmp_path, empty_mlflow_db, spec, {NORMAL: multiclass_day(NORMAL)})
    resources["registry"].client().delete_model_version_tag(spec.name, "1", "metric.macro_f1")
    [logged] = (tmp_path / "mlartifacts").rglob(REFERENCE_PATH.rsplit("/", 1)[-1])
    logged.unlink()  # no reference sample either: the holdout figure is unknown

    result = run_monitoring("quality", spec, MARTS, NORMAL, resources)
    assert result.success
    [materialization] = result.asset_materializations_for_node(f"{spec.name}__quality")
    metadata = materialization.metadata
    numbers = {k: v.value for k, v in metadata.items() if isinstance(v, dg.FloatMetadataValue)}
    assert [k for k, v in numbers.items() if math.isnan(v)] == []
    assert [k for k, v in metadata.items() if isinstance(v, dg.JsonMetadataValue)] == []
    assert "holdout_macro_f1" not in metadata and "macro_f1_drop" not in metadata
    assert 0.0 < numbers["macro_f1"] <= 1.0  # what was measured is still there
    assert "no metric.macro_f1 tag" in metadata["holdout_source"].value
    check = check_evaluations(result)["macro_f1_drop"]
    assert check.passed and "not checked" in check.description
