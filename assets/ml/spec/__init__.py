"""Model specs: one YAML file per model under model_specs/, validated on load.

A spec says what to learn from (a dbt mart), what to score (another mart), the features, the estimator, how the
model is evaluated and promoted, how scores become decisions, and the monitoring thresholds. The ML factory
(:mod:`assets.ml.model_assets`) turns each spec into the same assets, checks and jobs, so adding a model is adding a
spec, not writing code. Every error names the spec file and the field that is wrong.

One module per part: the shared building blocks (``fields``), the learning sections (``sections``), the decision
bands, the monitoring section, the spec that holds them (``model_spec``), reading YAML (``loading``), the marts'
columns and the target's declared type (``mart_columns``) and the estimator's kind (``estimator_kind``). Import the names from here.
"""

from assets.ml.spec.decision_bands import DecisionBand, DecisionBands
from assets.ml.spec.estimator_kind import check_estimator
from assets.ml.spec.fairness import Fairness, Segment
from assets.ml.spec.fields import DEFAULT_PRIMARY, LOWER_IS_BETTER, METRICS, TASK_METRICS, TASKS, SpecError
from assets.ml.spec.loading import load_spec, load_specs
from assets.ml.spec.mart_columns import check_documented_columns, check_mart_columns
from assets.ml.spec.model_spec import ModelSpec
from assets.ml.spec.monitoring import DRIFT_METHODS, DriftReference, Monitoring, Thresholds, drift_methods_for
from assets.ml.spec.review import Review
from assets.ml.spec.sections import Estimator, Evaluation, Features, Promotion
from assets.ml.spec.serving import Canary, Cost, ReasonCodes

__all__ = [
    "DEFAULT_PRIMARY",
    "DRIFT_METHODS",
    "LOWER_IS_BETTER",
    "METRICS",
    "Canary",
    "Cost",
    "DecisionBand",
    "DecisionBands",
    "DriftReference",
    "Estimator",
    "Evaluation",
    "Fairness",
    "Features",
    "ModelSpec",
    "Monitoring",
    "Promotion",
    "ReasonCodes",
    "Review",
    "Segment",
    "TASKS",
    "TASK_METRICS",
    "SpecError",
    "Thresholds",
    "check_documented_columns",
    "check_estimator",
    "check_mart_columns",
    "drift_methods_for",
    "load_spec",
    "load_specs",
]
