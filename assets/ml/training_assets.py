"""Training assets for one model spec: the training set, the model version it trains, and the gate check that
judges that version (:mod:`assets.ml.gate_checks`; it only observes). ``<model>/champion``
(:mod:`assets.ml.champion_assets`) decides what serves.

Wiring only: what the training set holds is :mod:`assets.ml.training_set`, how a version is trained
:mod:`assets.ml.training`, logged :mod:`assets.ml.mlflow_logging`, and fingerprinted :mod:`assets.ml.provenance`.
No churn: when the champion or the waiting challenger was trained on exactly what this run would learn from, the
model asset registers nothing and says so. A retraining launched by the monitoring sensor (run tag
:data:`RETRAIN_REASON_TAG`) also needs labels the champion never saw. The model step first puts right what a crashed
training left in MLflow (:mod:`assets.ml.recovery`: runs still RUNNING, versions without a verdict), logged in
the run and listed in its metadata (``recovered``).
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types. pandas is imported inside the functions: this module is imported when definitions load.
import dagster as dg
from pydantic import Field

from assets.ml.gate_checks import build_gate_check
from assets.ml.promotion import AliasChange, move_alias
from assets.ml.provenance import (
    DAGSTER_RUN_TAG,
    FINGERPRINT_TAG,
    LABEL_FIRST_DAY_TAG,
    LABEL_LAST_DAY_TAG,
    REVIEW_LABELED_TAG,
    dagster_run_url,
    git_commit,
    training_fingerprint,
    version_trained_on,
)
from assets.ml.spec import ModelSpec, SpecError
from assets.ml.training_set import (
    label_days,
    read_training_set,
    review_labeled_count,
    training_table,
    write_training_set,
)
from assets.step_cost import with_cost
from resources.failures import not_retried
from resources.registry import CHALLENGER, CHAMPION, SERVER_RETRY_POLICY, ModelRegistry
from resources.settings import DEFAULT_DAGSTER_URL
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse

RETRAIN_REASON_TAG = "nightjar/retrain_reason"
"""Run tag the monitoring checks sensor sets on the training runs it launches (the failed check that asked)."""


# Config descriptions are Field(description=...): the launchpad shows those, not attribute docstrings.
class TrainingSetConfig(dg.Config):
    as_of: str | None = Field(
        default=None,
        description="Train as of this day (YYYY-MM-DD): only labels known by then (label date <= as_of), as a model "
        "trained that day would have seen them. Empty means now: every label in the mart.",
    )


class ModelConfig(dg.Config):
    retrain_unchanged: bool = Field(
        default=False,
        description="Register a new version even when the champion (or the waiting challenger) was trained on this "
        "very training set with these spec settings: e.g. after upgrading scikit-learn. Otherwise nothing new is "
        "learned.",
    )


def build_training_assets(
    spec: ModelSpec,
    spec_source: str,
    mart_keys: dict[str, dg.AssetKey],
    kind: str,
    code_version: str | None,
    dagster_url: str = DEFAULT_DAGSTER_URL,
    sensitive: frozenset[str] = frozenset(),
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The training set asset, the model asset and its gate check for ``spec``. ``dagster_url``: where the Dagster UI
    answers, for the link from each MLflow training run to the Dagster run that made it. ``sensitive``: features
    whose values the MLflow run must not hold (``resources.source.sensitive``)."""
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
        f"{spec.evaluation.window_days} days of {spec.timestamp}, the last {spec.evaluation.holdout_days} held out. "
        "A retraining launched by a failed monitoring check needs labels the champion never saw.",
    )
    @with_cost
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        # A mart without a column the spec needs, or not built yet, fails the same way on every retry.
        with not_retried(SpecError, NotInWarehouse):
            written = write_training_set(
                warehouse, registry, spec, spec_source, config.as_of, context.run.tags.get(RETRAIN_REASON_TAG)
            )
        context.log.info(
            f"{spec.name}: training set of {written.rows} rows, labels {written.first_label}..{written.last_label}; "
            f"{written.labels_used}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written.rows,
                "window_start": written.start.isoformat(),
                "window_end_exclusive": written.end.isoformat(),
                "label_first_day": written.first_label.isoformat(),
                "label_last_day": written.last_label.isoformat(),
                "labels_used": written.labels_used,
                "labels_newer_than_champion": written.labels_newer,
                **written.target_figures,
                # review.labels_from_reviews on: how many rows took their label from a reviewer's decision
                **({"review_labeled_rows": written.review_labeled} if written.review_labeled is not None else {}),
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
        "training set, evaluated on its holdout, logged to MLflow and made the challenger; none when the champion "
        "(or the waiting challenger) was trained on the same data with the same spec: nothing new to learn.",
    )
    @with_cost
    def model(context: dg.AssetExecutionContext, config: ModelConfig, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.mlflow_logging import log_and_register
        from assets.ml.recovery import recover_in_step
        from assets.ml.training import train

        # What a crashed training left: MLflow runs still RUNNING, versions without a verdict (assets.ml.recovery).
        recovered = recover_in_step(context, registry, spec.name)
        with not_retried(NotInWarehouse):
            frame = read_training_set(warehouse, spec)
        # Rows that cannot make a model (TrainingDataError, SpecError) or that evaluation refuses (ValueError,
        # KeyError): the same rows fail the same way on every retry.
        with not_retried(ValueError, KeyError):
            fingerprint = training_fingerprint(frame, spec)
            first_label, last_label = label_days(frame, spec)
        review_labeled = review_labeled_count(frame)  # None: labels_from_reviews off when the set was written
        if not config.retrain_unchanged:
            unchanged = version_trained_on(registry, spec, fingerprint)
            if unchanged is not None:
                return _nothing_new(context, registry, fingerprint, *unchanged, recovered.summary())
        with not_retried(ValueError, KeyError):
            trained = train(spec, frame)
        logged = log_and_register(
            registry,
            spec,
            trained,
            tags={
                DAGSTER_RUN_TAG: context.run.run_id,
                "dagster_asset_key": model_key.to_user_string(),
                "code_version": code_version or git_commit(),
                "spec_source": spec_source,
                FINGERPRINT_TAG: fingerprint,
                LABEL_FIRST_DAY_TAG: first_label.isoformat(),
                LABEL_LAST_DAY_TAG: last_label.isoformat(),
                **({REVIEW_LABELED_TAG: str(review_labeled)} if review_labeled is not None else {}),
            },
            data_window={
                "mart": spec.training_mart,
                "first_day": str(frame[spec.timestamp].min().date()),
                "last_day": str(frame[spec.timestamp].max().date()),
                "rows": len(frame),
            },
            description_lines=[
                f"Dagster run: [{context.run.run_id}]({dagster_run_url(dagster_url, context.run.run_id)}) "
                f"(job `{context.run.job_name}`, asset `{model_key.to_user_string()}`)"
            ],
            sensitive=sensitive,
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
                "new_version": True,
                "model_uri": logged.model_uri,
                "mlflow_run_id": logged.run_id,
                "mlflow_run_name": logged.run_name,
                # Links to the MLflow UI (NIGHTJAR_MLFLOW_UI_URL, or the tracking server), on its model-training view.
                **registry.version_links(spec.name, logged.version, logged.run_id, logged.experiment_id),
                "training_fingerprint": fingerprint,
                "label_last_day": last_label.isoformat(),
                **({"review_labeled_rows": review_labeled} if review_labeled is not None else {}),
                **{f"holdout_{k}": float(v) for k, v in logged.metrics.items() if isinstance(v, (int, float))},
                **({"recovered": recovered.summary()} if recovered.anything else {}),
            },
            data_version=dg.DataVersion(str(logged.version)),
        )

    def _nothing_new(
        context: dg.AssetExecutionContext,
        registry: ModelRegistry,
        fingerprint: str,
        alias: str,
        version,
        recovered: str = "",
    ) -> dg.MaterializeResult:
        """The result saying nothing new was learned: ``version`` (``alias``) was trained on exactly this."""
        waiting = "" if alias == CHAMPION else " (waiting as challenger)"
        message = f"same data as {alias} version {version.version}{waiting}: nothing new to learn"
        context.log.info(
            f"{spec.name}: {message}; no version registered (config retrain_unchanged: true registers one anyway)"
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": version.version,
                "new_version": False,
                "unchanged": message,
                **registry.version_links(spec.name, version.version, version.run_id),
                "training_fingerprint": fingerprint,
                "label_last_day": version.tags.get(LABEL_LAST_DAY_TAG, ""),
                **({"recovered": recovered} if recovered else {}),
            },
            data_version=dg.DataVersion(str(version.version)),
        )

    return [training_set, model], [build_gate_check(spec, model_key)]
