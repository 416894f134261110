"""The quality asset of one model spec: the realised quality of a scored day's predictions once the day's labels
have arrived, against the serving version's validation metrics. By the spec's task: binary, the drop in ROC AUC and
the calibration gap; regression, the RMSE as a multiple of the version's holdout RMSE (``rmse``); multiclass, the
drop in macro F1 from the holdout's (``macro_f1_drop``). The version's holdout figure is its ``metric.<name>`` tag,
else what its reference sample gives.

Results become asset checks (WARN / ERROR from the spec's thresholds), numeric metadata that Dagster plots over days,
a row in a warehouse table, metrics on the version's MLflow run (one step per day), and an HTML report a person can
open: titled with the model, version and day it covers, kept in the reports folder and logged as an artifact of the
version's MLflow run, linked from the materialization and from every check (with the day it judged).

With a ``fairness`` section in the spec, the day's labeled rows are also measured across its segments
(:mod:`assets.ml.fairness`: approval rate of the decisions made, ROC AUC, MAE or macro recall by task, the largest
gaps): the gaps go to the
metadata and MLflow, each segment's rates to the warehouse table :func:`fairness_table`.

A day whose labels are not in yet is not failed: the materialization says ``status: waiting`` and when they are due,
and its checks pass as not checked (assets/monitoring/check_results.py).
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, resources)
# as real types. pandas is imported inside the functions: this module is imported when definitions load.
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.canary import DECIDED_BY_COLUMN, slice_quality
from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from assets.monitoring.check_names import AUC_DROP, CALIBRATION, MACRO_F1_DROP, QUALITY_ASSET, QUALITY_CHECKS, RMSE
from assets.monitoring.check_results import combined_days, each_day, graded_check, not_checked, report_links
from assets.monitoring.day_pool import Compute
from assets.monitoring.scored_day import (
    DATA_ERRORS,
    PREDICTED_CLASS,
    day_predictions,
    labeled_rows,
    labeled_window,
    log_to_mlflow,
    monitoring_asset_args,
    pooled_start,
    predicted_columns,
)
from assets.partitions import window_days
from assets.step_cost import with_cost
from resources.failures import not_retried
from resources.registry import CHALLENGER, ModelRegistry
from resources.reports import MonitoringReports
from resources.warehouse import Warehouse

if TYPE_CHECKING:
    import pandas as pd

    from assets.ml.fairness import FairnessResult


def fairness_table(spec: ModelSpec) -> str:
    return f"monitoring.{spec.name}_fairness"


def build_quality_asset(
    spec: ModelSpec, mart_keys: dict[str, dg.AssetKey], partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, QUALITY_ASSET])
    thresholds = spec.monitoring
    checks = QUALITY_CHECKS[spec.task]

    @dg.asset(
        key=key,
        **monitoring_asset_args(spec, mart_keys[spec.training_mart], partitions),
        description=f"Realised quality of {spec.name}'s predictions for a scored day once its labels have "
        f"arrived in {spec.training_mart}, against the serving version's validation metrics. Before they have, the "
        "day materializes with status 'waiting' and the date they are due; its checks pass as not checked."
        + (
            ""
            if spec.fairness is None
            else f" Also the day's gaps between segments ({', '.join(spec.fairness.columns)}) in "
            f"{_gaps_described(spec)}, against the spec's fairness limits; each segment's figures go to "
            f"{fairness_table(spec)}."
        ),
        check_specs=[dg.AssetCheckSpec(name, asset=key, description=CHECK_DESCRIPTIONS[name]) for name in checks],
    )
    @with_cost
    def quality(
        context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports
    ):
        days = window_days(context)
        per_day = each_day(days, lambda day: check_day(context, day, warehouse, registry, reports), checks)
        yield from combined_days(context, days, per_day)

    def check_day(context, day: date, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports):
        """One day's quality: its materialization and checks, as a one-day run yields them."""
        import pandas as pd

        from assets.monitoring.quality import run_quality
        from assets.monitoring.reference import labels_due
        from assets.monitoring.report_page import ReportAbout

        due = None
        with not_retried(*DATA_ERRORS), warehouse.session():
            predicted, serving = day_predictions(warehouse, spec, day)
            if not labeled_rows(warehouse, spec, day):
                due = labels_due(warehouse, spec, day)
            else:
                segments = spec.fairness.columns if spec.fairness is not None else []
                scored = warehouse.column_names(predictions_table(spec))
                roles = [DECIDED_BY_COLUMN] if DECIDED_BY_COLUMN in scored else []
                pooled_from = pooled_start(warehouse, spec, day, serving)
                labeled = labeled_window(
                    warehouse,
                    spec,
                    pooled_from,
                    day + timedelta(days=1),
                    [*predicted_columns(spec), *_probabilities(spec, roles), "decision", *roles],
                    [spec.target, *segments],
                    serving,
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
                    "model_version": serving,
                    "predictions": predicted,
                }
            )
            reason = f"{status} in {spec.training_mart}"
            for name in checks:
                yield not_checked(name, reason, day)
            return
        version = registry.version(spec.name, serving)
        if spec.task != "binary":
            yield from task_day(day, warehouse, registry, reports, version, labeled, pooled_from, predicted)
            return
        report = reports.path(spec.name, "quality", day)
        validation_auc = float(version.tags.get("metric.roc_auc", "nan"))
        pooled_days = (day - pooled_from).days + 1
        on_day = pd.to_datetime(labeled[spec.timestamp]).dt.date == day
        pooled = f"{day}" if pooled_days == 1 else f"{pooled_from} to {day} ({pooled_days} days pooled)"
        about = ReportAbout(
            f"Quality of {spec.name} version {version.version} on {day}",
            {
                "model": spec.name,
                "version": str(version.version),
                "day": day.isoformat(),
                "labels": f"{len(labeled)} labeled rows of version {version.version} from {pooled_from} to {day} "
                f"({int(on_day.sum())} of the day's {predicted} scored), from {spec.training_mart}",
                "validation ROC AUC": f"{validation_auc:.4f}",
            },
        )
        # Canary slices and fairness are the day's own decisions; the quality checks judge the pooled rows.
        day_rows = labeled[on_day]
        by_role = slice_quality(day_rows, spec.target) if DECIDED_BY_COLUMN in day_rows else {}
        fairness_rows = day_rows
        if DECIDED_BY_COLUMN in labeled:
            labeled = labeled[labeled[DECIDED_BY_COLUMN] != CHALLENGER]  # the champion is judged on its own rows
        with not_retried(*DATA_ERRORS):
            result = yield Compute(  # Evidently: in a pool of processes when a range run checks several days
                run_quality,
                {
                    "frame": labeled,
                    "target": spec.target,
                    "score_column": "score",
                    "report_path": report,
                    "about": about,
                },
            )
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
            "roc_auc_low": result.roc_auc_interval[0],
            "roc_auc_high": result.roc_auc_interval[1],
            "judged_auc_drop": result.judged_auc_drop(validation_auc),
            "judged_calibration_gap": result.judged_calibration_gap(),
        }
        fairness = None
        if spec.fairness is not None:
            with not_retried(*DATA_ERRORS):
                fairness = _day_fairness(warehouse, spec, day, version.version, fairness_rows)
        log_to_mlflow(registry, version.run_id, day, {**figures, **(fairness.figures() if fairness else {})})
        links = report_links(reports, report, registry, version)
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
                **measured({**figures, "validation_roc_auc": validation_auc}),
                "labeled_rows": result.rows,
                "pooled_from": pooled_from.isoformat(),
                "pooled_days": pooled_days,
                "day_labeled_rows": int(on_day.sum()),
                "label_coverage": int(on_day.sum()) / predicted,
                "model_version": version.version,
                "calibration_by_decile": dg.MetadataValue.md(result.calibration.to_markdown(index=False)),
                **(fairness.metadata() if fairness is not None else {}),
                **(_canary_metadata(by_role, spec.task) if CHALLENGER in by_role else {}),
                **links,
            }
        )
        low, high = result.roc_auc_interval
        gap_low, gap_high = result.calibration_gap_interval
        # Graded when the rows rule out "no change" at 95%: a drop or gap they cannot tell from noise is no alarm.
        yield graded_check(
            AUC_DROP,
            result.judged_auc_drop(validation_auc),
            thresholds.auc_drop,
            f"ROC AUC {result.roc_auc:.3f} (95% {low:.3f}-{high:.3f}) on {result.rows} labeled rows of {pooled} vs "
            f"{validation_auc:.3f} at validation"
            + ("" if result.judged_auc_drop(validation_auc) else ": no drop the rows can tell from noise"),
            day,
            links,
        )
        yield graded_check(
            CALIBRATION,
            result.judged_calibration_gap(),
            thresholds.calibration_gap,
            f"observed positive rate {result.positive_rate:.3f} vs mean predicted {result.predicted_rate:.3f} on "
            f"{result.rows} labeled rows of {pooled}: a gap of {gap_low:+.3f} to {gap_high:+.3f} (95%)",
            day,
            links,
        )

    def task_day(day, warehouse, registry, reports, version, labeled, pooled_from, predicted):
        """A regressor's or multi-class classifier's day once its labels are in: Evidently's metrics of the task on
        the pooled labeled rows, graded against the version's holdout figure."""
        import pandas as pd

        from assets.ml.evaluation import class_names, labels
        from assets.monitoring.quality import run_multiclass_quality, run_regression_quality
        from assets.monitoring.report_page import ReportAbout

        regression = spec.task == "regression"
        metric = "rmse" if regression else "macro_f1"
        with not_retried(*DATA_ERRORS):
            holdout, source = holdout_figure(spec, registry, version, metric)
        report = reports.path(spec.name, "quality", day)
        pooled_days = (day - pooled_from).days + 1
        on_day = pd.to_datetime(labeled[spec.timestamp]).dt.date == day
        pooled = f"{day}" if pooled_days == 1 else f"{pooled_from} to {day} ({pooled_days} days pooled)"
        about = ReportAbout(
            f"Quality of {spec.name} version {version.version} on {day}",
            {
                "model": spec.name,
                "version": str(version.version),
                "day": day.isoformat(),
                "labels": f"{len(labeled)} labeled rows of version {version.version} from {pooled_from} to {day} "
                f"({int(on_day.sum())} of the day's {predicted} scored), from {spec.training_mart}",
                f"holdout {metric}": f"{holdout:.4f} ({source})",
            },
        )
        fairness_rows = labeled[on_day]
        by_role = (
            slice_quality(fairness_rows, spec.target, task=spec.task) if DECIDED_BY_COLUMN in fairness_rows else {}
        )
        if DECIDED_BY_COLUMN in labeled:
            labeled = labeled[labeled[DECIDED_BY_COLUMN] != CHALLENGER]  # the champion is judged on its own rows
        with not_retried(*DATA_ERRORS):
            actual = labels(labeled, spec)
            if regression:
                frame = pd.DataFrame({spec.target: actual, "score": labeled["score"].to_numpy(dtype="float64")})
                run, predicted_by = run_regression_quality, {"prediction_column": "score"}
            else:
                frame = pd.DataFrame({spec.target: actual, PREDICTED_CLASS: class_names(labeled[PREDICTED_CLASS])})
                run, predicted_by = run_multiclass_quality, {"predicted_column": PREDICTED_CLASS}
            result = yield Compute(  # Evidently: in a pool of processes when a range run checks several days
                run, {"frame": frame, "target": spec.target, **predicted_by, "report_path": report, "about": about}
            )
        reports.prune(spec.name, "quality")
        figures = task_figures(result, holdout)
        fairness = None
        if spec.fairness is not None:
            with not_retried(*DATA_ERRORS):
                fairness = _day_fairness(warehouse, spec, day, version.version, fairness_rows)
        log_to_mlflow(registry, version.run_id, day, {**figures, **(fairness.figures() if fairness else {})})
        links = report_links(reports, report, registry, version)
        # Per-class recalls stay out of the table: its columns must not change with the classes a day holds.
        stored = {k: v for k, v in figures.items() if not k.startswith("recall_")}
        row = {"day": pd.Timestamp(day), "model_version": version.version, "rows": result.rows, **stored}
        warehouse.replace_window(
            f"monitoring.{spec.name}_quality", "day", day, day + timedelta(days=1), [pd.DataFrame([row])]
        )
        yield dg.MaterializeResult(
            metadata={
                "status": "checked",
                "day": day.isoformat(),
                **measured(figures),
                "holdout_source": source,
                "labeled_rows": result.rows,
                "pooled_from": pooled_from.isoformat(),
                "pooled_days": pooled_days,
                "day_labeled_rows": int(on_day.sum()),
                "label_coverage": int(on_day.sum()) / predicted,
                "model_version": version.version,
                **(
                    {}
                    if regression
                    else {"classes": dg.MetadataValue.md(result.classes.to_markdown(index=False, floatfmt=".4f"))}
                ),
                **(fairness.metadata() if fairness is not None else {}),
                **(_canary_metadata(by_role, spec.task) if CHALLENGER in by_role else {}),
                **links,
            }
        )
        name = RMSE if regression else MACRO_F1_DROP
        if pd.isna(holdout):
            yield not_checked(name, f"version {version.version} records no holdout {metric} ({source})", day, links)
        elif regression:
            yield graded_check(
                RMSE,
                figures["rmse_ratio"],
                thresholds.rmse,
                f"RMSE {result.rmse:.4f} on {result.rows} labeled rows of {pooled}: {figures['rmse_ratio']:.3f}x the "
                f"holdout's {holdout:.4f}",
                day,
                links,
            )
        else:
            yield graded_check(
                MACRO_F1_DROP,
                figures["macro_f1_drop"],
                thresholds.macro_f1_drop,
                f"macro F1 {result.macro_f1:.4f} on {result.rows} labeled rows of {pooled} vs {holdout:.4f} on the "
                "holdout",
                day,
                links,
            )

    return quality


