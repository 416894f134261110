"""The drift asset of one model spec: Evidently data drift of the features and drift of the score, each scored day
against the reference the spec's ``monitoring.reference`` names. The score is what the spec's task predicts: the
probability (binary) or the predicted value (regression), by the Wasserstein distance, or the predicted class
(multiclass), whose mix of classes is compared by the Jensen-Shannon distance.

By default that is the reference of the version that scored the day (logged with that version at training), so
monitoring any past day is reproducible; or served days before it (``trailing_days``, ``same_weekday``), read from
the warehouse. The spec also chooses the checked columns, Evidently's method per column type or column, and
thresholds per column. Results become asset checks (WARN / ERROR from the spec's thresholds), numeric metadata that
Dagster plots over days, a row in a warehouse table, metrics on the version's MLflow run (one step per day), and an
HTML report a person can open: titled with the model, version, day and reference it covers, kept in the reports
folder and logged as an artifact of the version's MLflow run, linked from the materialization and from every check
(with the day it judged).

A check with nothing to judge passes as not checked (assets/monitoring/check_results.py): both checks when no day
was served before the day for a served-days reference (the materialization says ``status: no_reference``), score
drift when no reference row was scored by the serving version.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, resources)
# as real types. pandas is imported inside the functions: this module is imported when definitions load.
import math
from datetime import timedelta

import dagster as dg

from assets.ml.serving_cost import latency_percentiles
from assets.ml.spec import ModelSpec
from assets.monitoring.check_names import DATA_DRIFT, DRIFT_ASSET, EMPTY_INPUTS, SCORE_DRIFT
from assets.monitoring.check_results import combined_days, each_day, graded_check, not_checked, report_links
from assets.monitoring.day_pool import Compute
from assets.monitoring.ordinary_drift import DAY_COLUMN
from assets.monitoring.scored_day import (
    DATA_ERRORS,
    drifted_score,
    log_to_mlflow,
    monitoring_asset_args,
    sample_scored_day,
)
from assets.partitions import window_days
from assets.step_cost import with_cost
from resources.failures import not_retried
from resources.registry import ModelRegistry
from resources.reports import MonitoringReports
from resources.warehouse import Warehouse


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


def build_drift_asset(
    spec: ModelSpec,
    mart_keys: dict[str, dg.AssetKey],
    partitions: dg.PartitionsDefinition,
    sensitive: frozenset[str] = frozenset(),
) -> dg.AssetsDefinition:
    """``sensitive``: checked features whose values must stay out of the reports (``resources.source.sensitive``).
    Their drift is measured in a second Evidently run that is never stored, against the same kind of reference (the
    version's reference sample leaves them out, so for ``training`` they are compared with the training mart's rows
    of the version's holdout window, ``reference.holdout_rows``), and only its figures are kept: the metadata, the
    drift table and the data_drift check count them like any feature; the report a person opens does not show
    them. The metadata ``sensitive_columns`` says so."""
    key = dg.AssetKey([spec.name, DRIFT_ASSET])
    thresholds = spec.monitoring
    score_column = drifted_score(spec)
    categorical_score = spec.task == "multiclass"
    score_described = _score_described(spec)

    @dg.asset(
        key=key,
        **monitoring_asset_args(spec, mart_keys[spec.scoring_mart], partitions),
        description=f"Evidently data drift of {spec.name}'s features and score drift, each scored day against "
        f"{thresholds.reference.describe()} (a deterministic sample keeps the cost flat).",
        check_specs=[
            dg.AssetCheckSpec(DATA_DRIFT, asset=key, description="Share of features drifted from the reference"),
            dg.AssetCheckSpec(
                SCORE_DRIFT, asset=key, description=f"Drift of the model's {score_described} from the reference"
            ),
            dg.AssetCheckSpec(
                EMPTY_INPUTS,
                asset=key,
                description="Every checked feature has values on the day and in the reference (an empty one cannot "
                "be compared, and the day's scores were made from imputed values)",
            ),
        ],
    )
    @with_cost
    def drift(
        context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry, reports: MonitoringReports
    ):
        days = window_days(context)
        versions: dict = {}  # per version in this run: its reference and how far ordinary days drift (read once)
        per_day = each_day(
            days, lambda day: check_day(context, day, warehouse, registry, reports, versions), DRIFT_CHECKS
        )
        yield from combined_days(context, days, per_day)

    def training_reference(registry: ModelRegistry, run_id: str, numeric, categorical, versions: dict):
        """The version's reference sample and its ordinary-day drift, read and measured once per run."""
        from assets.ml.mlflow_logging import load_reference
        from assets.monitoring.ordinary_drift import column_methods, ordinary_drift

        if run_id not in versions:
            reference = load_reference(registry, run_id)
            ordinary = None
            if thresholds.calibrate_to_ordinary_days:
                methods = column_methods(
                    numeric, categorical, thresholds.num_method, thresholds.cat_method, thresholds.column_methods
                )
                calibrated = {c: m for c, m in methods.items() if c not in thresholds.column_thresholds}
                ordinary = ordinary_drift(
                    reference,
                    calibrated,
                    score_column,
                    ("jensenshannon", "cat") if categorical_score else ("wasserstein", "num"),
                )
            versions[run_id] = (reference, ordinary)
        return versions[run_id]

    def check_day(context, day, warehouse, registry, reports, versions: dict):
        """One day's drift: its materialization and checks, as a one-day run yields them."""
        import pandas as pd

        from assets.ml.spec import DRIFT_METHODS
        from assets.monitoring.drift import merged, run_drift
        from assets.monitoring.reference import holdout_rows, served_days, served_reference
        from assets.monitoring.report_page import ReportAbout

        listed_numeric, listed_categorical = thresholds.checked(spec.features)
        numeric = [c for c in listed_numeric if c not in sensitive]
        categorical = [c for c in listed_categorical if c not in sensitive]
        hidden_numeric = [c for c in listed_numeric if c in sensitive]
        hidden_categorical = [c for c in listed_categorical if c in sensitive]
        checked, hidden = [*numeric, *categorical], [*hidden_numeric, *hidden_categorical]
        rule = thresholds.reference
        served = None
        with not_retried(*DATA_ERRORS), warehouse.session():
            scored = sample_scored_day(warehouse, spec, day, thresholds.sample_rows)
            latency = latency_percentiles(warehouse, spec, day)  # the chain's data in -> scores out, last 30 days
            sample, serving = scored.frame, scored.version
            if rule.kind != "training":
                served_on = served_days(warehouse, spec, day)
                served = served_reference(warehouse, spec, served_on, serving, checked + hidden) if served_on else None
        version = registry.version(spec.name, serving)
        hidden_reference = served.frame[hidden] if served is not None else None
        if hidden and rule.kind == "training":
            with not_retried(*DATA_ERRORS), warehouse.session():
                hidden_reference = holdout_rows(warehouse, spec, version.tags, hidden)
        ordinary = None
        if rule.kind == "training":
            reference, ordinary = training_reference(registry, version.run_id, numeric, categorical, versions)
            reference = reference.drop(columns=[DAY_COLUMN], errors="ignore")
            if score_column not in reference:  # a version trained before its reference kept the predicted class
                reference = reference.assign(**{score_column: None})
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
                    "rows": scored.rows,
                }
            )
            yield not_checked(DATA_DRIFT, reason, day)
            yield not_checked(SCORE_DRIFT, reason, day)
            yield not_checked(EMPTY_INPUTS, reason, day)
            return
        else:
            reference = served.frame
            described = served.describe(spec)
            reference_days = len(served.days)
        # Thresholds as written, or raised where ordinary days of the reference drift further (ordinary_drift.py).
        base = {
            c: thresholds.column_drift_threshold
            if thresholds.column_drift_threshold is not None
            else DRIFT_METHODS[
                thresholds.column_methods.get(c, thresholds.num_method if c in numeric else thresholds.cat_method)
            ][2]
            for c in checked
            if c not in thresholds.column_thresholds
        }
        column_thresholds = {**(ordinary.raised(base) if ordinary else {}), **thresholds.column_thresholds}
        score_grades = ordinary.score_thresholds(thresholds.score_drift) if ordinary else thresholds.score_drift
        if ordinary is not None:
            calibration = ordinary.describe(base, thresholds.score_drift)
        elif rule.kind == "training" and thresholds.calibrate_to_ordinary_days:
            calibration = "as written (the reference sample records too few days to measure ordinary days)"
        else:
            calibration = "as written"
        report = reports.path(spec.name, "drift", day)
        about = ReportAbout(
            f"Drift of {spec.name} version {version.version} on {day}",
            {
                "model": spec.name,
                "version": str(version.version),
                "day": day.isoformat(),
                "reference": described,
                "rows": f"{scored.rows} scored, {len(sample)} compared",
                "checked columns": ", ".join(checked),
                "thresholds": calibration,
            },
        )
        with not_retried(*DATA_ERRORS):
            result = yield Compute(  # Evidently: in a pool of processes when a range run checks several days
                run_drift,
                dict(
                    reference=reference,
                    current=sample,
                    numeric=numeric,
                    categorical=categorical,
                    score_column=score_column,
                    column_threshold=thresholds.column_drift_threshold,
                    report_path=report,
                    partition_rows=scored.rows,
                    num_method=thresholds.num_method,
                    cat_method=thresholds.cat_method,
                    column_methods=thresholds.column_methods,
                    column_thresholds=column_thresholds,
                    score_threshold=score_grades.warn,
                    about=about,
                    drift_share=thresholds.drift_share.warn,  # the report's header says what the check says
                    score_categorical=categorical_score,
                ),
            )
        sensitive_note = "none"
        # A sensitive feature with no value on one side (the training mart no longer holds the holdout window's
        # rows, a column all missing) cannot be compared: Evidently refuses an empty column.
        blank = [
            c
            for c in hidden
            if hidden_reference is not None and (hidden_reference[c].isna().all() or sample[c].isna().all())
        ]
        if blank:
            hidden_numeric = [c for c in hidden_numeric if c not in blank]
            hidden_categorical = [c for c in hidden_categorical if c not in blank]
        if hidden and hidden_reference is None:
            sensitive_note = f"{', '.join(hidden)}: not compared (version {version.version} records no holdout window)"
        elif hidden and len(blank) == len(hidden):
            sensitive_note = (
                f"{', '.join(hidden)}: not compared (no values on one side: "
                f"{len(hidden_reference)} reference rows, {len(sample)} rows of the day)"
            )
        elif hidden:
            with not_retried(*DATA_ERRORS):
                hidden_result = yield Compute(
                    run_drift,
                    dict(
                        reference=hidden_reference.assign(**{score_column: None}),  # the score: in the report
                        current=sample,
                        numeric=hidden_numeric,
                        categorical=hidden_categorical,
                        score_column=score_column,
                        column_threshold=thresholds.column_drift_threshold,
                        report_path=None,  # never stored
                        partition_rows=scored.rows,
                        num_method=thresholds.num_method,
                        cat_method=thresholds.cat_method,
                        column_methods=thresholds.column_methods,
                        column_thresholds={c: thresholds.threshold(c, spec.features) for c in hidden if c not in blank},
                        score_categorical=categorical_score,
                    ),
                )
            result = merged(result, hidden_result)
            against = "the holdout window's rows of the training mart" if rule.kind == "training" else described
            compared = [c for c in hidden if c not in blank]
            sensitive_note = (
                f"{', '.join(compared)}: drift compared against {against} ({len(hidden_reference)} rows); figures "
                "only, the report leaves them out"
                + (f"; {', '.join(blank)}: not compared (no values on one side)" if blank else "")
            )
        reports.prune(spec.name, "drift")  # by the wall clock's today, never by the day checked
        score_compared = not math.isnan(result.score_drift)
        log_to_mlflow(
            registry, version.run_id, day, {"drift_share": result.drift_share, "score_drift": result.score_drift}
        )
        links = report_links(reports, report, registry, version)
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
        excluded = [c for c in spec.features.all if c not in checked and c not in hidden]
        score_note = (
            f"{score_described} drift {result.score_drift:.3f} ({_score_method(categorical_score)}) against {described}"
            if score_compared
            else f"score drift not compared: no reference row was scored by version {version.version} ({described})"
        )
        yield dg.MaterializeResult(
            metadata={
                "status": "checked",
                "day": day.isoformat(),
                "drift_share": result.drift_share,
                **latency,
                **({"score_drift": result.score_drift} if score_compared else {"score_drift_status": score_note}),
                "drifted_columns": drifted,
                "model_version": version.version,
                "rows": scored.rows,
                "sample_rows": result.sample_rows,
                "reference": described,
                "reference_rows": result.rows_reference,
                **({"reference_days": reference_days} if reference_days is not None else {}),
                **({"reference_versions": ", ".join(map(str, served.versions))} if served is not None else {}),
                "checked_columns": len(checked) + len(hidden),
                "excluded_columns": ", ".join(excluded) or "none",
                "sensitive_columns": sensitive_note,
                "empty_columns": ", ".join(result.empty_columns) or "none",
                "thresholds": calibration,
                "columns": dg.MetadataValue.md(_column_table(result)),  # each column's method and threshold
                **links,
                **{f"drift_{column}": score for column, score in result.column_scores.items()},
            }
        )
        if result.column_scores:
            yield graded_check(
                DATA_DRIFT,
                result.drift_share,
                thresholds.drift_share,
                f"{len(result.drifted_columns)} of {len(result.column_scores)} features drifted: {drifted} "
                f"(against {described})",
                day,
                links,
            )
        else:
            yield not_checked(DATA_DRIFT, "no checked feature has values to compare (see empty_inputs)", day, links)
        yield empty_inputs_check(result.empty_columns, day, links)
        if score_compared:
            yield graded_check(SCORE_DRIFT, result.score_drift, score_grades, score_note, day, links)
        else:
            yield not_checked(SCORE_DRIFT, score_note.removeprefix("score drift not compared: "), day, links)

    return drift


DRIFT_CHECKS = (DATA_DRIFT, SCORE_DRIFT, EMPTY_INPUTS)


def _score_described(spec: ModelSpec) -> str:
    """What the score drift check compares, in words, by the spec's task."""
    return {"binary": "score", "regression": "predicted value", "multiclass": "class mix"}[spec.task]


def _score_method(categorical: bool) -> str:
    if categorical:
        return "Jensen-Shannon distance of the predicted classes' shares"
    return "Wasserstein, normed by the reference's spread"


def empty_inputs_check(empty: dict[str, str], day, links: dict) -> dg.AssetCheckResult:
    """Failed (WARN) when a checked feature holds no value on the day or in the reference, naming each and why:
    a finding about the inputs, not a drift, so it does not launch a retraining."""
    described = "; ".join(f"'{column}': {why}" for column, why in empty.items())
    return dg.AssetCheckResult(
        check_name=EMPTY_INPUTS,
        passed=not empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{day}: "
        + (
            f"{len(empty)} checked feature(s) empty, not compared: {described}; the day's scores used imputed values"
            if empty
            else "every checked feature has values"
        ),
        metadata={"day": day.isoformat(), "empty_columns": len(empty), **links},
    )
