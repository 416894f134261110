"""Daily monitoring assets for one model spec: drift of each scored day, and quality once its labels arrive.

Each day is compared with the reference the spec's ``monitoring.reference`` names: by default the reference of the
version that scored it (logged with that version at training), so monitoring any past day is reproducible; or
served days before it (``trailing_days``, ``same_weekday``), read from the warehouse. The spec also chooses the
checked columns, Evidently's method per column type or column, and thresholds per column. Results become asset
checks (WARN / ERROR from the spec's thresholds), numeric metadata that Dagster plots over days, a row in a
warehouse table, metrics on the version's MLflow run (one step per day), and an HTML report a person can open:
titled with the model, version, day (and reference) it covers, kept in the reports folder and logged as an artifact
of the version's MLflow run, linked from the materialization and from every check (with the day it judged).

A check that has nothing to judge yet is not failed: it passes, saying it was not checked and why (Dagster wants a
result for every declared check, and a passed check alerts nobody): quality of a day whose labels are not in yet
(the materialization says ``status: waiting`` and when they are due), drift against served days when none were
served before the day (``status: no_reference``), score drift when no reference row was scored by the serving
version.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, resources)
# as real types. pandas is imported inside the functions: this module is imported when definitions load.
import math
from datetime import date, timedelta
from pathlib import Path
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

    from resources.reports import LoggedReport

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


def _report_links(reports: MonitoringReports, logged: "LoggedReport", path: Path) -> dict[str, dg.MetadataValue]:
    """The report's links, for the materialization and the checks: ``report`` (the MLflow UI page of the artifact
    on the version's run), ``report_served`` (the file under NIGHTJAR_REPORTS_BASE_URL, when the folder is served),
    ``report_artifact`` (``runs:/...``) and ``report_path`` (the local file)."""
    served = reports.served_url(path)
    return {
        "report": dg.MetadataValue.url(logged.url),
        **({"report_served": dg.MetadataValue.url(served)} if served else {}),
        "report_artifact": dg.MetadataValue.text(logged.uri),
        "report_path": dg.MetadataValue.path(str(path)),
    }


def _link_text(links: dict[str, dg.MetadataValue]) -> str:
    """The report links for a check's description, which the UI shows where the metadata is a click away."""
    text = f"report: {links['report'].value} (MLflow)"
    if "report_served" in links:
        text += f", {links['report_served'].value}"
    return text


def _check(
    name: str, value: float, thresholds, what: str, day: date, links: dict[str, dg.MetadataValue]
) -> dg.AssetCheckResult:
    """The check of ``day``'s ``value`` against ``thresholds``: its description and metadata name the day and link
    the day's report."""
    from assets.monitoring.drift import severity

    with not_retried(ValueError):  # a NaN figure (e.g. no validation ROC AUC recorded) grades the same every time
        level = severity(value, thresholds)
    return dg.AssetCheckResult(
        check_name=name,
        passed=level == "ok",
        severity=SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        description=f"{day}: {what} (warn at {thresholds.warn}, error at {thresholds.error}); {_link_text(links)}",
        metadata={
            "day": day.isoformat(),
            "value": float(value),
            "warn_at": thresholds.warn,
            "error_at": thresholds.error,
            "level": level,
            **links,
        },
    )


def _column_table(result) -> str:
    """Markdown: each checked column's method, threshold, score and verdict (drifted first)."""
    lines = ["| column | method | threshold | score | drifted |", "|---|---|---|---|---|"]
    order = sorted(result.column_scores, key=lambda c: c not in result.drifted_columns)
    for column in order:
        lines.append(
            f"| {column} | {result.column_methods[column]} | {result.column_thresholds[column]:g} | "
            f"{result.column_scores[column]:.4f} | {'yes' if column in result.drifted_columns else 'no'} |"
        )
    return "\n".join(lines)