CHECK_DESCRIPTIONS = {
    AUC_DROP: "Validation ROC AUC minus the day's realised ROC AUC",
    CALIBRATION: "|observed positive rate - mean predicted rate| of the day",
    RMSE: "RMSE of the labeled rows as a multiple of the version's holdout RMSE",
    MACRO_F1_DROP: "The version's holdout macro F1 minus that of the labeled rows",
}


def _gaps_described(spec: ModelSpec) -> str:
    measured = {"binary": "ROC AUC", "regression": "mean absolute error", "multiclass": "macro recall"}[spec.task]
    if spec.task == "binary" or spec.fairness.approve_band is not None:
        return f"approval rate and {measured}"
    return measured


def holdout_figure(spec: ModelSpec, registry: ModelRegistry, version, metric: str) -> tuple[float, str]:
    """The version's holdout ``metric`` (rmse or macro_f1) and where it came from: its ``metric.<name>`` tag, else
    its reference sample (holdout rows with their predictions and labels); NaN when neither has it."""
    import math

    tagged = version.tags.get(f"metric.{metric}")
    if tagged is not None and not math.isnan(float(tagged)):
        return float(tagged), f"tag metric.{metric}"
    from sklearn.metrics import f1_score

    from assets.ml.evaluation import class_names, labels, regression_metrics
    from assets.ml.mlflow_logging import load_reference

    try:
        reference = load_reference(registry, version.run_id)
    except Exception as error:  # noqa: BLE001 (no reference logged: the check says so, not checked)
        return math.nan, f"no metric.{metric} tag, and no reference sample to measure it on ({error})"
    needed = [spec.target, "score" if metric == "rmse" else PREDICTED_CLASS]
    if reference.empty or any(c not in reference for c in needed):
        return math.nan, f"no metric.{metric} tag, and the reference sample lacks {needed}"
    actual = labels(reference, spec)
    if metric == "rmse":
        value = regression_metrics(actual, reference["score"].to_numpy(dtype="float64"))["rmse"]
    else:
        predicted = class_names(reference[PREDICTED_CLASS])
        classes = sorted(set(actual.tolist()) | set(predicted.tolist()))
        value = f1_score(actual, predicted, labels=classes, average="macro", zero_division=0)
    return float(value), f"the reference sample's {len(reference)} holdout rows"


