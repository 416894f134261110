"""The daily predictions asset of one model spec, ``<model>/predictions``: each day of the scoring mart, scored by
the registry's champion (:func:`assets.ml.inference.score_window`)."""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types.
from datetime import timedelta

import dagster as dg
from pydantic import Field

from assets.ml.inference import per_day_figures, predictions_table, score_window
from assets.ml.scorer import explained_rows_described
from assets.ml.serving_cost import record_latency, scoring_cost
from assets.ml.spec import ModelSpec, SpecError
from assets.partitions import record_per_day, single_run, window_dates, window_days
from assets.step_cost import ROW_COUNT, Clock, cost_so_far
from resources.alerts import AlertsResource
from resources.failures import not_retried
from resources.registry import SERVER_RETRY_POLICY, ModelRegistry
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse


class PredictionsConfig(dg.Config):
    rescore: bool = Field(
        default=False,
        description="Replace predictions of days that another version already scored (their recorded decisions are "
        "lost).",
    )


def _description(spec: ModelSpec) -> str:
    """What a row of the spec's predictions holds, by its task (the loan example's words unchanged), and where its
    input is kept."""
    return _row_description(spec) + (
        f" The model input as scored is kept in predictions.{spec.name}_inputs: `python -m jobs.replay --model "
        f"{spec.name} --case <{spec.entity_id}>` replays a decision from it."
    )


def _row_description(spec: ModelSpec) -> str:
    scored = f"Each {spec.entity_id} of the day in {spec.scoring_mart}, scored by models:/{spec.name}@champion, "
    decided = "the role (champion, or challenger in the canary slice) and model version that decided it"
    if spec.task == "binary":
        return (
            f"{scored}with its decision band, {decided}, and the reasons (top features) of every decision outside "
            "the lowest band."
        )
    if spec.task == "regression":
        band = "its decision band" if spec.decision_bands is not None else "no decision (the spec has no bands)"
        what = "the predicted value, " + band
    else:
        what = "the predicted class, its probability, every class's probability, its decision (class_decisions)"
    which = explained_rows_described(spec) or "of every row"
    return f"{scored}with {what}, {decided}, and the reasons (top features) {which}."


def predictions_freshness_policy(due_hour: int, timezone: str) -> dg.FreshnessPolicy:
    """Due by ``due_hour`` (in the partitions' timezone) each day, built since local midnight: yesterday's partition
    exists only from midnight on, so an earlier materialization cannot be it. The UI's Freshness; the alert is
    ``missing_predictions_sensor``'s (same hour), which checks the day's partition itself."""
    since_midnight = timedelta(hours=due_hour) if due_hour else timedelta(days=1)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"0 {due_hour} * * *", lower_bound_delta=since_midnight, timezone=timezone
    )


def build_predictions_asset(
    spec: ModelSpec,
    mart_keys: dict[str, dg.AssetKey],
    kind: str,
    partitions: dg.PartitionsDefinition,
    raw_keys: list[dg.AssetKey] | None = None,
    cpu_hour_price: float | None = None,
    freshness_policy: dg.FreshnessPolicy | None = None,
) -> dg.AssetsDefinition:
    # The serving decision, not the newest trained version: lineage reads model -> champion -> predictions.
    champion_key = dg.AssetKey([spec.name, "champion"])

    @dg.asset(
        key=[spec.name, "predictions"],
        deps=[mart_keys[spec.scoring_mart], champion_key],
        partitions_def=partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        group_name="inference",
        kinds={"python", "mlflow", kind},
        owners=[spec.owner],
        description=_description(spec),
        metadata={"dagster/table_name": predictions_table(spec)},
        # No automation condition: the nightly schedule runs it (jobs/nightly.py says why).
        freshness_policy=freshness_policy,
    )
    def predictions(
        context: dg.AssetExecutionContext,
        config: PredictionsConfig,
        warehouse: Warehouse,
        registry: ModelRegistry,
        alerts: AlertsResource,
    ) -> dg.MaterializeResult:
        clock = Clock.start()
        start, end = window_dates(context)
        # A mart without a column the spec needs, or a mart not built yet, fails the same way on every retry.
        with not_retried(SpecError, NotInWarehouse):
            metadata, summary = score_window(
                warehouse, registry, spec, start, end, rescore=config.rescore, run_id=context.run.run_id
            )
        context.log.info(summary)
        rows = int(getattr(metadata.get(ROW_COUNT), "value", metadata.get(ROW_COUNT)) or 0)
        cost, over_budget = scoring_cost(cost_so_far(clock), rows, cpu_hour_price, spec, (end - start).days)
        if over_budget:
            alerts.send(
                title=f"{spec.name}: scoring over budget", severity="warning", text=over_budget, log=context.log
            )
        latency = record_latency(context, warehouse, spec, window_days(context), raw_keys or [])
        if end - start > timedelta(days=1):  # a range run: each day its own counts (one day: the run's are its own)
            record_per_day(context, per_day_figures(warehouse, spec, start, end))
        # The champion version that scored: its MLflow run and registry page, as links.
        links = registry.version_links(spec.name, int(metadata["model_version"]))
        return dg.MaterializeResult(metadata={**metadata, **links, **cost, **latency})

    return predictions
