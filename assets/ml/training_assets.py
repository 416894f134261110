"""Training assets for one model spec: the training set, the model version it trains, and the gate that decides
whether that version may serve."""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types. pandas is imported inside the functions: this module is imported when definitions load.
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.promotion import GATE_PASSED_TAG, GATE_REASON_TAG, AliasChange, move_alias
from assets.ml.spec import ModelSpec, SpecError
from resources.failures import DataFailure, not_retried
from resources.registry import CHALLENGER, CHAMPION, SERVER_RETRY_POLICY, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse

if TYPE_CHECKING:
    import pandas as pd

MARTS_SCHEMA = "marts"
ALL_TIME = (date(1900, 1, 1), date(9999, 12, 31))


class TrainingSetConfig(dg.Config):
    as_of: str | None = None
    """Train as of this day (YYYY-MM-DD): only labels known by then (label date <= as_of), as a model trained
    that day would have seen them. Empty means now: every label in the mart."""


def training_table(spec: ModelSpec) -> str:
    return f"ml.{spec.name}_training_set"


def _training_window(warehouse: Warehouse, spec: ModelSpec, as_of: str | None) -> tuple[date, date]:
    """[start, end) on the spec's timestamp: the newest ``window_days`` days with labels, up to ``as_of``."""
    import pandas as pd

    mart = f"{MARTS_SCHEMA}.{spec.training_mart}"
    if as_of:
        last = date.fromisoformat(as_of)
    else:
        newest = warehouse.query(f"SELECT max({spec.timestamp}) AS d FROM {mart}")["d"].iloc[0]
        if pd.isna(newest):
            raise DataFailure(f"{mart} has no labeled rows yet: materialize more history (labels arrive late)")
        last = pd.Timestamp(newest).date()
    return last - timedelta(days=spec.evaluation.window_days - 1), last + timedelta(days=1)


def read_training_set(warehouse: Warehouse, spec: ModelSpec) -> "pd.DataFrame":
    return warehouse.read_window(training_table(spec), spec.timestamp, *ALL_TIME)