def measured(figures: dict[str, float]) -> dict[str, float]:
    """The figures that have a value, as floats: one that could not be measured (NaN: a single class, no holdout
    figure) is left out rather than shown as "NaN", and plots over partitions skip the day."""
    import math

    return {k: float(v) for k, v in figures.items() if not math.isnan(float(v))}


def task_figures(result, holdout: float) -> dict[str, float]:
    """A regression or multiclass day's figures, with the one graded against ``holdout``."""
    from assets.monitoring.quality import RegressionQuality

    if isinstance(result, RegressionQuality):
        return {
            "rmse": result.rmse,
            "mae": result.mae,
            "r2": result.r2,
            "mean_actual": result.mean_actual,
            "mean_predicted": result.mean_predicted,
            "holdout_rmse": holdout,
            "rmse_ratio": result.rmse / holdout,
        }
    return {
        "macro_f1": result.macro_f1,
        "accuracy": result.accuracy,
        **{f"recall_{c}": r for c, r in result.recall().items()},
        "holdout_macro_f1": holdout,
        "macro_f1_drop": holdout - result.macro_f1,
    }


def _day_fairness(
    warehouse: Warehouse, spec: ModelSpec, day: date, version: int, labeled: "pd.DataFrame"
) -> "FairnessResult":
    """The day's gaps between segments, on its labeled rows and the decisions made; each segment's rates replace
    the day's rows of :func:`fairness_table`."""
    import pandas as pd

    from assets.ml.fairness import measure

    if spec.task == "binary":
        result = measure(labeled, spec.fairness, labeled["decision"], labeled[spec.target], labeled["score"])
    else:
        from assets.ml.evaluation import labels

        predicted = labeled[PREDICTED_CLASS].to_numpy() if spec.task == "multiclass" else None
        result = measure(
            labeled,
            spec.fairness,
            labeled["decision"],
            labels(labeled, spec),
            labeled["score"],
            task=spec.task,
            predicted=predicted,
        )
    rows = result.segments.assign(day=pd.Timestamp(day), model_version=version)
    warehouse.replace_window(fairness_table(spec), "day", day, day + timedelta(days=1), [rows])
    return result


# The figure of the canary's slice shown on its own (``canary_<name>``), by task.
CANARY_FIGURE = {"binary": "roc_auc", "regression": "rmse", "multiclass": "macro_f1"}


def _canary_metadata(by_role: dict[str, dict[str, float]], task: str = "binary") -> dict:
    """Realised quality of the champion's and the canary's slices of the day (labels in)."""
    import pandas as pd

    table = pd.DataFrame(by_role).T.rename_axis("decided_by").reset_index()
    figure = CANARY_FIGURE[task]
    return {
        "canary_quality": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
        f"canary_{figure}": float(by_role[CHALLENGER][figure]),
        "canary_rows": int(by_role[CHALLENGER]["rows"]),
    }


def _probabilities(spec: ModelSpec, roles: list[str]) -> list[str]:
    """The class probabilities of multiclass rows, where a canary's slice is measured (its log loss)."""
    return ["class_probabilities"] if spec.task == "multiclass" and roles else []
