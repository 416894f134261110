"""Daily monitoring assets for one model spec: drift of each scored day, and quality once its labels arrive.

Each day is compared with the reference of the version that scored it (logged with that version at training),
so monitoring any past day is reproducible. Results become asset checks (WARN / ERROR from the spec's
thresholds), numeric metadata that Dagster plots over days, a row in a warehouse table, metrics on the
version's MLflow run (one step per day), and an HTML report a person can open.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, resources)
# as real types. pandas is imported inside the functions: this module is imported when definitions load.
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from resources.failures import DataFailure, not_retried
from resources.registry import SERVER_RETRY_POLICY, ModelRegistry
from resources.reports import MonitoringReports
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse

if TYPE_CHECKING:
    import pandas as pd

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}

# What the drift and quality assets share: one run per scored day (checks report per run), warehouse pool, and
# retries when MLflow or the warehouse server does not answer. What the day's data cannot give (no predictions, no
# labels, a table not built yet, rows Evidently or the metrics refuse) is a DataFailure, never retried.
MONITORING_ASSET = dict(
    pool=WAREHOUSE_POOL,
    group_name="monitoring",
    kinds={"evidently", "python"},
    retry_policy=SERVER_RETRY_POLICY,
)
# Errors of the day's rows: reading a table that is not there, and what the drift and quality computations raise.
DATA_ERRORS = (NotInWarehouse, ValueError, KeyError)


def _day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _scored_day(warehouse: Warehouse, spec: ModelSpec, day: date) -> "pd.DataFrame":
    predictions = warehouse.read_window(predictions_table(spec), spec.timestamp, day, day + timedelta(days=1))
    if predictions.empty:
        raise DataFailure(
            description=f"no predictions of '{spec.name}' for {day}: run the nightly job for that day first"
        )
    return predictions


def _serving_version(predictions: "pd.DataFrame") -> int:
    """The version that scored the day (the most rows, should a re-run with a new champion have mixed them)."""
    return int(predictions["model_version"].mode().iloc[0])


def _log_to_mlflow(registry: ModelRegistry, run_id: str, day: date, values: dict[str, float]) -> None:
    """Monitoring figures on the version's training run, one step per day: a version's life in one place."""
    import pandas as pd

    client = registry.client()
    timestamp = int(pd.Timestamp(day).timestamp() * 1000)
    for key, value in values.items():
        if pd.notna(value):
            client.log_metric(run_id, f"monitoring.{key}", float(value), timestamp=timestamp, step=day.toordinal())


def _check(name: str, value: float, thresholds, what: str) -> dg.AssetCheckResult:
    from assets.monitoring.drift import severity

    with not_retried(ValueError):  # a NaN figure (e.g. no validation ROC AUC recorded) grades the same every time
        level = severity(value, thresholds)
    return dg.AssetCheckResult(
        check_name=name,
        passed=level == "ok",
        severity=SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        description=f"{what} (warn at {thresholds.warn}, error at {thresholds.error})",
        metadata={"value": float(value), "warn_at": thresholds.warn, "error_at": thresholds.error, "level": level},
    )


def build_drift_asset(
    spec: ModelSpec, mart_keys: dict[str, dg.AssetKey], partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "drift"])
    thresholds = spec.monitoring

    @dg.asset(
        key=key,
        deps=[dg.AssetKey([spec.name, "predictions"]), mart_keys[spec.scoring_mart]],
        owners=[spec.owner],
        partitions_def=partitions,
        **MONITORING_ASSET,
        description=f"Evidently data drift of {spec.name}'s features and score drift, each scored day against the "
        "reference of the version that scored it (a deterministic sample keeps the cost flat).",
        check_specs=[
            dg.AssetCheckSpec("data_drift", asset=key, description="Share of features drifted from the reference"),
            dg.AssetCheckSpec("score_drift", asset=key, description="Drift of the model's score from the reference"),
        ],
    )
    def drift(context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports):
        import pandas as pd

        from assets.ml.mlflow_logging import load_reference
        from assets.monitoring.drift import run_drift
        from assets.monitoring.sampling import deterministic_sample

        day = _day(context)
        with not_retried(*DATA_ERRORS):
            predictions = _scored_day(warehouse, spec, day)
            rows = warehouse.read_window(f"marts.{spec.scoring_mart}", spec.timestamp, day, day + timedelta(days=1))
            current = rows.merge(predictions[[spec.entity_id, "score"]], on=spec.entity_id, how="inner")
            sample = deterministic_sample(current, thresholds.sample_rows, spec.entity_id)
        version = registry.version(spec.name, _serving_version(predictions))
        reference = load_reference(registry, version.run_id)
        report = reports.path(spec.name, "drift", day)
        with not_retried(*DATA_ERRORS):
            result = run_drift(
                reference, sample, spec.features.numeric, spec.features.categorical, "score",
                thresholds.column_drift_threshold, report, partition_rows=len(current),
            )
        reports.prune(spec.name, "drift", day)
        _log_to_mlflow(registry, version.run_id, day, {"drift_share": result.drift_share, "score_drift": result.score_drift})
        warehouse.replace_window(
            f"monitoring.{spec.name}_drift", "day", day, day + timedelta(days=1),
            [pd.DataFrame({
                "day": pd.Timestamp(day), "model_version": version.version, "column_name": list(result.column_scores),
                "score": list(result.column_scores.values()),
                "drifted": [c in result.drifted_columns for c in result.column_scores],
            })],
        )
        drifted = ", ".join(result.drifted_columns) or "none"
        yield dg.MaterializeResult(
            metadata={
                "drift_share": result.drift_share,
                "score_drift": result.score_drift,
                "drifted_columns": drifted,
                "model_version": version.version,
                "rows": len(current),
                "sample_rows": result.sample_rows,
                "reference_rows": result.rows_reference,
                "report": reports.link(report),
                "report_path": dg.MetadataValue.path(str(report)),
                **{f"drift_{column}": score for column, score in result.column_scores.items()},
            }
        )
        yield _check("data_drift", result.drift_share, thresholds.drift_share,
                     f"{len(result.drifted_columns)} of {len(result.column_scores)} features drifted: {drifted}")
        yield _check("score_drift", result.score_drift, thresholds.score_drift,
                     f"score drift {result.score_drift:.3f} (Wasserstein, normed by the reference's spread)")

    return drift


def build_quality_asset(
    spec: ModelSpec, mart_keys: dict[str, dg.AssetKey], partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "quality"])
    thresholds = spec.monitoring

    @dg.asset(
        key=key,
        deps=[dg.AssetKey([spec.name, "predictions"]), mart_keys[spec.training_mart]],
        owners=[spec.owner],
        partitions_def=partitions,
        **MONITORING_ASSET,
        description=f"Realised quality of {spec.name}'s predictions for a scored day once its labels have "
        f"arrived in {spec.training_mart}, against the serving version's validation metrics.",
        check_specs=[
            dg.AssetCheckSpec("auc_drop", asset=key, description="Validation ROC AUC minus the day's realised ROC AUC"),
            dg.AssetCheckSpec(
                "calibration", asset=key, description="|observed positive rate - mean predicted rate| of the day"
            ),
        ],
    )
    def quality(context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports):
        import pandas as pd

        from assets.monitoring.quality import run_quality

        day = _day(context)
        with not_retried(*DATA_ERRORS):
            predictions = _scored_day(warehouse, spec, day)
            labels = warehouse.read_window(f"marts.{spec.training_mart}", spec.timestamp, day, day + timedelta(days=1))
            if labels.empty:
                raise DataFailure(
                    description=f"no labels yet in {spec.training_mart} for {spec.name}'s predictions of {day}: "
                    "labels arrive later; run quality for this day once they have"
                )
            labeled = predictions[[spec.entity_id, "score"]].merge(
                labels[[spec.entity_id, spec.target]], on=spec.entity_id, how="inner"
            )
        version = registry.version(spec.name, _serving_version(predictions))
        report = reports.path(spec.name, "quality", day)
        with not_retried(*DATA_ERRORS):
            result = run_quality(labeled, spec.target, "score", report)
        reports.prune(spec.name, "quality", day)
        validation_auc = float(version.tags.get("metric.roc_auc", "nan"))
        auc_drop = validation_auc - result.roc_auc
        figures = {
            "roc_auc": result.roc_auc, "brier": result.brier, "log_loss": result.log_loss,
            "positive_rate": result.positive_rate, "predicted_rate": result.predicted_rate,
            "calibration_gap": result.calibration_gap, "auc_drop": auc_drop,
        }
        _log_to_mlflow(registry, version.run_id, day, figures)
        warehouse.replace_window(
            f"monitoring.{spec.name}_quality", "day", day, day + timedelta(days=1),
            [pd.DataFrame([{"day": pd.Timestamp(day), "model_version": version.version, "rows": result.rows,
                            "validation_roc_auc": validation_auc, **figures}])],
        )
        yield dg.MaterializeResult(
            metadata={
                **{k: float(v) for k, v in figures.items()},
                "validation_roc_auc": validation_auc,
                "labeled_rows": result.rows,
                "label_coverage": result.rows / len(predictions),
                "model_version": version.version,
                "calibration_by_decile": dg.MetadataValue.md(result.calibration.to_markdown(index=False)),
                "report": reports.link(report),
                "report_path": dg.MetadataValue.path(str(report)),
            }
        )
        yield _check("auc_drop", auc_drop, thresholds.auc_drop,
                     f"ROC AUC {result.roc_auc:.3f} on {result.rows} labeled rows vs {validation_auc:.3f} at validation")
        yield _check("calibration", result.calibration_gap, thresholds.calibration_gap,
                     f"observed positive rate {result.positive_rate:.3f} vs mean predicted {result.predicted_rate:.3f}")

    return quality