def build_training_assets(
    spec: ModelSpec, spec_source: str, mart_keys: dict[str, dg.AssetKey], kind: str, code_version: str | None
):
    """The training set asset, the model asset and its gate check for ``spec``."""
    training_set_key = dg.AssetKey([spec.name, "training_set"])
    model_key = dg.AssetKey([spec.name, "model"])

    @dg.asset(
        key=training_set_key,
        deps=[mart_keys[spec.training_mart]],
        group_name="training",
        pool=WAREHOUSE_POOL,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        kinds={"python", kind},
        owners=[spec.owner],
        description=f"Labeled window of {spec.training_mart} that {spec.name} learns from: the newest "
        f"{spec.evaluation.window_days} days of {spec.timestamp}, the last {spec.evaluation.holdout_days} held out.",
    )
    def training_set(context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse):
        # A mart without a column the spec needs, or not built yet, fails the same way on every retry.
        with not_retried(SpecError, NotInWarehouse):
            return _write_training_set(config, warehouse)

    def _write_training_set(config: TrainingSetConfig, warehouse: Warehouse) -> dg.MaterializeResult:
        import pandas as pd

        start, end = _training_window(warehouse, spec, config.as_of)
        frame = warehouse.read_window(f"{MARTS_SCHEMA}.{spec.training_mart}", spec.timestamp, start, end)
        if config.as_of and not frame.empty:
            spec.check_columns(set(frame.columns), spec.training_mart, spec_source)
            frame = frame[pd.to_datetime(frame[spec.label_date]) <= pd.Timestamp(config.as_of)]
        if frame.empty:
            raise DataFailure(f"{spec.training_mart} has no rows between {start} and {end}")
        spec.check_columns(set(frame.columns), spec.training_mart, spec_source)
        rows = warehouse.replace_window(training_table(spec), spec.timestamp, *ALL_TIME, [frame])
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "window_start": start.isoformat(),
                "window_end_exclusive": end.isoformat(),
                "positive_rate": float(frame[spec.target].mean()),
                "table": training_table(spec),
            }
        )

    @dg.asset(
        key=model_key,
        deps=[training_set_key],
        group_name="training",
        pool=WAREHOUSE_POOL,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        kinds={"scikitlearn", "mlflow"},
        owners=[spec.owner],
        description=f"A new registered version of {spec.name} ({spec.estimator.class_path}), trained on the "
        "training set, evaluated on its holdout, logged to MLflow and made the challenger.",
    )
    def model(context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.mlflow_logging import log_and_register
        from assets.ml.training import train

        with not_retried(NotInWarehouse):
            frame = read_training_set(warehouse, spec)
        # Rows that cannot make a model (TrainingDataError, SpecError) or that evaluation refuses (ValueError,
        # KeyError): the same rows fail the same way on every retry.
        with not_retried(ValueError, KeyError):
            trained = train(spec, frame)
        logged = log_and_register(
            registry,
            spec,
            trained,
            tags={
                "dagster_run_id": context.run.run_id,
                "dagster_asset_key": model_key.to_user_string(),
                "code_version": code_version or _git_commit(),
                "spec_source": spec_source,
            },
            data_window={
                "mart": spec.training_mart,
                "first_day": str(frame[spec.timestamp].min().date()),
                "last_day": str(frame[spec.timestamp].max().date()),
                "rows": len(frame),
            },
        )
        previous = registry.by_alias(spec.name, CHALLENGER)
        move_alias(
            registry,
            warehouse,
            AliasChange(
                model_name=spec.name,
                alias=CHALLENGER,
                action="train",
                from_version=previous.version if previous else None,
                to_version=logged.version,
                actor="training",
                reason="newly trained version waits for the gate",
                forced=False,
                metrics=logged.metrics,
                dagster_run_id=context.run.run_id,
            ),
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": logged.version,
                "model_uri": logged.model_uri,
                "mlflow_run_id": logged.run_id,
                "mlflow_run": registry.ui_link(logged.run_id, logged.experiment_id),
                **{f"holdout_{k}": float(v) for k, v in logged.metrics.items() if isinstance(v, (int, float))},
            }
        )

    @dg.asset_check(
        asset=model_key,
        name="champion_challenger_gate",
        blocking=True,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        description="The challenger must clear the spec's floor on the primary metric and not trail the champion "
        "beyond the tolerance (primary metric and guardrails) on the same recent labeled holdout.",
    )
    def gate(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.gate import evaluate_gate

        challenger = _version_under_review(context, registry)
        if challenger is None:
            return dg.AssetCheckResult(passed=False, description=f"'{spec.name}' has no challenger to evaluate")
        champion = registry.by_alias(spec.name, CHAMPION)
        # Holdout rows the versions cannot be judged on fail the same way on every retry; a registry error
        # (a dagster.Failure) passes unchanged and is retried only if the server may answer later.
        with not_retried(NotInWarehouse, ValueError, KeyError):
            verdict = evaluate_gate(spec, registry, read_training_set(warehouse, spec), challenger, champion)
        registry.set_version_tags(
            spec.name, challenger.version, {GATE_PASSED_TAG: str(verdict.passed).lower(), GATE_REASON_TAG: verdict.reason}
        )
        promoted = verdict.passed and (champion is None or spec.promotion.policy == "auto")
        if promoted:
            move_alias(
                registry,
                warehouse,
                AliasChange(
                    model_name=spec.name,
                    alias=CHAMPION,
                    action="gate",
                    from_version=champion.version if champion else None,
                    to_version=challenger.version,
                    actor="gate",
                    reason=verdict.reason if champion else f"first version to clear the floor: {verdict.reason}",
                    forced=False,
                    metrics=verdict.challenger_metrics,
                    dagster_run_id=context.run.run_id,
                ),
            )
            registry.remove_alias(spec.name, CHALLENGER)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.reason,
            metadata={
                "challenger_version": challenger.version,
                "champion_version": champion.version if champion else -1,
                "promoted": promoted,
                "policy": spec.promotion.policy,
                **{f"challenger_{k}": float(v) for k, v in verdict.challenger_metrics.items()},
                **{f"champion_{k}": float(v) for k, v in verdict.champion_metrics.items()},
            },
        )

    def _version_under_review(context: dg.AssetCheckExecutionContext, registry: ModelRegistry):
        """The version this run trained, even if another run has since made its own the challenger; the
        current challenger when the check runs on its own."""
        event = context.instance.get_latest_materialization_event(model_key)
        if event is not None and event.run_id == context.run.run_id:
            return registry.version(spec.name, event.asset_materialization.metadata["model_version"].value)
        return registry.by_alias(spec.name, CHALLENGER)

    return [training_set, model], [gate]


def _git_commit() -> str:
    """The git commit of the code that trained, when no code version is configured (a deployed image sets one)."""
    import subprocess

    from resources.settings import PROJECT_ROOT

    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"