def _not_checked(
    name: str, reason: str, day: date, links: dict[str, dg.MetadataValue] | None = None
) -> dg.AssetCheckResult:
    """A check with nothing to judge yet: passed (nothing alerts), saying so and why (and the day's report, if
    one was written)."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=True,
        description=f"not checked: {reason}",
        metadata={"level": "not_checked", "day": day.isoformat(), **(links or {})},
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
        description=f"Evidently data drift of {spec.name}'s features and score drift, each scored day against "
        f"{thresholds.reference.describe()} (a deterministic sample keeps the cost flat).",
        check_specs=[
            dg.AssetCheckSpec("data_drift", asset=key, description="Share of features drifted from the reference"),
            dg.AssetCheckSpec("score_drift", asset=key, description="Drift of the model's score from the reference"),
        ],
    )
    def drift(
        context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports
    ):
        import pandas as pd

        from assets.ml.mlflow_logging import load_reference
        from assets.monitoring.drift import run_drift
        from assets.monitoring.reference import served_days, served_reference
        from assets.monitoring.report_page import ReportAbout
        from assets.monitoring.sampling import deterministic_sample

        day = _day(context)
        numeric, categorical = thresholds.checked(spec.features)
        checked = [*numeric, *categorical]
        rule = thresholds.reference
        served = None
        with not_retried(*DATA_ERRORS), warehouse.session():
            predictions = _scored_day(warehouse, spec, day)
            rows = warehouse.read_window(f"marts.{spec.scoring_mart}", spec.timestamp, day, day + timedelta(days=1))
            current = rows.merge(predictions[[spec.entity_id, "score"]], on=spec.entity_id, how="inner")
            sample = deterministic_sample(current, thresholds.sample_rows, spec.entity_id)
            serving = _serving_version(predictions)
            if rule.kind != "training":
                days = served_days(warehouse, spec, day)
                served = served_reference(warehouse, spec, days, serving, checked) if days else None
        version = registry.version(spec.name, serving)
        if rule.kind == "training":
            reference = load_reference(registry, version.run_id)
            described = f"training: version {version.version}'s reference sample, {len(reference)} rows"
            reference_days = None
        elif served is None:
            reason = f"no served day before {day} for the reference ({rule.describe()}): nothing to compare with yet"
            context.log.warning(f"{spec.name} drift of {day}: {reason}; not checked")
            yield dg.MaterializeResult(
                metadata={
                    "status": "no_reference",
                    "reason": reason,
                    "reference": rule.describe(),
                    "model_version": version.version,
                    "rows": len(current),
                }
            )
            yield _not_checked("data_drift", reason, day)
            yield _not_checked("score_drift", reason, day)
            return
        else:
            reference = served.frame
            described = served.describe(spec)
            reference_days = len(served.days)
        report = reports.path(spec.name, "drift", day)
        about = ReportAbout(
            f"Drift of {spec.name} version {version.version} on {day}",
            {
                "model": spec.name,
                "version": str(version.version),
                "day": day.isoformat(),
                "reference": described,
                "rows": f"{len(current)} scored, {len(sample)} compared",
                "checked columns": ", ".join(checked),
            },
        )
        with not_retried(*DATA_ERRORS):
            result = run_drift(
                reference,
                sample,
                numeric,
                categorical,
                "score",
                thresholds.column_drift_threshold,
                report,
                partition_rows=len(current),
                num_method=thresholds.num_method,
                cat_method=thresholds.cat_method,
                column_methods=thresholds.column_methods,
                column_thresholds=thresholds.column_thresholds,
                score_threshold=thresholds.score_drift.warn,
                about=about,
            )
        reports.prune(spec.name, "drift")  # by the wall clock's today, never by the day checked
        score_compared = not math.isnan(result.score_drift)
        _log_to_mlflow(
            registry, version.run_id, day, {"drift_share": result.drift_share, "score_drift": result.score_drift}
        )
        links = _report_links(reports, reports.log_to_mlflow(registry, version, "drift", day, report), report)
        warehouse.replace_window(
            f"monitoring.{spec.name}_drift",
            "day",
            day,
            day + timedelta(days=1),
            [
                pd.DataFrame(
                    {
                        "day": pd.Timestamp(day),
                        "model_version": version.version,
                        "column_name": list(result.column_scores),
                        "score": list(result.column_scores.values()),
                        "drifted": [c in result.drifted_columns for c in result.column_scores],
                        "method": [result.column_methods[c] for c in result.column_scores],
                        "threshold": [result.column_thresholds[c] for c in result.column_scores],
                        "reference": rule.kind,
                    }
                )
            ],
        )
        drifted = ", ".join(result.drifted_columns) or "none"
        excluded = [c for c in spec.features.all if c not in checked]
        score_note = (
            f"score drift {result.score_drift:.3f} (Wasserstein, normed by the reference's spread) against {described}"
            if score_compared
            else f"score drift not compared: no reference row was scored by version {version.version} ({described})"
        )
        yield dg.MaterializeResult(
            metadata={
                "status": "checked",
                "day": day.isoformat(),
                "drift_share": result.drift_share,
                **({"score_drift": result.score_drift} if score_compared else {"score_drift_status": score_note}),
                "drifted_columns": drifted,
                "model_version": version.version,
                "rows": len(current),
                "sample_rows": result.sample_rows,
                "reference": described,
                "reference_rows": result.rows_reference,
                **({"reference_days": reference_days} if reference_days is not None else {}),
                **({"reference_versions": ", ".join(map(str, served.versions))} if served is not None else {}),
                "checked_columns": len(checked),
                "excluded_columns": ", ".join(excluded) or "none",
                "column_methods": dg.MetadataValue.json(result.column_methods),
                "column_thresholds": dg.MetadataValue.json(result.column_thresholds),
                "columns": dg.MetadataValue.md(_column_table(result)),
                **links,
                **{f"drift_{column}": score for column, score in result.column_scores.items()},
            }
        )
        yield _check(
            "data_drift",
            result.drift_share,
            thresholds.drift_share,
            f"{len(result.drifted_columns)} of {len(result.column_scores)} features drifted: {drifted} "
            f"(against {described})",
            day,
            links,
        )
        if score_compared:
            yield _check("score_drift", result.score_drift, thresholds.score_drift, score_note, day, links)
        else:
            yield _not_checked("score_drift", score_note.removeprefix("score drift not compared: "), day, links)

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
        f"arrived in {spec.training_mart}, against the serving version's validation metrics. Before they have, the "
        "day materializes with status 'waiting' and the date they are due; its checks pass as not checked.",
        check_specs=[
            dg.AssetCheckSpec("auc_drop", asset=key, description="Validation ROC AUC minus the day's realised ROC AUC"),
            dg.AssetCheckSpec(
                "calibration", asset=key, description="|observed positive rate - mean predicted rate| of the day"
            ),
        ],
    )
    def quality(
        context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports
    ):
        import pandas as pd

        from assets.monitoring.quality import run_quality
        from assets.monitoring.reference import labels_due
        from assets.monitoring.report_page import ReportAbout

        day = _day(context)
        due = None
        with not_retried(*DATA_ERRORS), warehouse.session():
            predictions = _scored_day(warehouse, spec, day)
            labels = warehouse.read_window(f"marts.{spec.training_mart}", spec.timestamp, day, day + timedelta(days=1))
            if labels.empty:
                due = labels_due(warehouse, spec, day)
            else:
                labeled = predictions[[spec.entity_id, "score"]].merge(
                    labels[[spec.entity_id, spec.target]], on=spec.entity_id, how="inner"
                )
        if due is not None:
            # Not a failure: labels arrive later. The checks pass as "not checked" (nothing alerts).
            status = due.status()
            context.log.info(f"{spec.name} quality of {day}: {status} in {spec.training_mart}; not checked")
            yield dg.MaterializeResult(
                metadata={
                    "status": "waiting",
                    "labels": status,
                    "labels_due": due.due.isoformat() if due.due else "unknown",
                    **({"label_lag_days": due.lag_days} if due.lag_days is not None else {}),
                    "labels_overdue": due.overdue,
                    "model_version": _serving_version(predictions),
                    "predictions": len(predictions),
                }
            )
            reason = f"{status} in {spec.training_mart}"
            yield _not_checked("auc_drop", reason, day)
            yield _not_checked("calibration", reason, day)
            return
        version = registry.version(spec.name, _serving_version(predictions))
        report = reports.path(spec.name, "quality", day)
        validation_auc = float(version.tags.get("metric.roc_auc", "nan"))
        about = ReportAbout(
            f"Quality of {spec.name} version {version.version} on {day}",
            {
                "model": spec.name,
                "version": str(version.version),
                "day": day.isoformat(),
                "labels": f"{len(labeled)} labeled rows of {len(predictions)} scored, from {spec.training_mart}",
                "validation ROC AUC": f"{validation_auc:.4f}",
            },
        )
        with not_retried(*DATA_ERRORS):
            result = run_quality(labeled, spec.target, "score", report, about=about)
        reports.prune(spec.name, "quality")  # by the wall clock's today, never by the day checked
        auc_drop = validation_auc - result.roc_auc
        figures = {
            "roc_auc": result.roc_auc,
            "brier": result.brier,
            "log_loss": result.log_loss,
            "positive_rate": result.positive_rate,
            "predicted_rate": result.predicted_rate,
            "calibration_gap": result.calibration_gap,
            "auc_drop": auc_drop,
        }
        _log_to_mlflow(registry, version.run_id, day, figures)
        links = _report_links(reports, reports.log_to_mlflow(registry, version, "quality", day, report), report)
        warehouse.replace_window(
            f"monitoring.{spec.name}_quality",
            "day",
            day,
            day + timedelta(days=1),
            [
                pd.DataFrame(
                    [
                        {
                            "day": pd.Timestamp(day),
                            "model_version": version.version,
                            "rows": result.rows,
                            "validation_roc_auc": validation_auc,
                            **figures,
                        }
                    ]
                )
            ],
        )
        yield dg.MaterializeResult(
            metadata={
                "status": "checked",
                "day": day.isoformat(),
                **{k: float(v) for k, v in figures.items()},
                "validation_roc_auc": validation_auc,
                "labeled_rows": result.rows,
                "label_coverage": result.rows / len(predictions),
                "model_version": version.version,
                "calibration_by_decile": dg.MetadataValue.md(result.calibration.to_markdown(index=False)),
                **links,
            }
        )
        yield _check(
            "auc_drop",
            auc_drop,
            thresholds.auc_drop,
            f"ROC AUC {result.roc_auc:.3f} on {result.rows} labeled rows vs {validation_auc:.3f} at validation",
            day,
            links,
        )
        yield _check(
            "calibration",
            result.calibration_gap,
            thresholds.calibration_gap,
            f"observed positive rate {result.positive_rate:.3f} vs mean predicted {result.predicted_rate:.3f}",
            day,
            links,
        )

    return quality
