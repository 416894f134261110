"""Training assets for one model spec: the training set, the model version it trains, and the gate that judges
that version (a check that only observes; ``<model>/champion``, in :mod:`assets.ml.champion`, decides what serves).

No churn: a version is registered only when there is something new to learn. The model asset fingerprints what it
would learn from (the training set's content hash and the spec's learning fields) and, when the champion or the
waiting challenger was trained on exactly that, registers nothing and says so. A retraining launched by the
monitoring sensor (run tag :data:`RETRAIN_REASON_TAG`) also needs labels the champion never saw: the training set
refuses to build without them, naming the champion's last label day and when the next labels are due.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations (context, config,
# resources) as real types. pandas is imported inside the functions: this module is imported when definitions load.
import hashlib
import json
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.promotion import AliasChange, move_alias
from assets.ml.spec import ModelSpec, SpecError
from resources.failures import DataFailure, not_retried
from resources.registry import CHALLENGER, CHAMPION, SERVER_RETRY_POLICY, ModelRegistry, VersionInfo
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse

if TYPE_CHECKING:
    import pandas as pd

MARTS_SCHEMA = "marts"
ALL_TIME = (date(1900, 1, 1), date(9999, 12, 31))

RETRAIN_REASON_TAG = "nightjar/retrain_reason"
"""Run tag the monitoring checks sensor sets on the training runs it launches (the failed check that asked)."""
# Tags on every registered version (and its MLflow run), written by the model asset.
FINGERPRINT_TAG = "training.fingerprint"  # sha256 of the training set's content hash and the spec's learning fields
LABEL_FIRST_DAY_TAG = "training.label_first_day"  # the oldest label date (spec.label_date) the version learned from
LABEL_LAST_DAY_TAG = "training.label_last_day"  # the newest
# The spec fields that change what a model learns; promotion, decision bands and monitoring do not.
LEARNING_FIELDS = frozenset(
    {"training_mart", "entity_id", "timestamp", "label_date", "target", "features", "estimator", "evaluation"}
)


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


class ModelConfig(dg.Config):
    retrain_unchanged: bool = False
    """Register a new version even when the champion (or the waiting challenger) was trained on this very
    training set with these spec settings: e.g. after upgrading scikit-learn. Otherwise nothing new is learned."""


def label_days(frame: "pd.DataFrame", spec: ModelSpec) -> "tuple[date, date]":
    """(first, last) label date (``spec.label_date``) of the rows."""
    import pandas as pd

    labelled = pd.to_datetime(frame[spec.label_date])
    return labelled.min().date(), labelled.max().date()


def training_fingerprint(frame: "pd.DataFrame", spec: ModelSpec) -> str:
    """What a version learns from, as one sha256: the training set's content hash (rows sorted by timestamp, then
    entity id, so the order they were read in does not matter; see :func:`assets.ml.training.content_hash`, which
    also makes the ``data_hash`` tag) and the spec's :data:`LEARNING_FIELDS` (features, estimator, window...)."""
    from assets.ml.training import content_hash

    ordered = frame.sort_values([spec.timestamp, spec.entity_id], kind="mergesort")
    learning = spec.model_dump(mode="json", by_alias=True, include=set(LEARNING_FIELDS))
    payload = json.dumps({"data_hash": content_hash(ordered, spec), "spec": learning}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _tagged_day(version: VersionInfo | None, tag: str) -> date | None:
    value = version.tags.get(tag) if version is not None else None
    return date.fromisoformat(value) if value else None


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
        f"{spec.evaluation.window_days} days of {spec.timestamp}, the last {spec.evaluation.holdout_days} held out. "
        "A retraining launched by a failed monitoring check needs labels the champion never saw.",
    )
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse, registry: ModelRegistry
    ):
        # A mart without a column the spec needs, or not built yet, fails the same way on every retry.
        with not_retried(SpecError, NotInWarehouse):
            return _write_training_set(context, config, warehouse, registry)

    def _write_training_set(
        context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        import pandas as pd

        start, end = _training_window(warehouse, spec, config.as_of)
        frame = warehouse.read_window(f"{MARTS_SCHEMA}.{spec.training_mart}", spec.timestamp, start, end)
        if config.as_of and not frame.empty:
            spec.check_columns(set(frame.columns), spec.training_mart, spec_source)
            frame = frame[pd.to_datetime(frame[spec.label_date]) <= pd.Timestamp(config.as_of)]
        if frame.empty:
            raise DataFailure(f"{spec.training_mart} has no rows between {start} and {end}")
        spec.check_columns(set(frame.columns), spec.training_mart, spec_source)
        first_label, last_label = label_days(frame, spec)
        labels = _labels_against_champion(context, registry, frame, last_label)
        rows = warehouse.replace_window(training_table(spec), spec.timestamp, *ALL_TIME, [frame])
        context.log.info(
            f"{spec.name}: training set of {rows} rows, labels {first_label}..{last_label}; {labels['used']}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "window_start": start.isoformat(),
                "window_end_exclusive": end.isoformat(),
                "label_first_day": first_label.isoformat(),
                "label_last_day": last_label.isoformat(),
                "labels_used": labels["used"],
                "labels_newer_than_champion": labels["newer"],
                "positive_rate": float(frame[spec.target].mean()),
                "table": training_table(spec),
            }
        )

    def _labels_against_champion(
        context: dg.AssetExecutionContext, registry: ModelRegistry, frame: "pd.DataFrame", last_label: date
    ) -> dict:
        """How many of the rows were labeled after the champion's last label day; refuses (DataFailure) a retraining
        the monitoring sensor launched when there are none: the champion already learned from every label."""
        import pandas as pd

        champion = registry.by_alias(spec.name, CHAMPION)
        seen = _tagged_day(champion, LABEL_LAST_DAY_TAG)
        if champion is None or seen is None:
            known = (
                "no champion yet" if champion is None else f"champion version {champion.version} records no label days"
            )
            return {"used": f"every label is new ({known})", "newer": len(frame)}
        newer = int((pd.to_datetime(frame[spec.label_date]).dt.date > seen).sum())
        trigger = context.run.tags.get(RETRAIN_REASON_TAG)
        if trigger and newer == 0:
            raise DataFailure(
                f"retraining of '{spec.name}' (launched by the failed check {trigger}) refused: no labels newer than "
                f"the champion's (version {champion.version}, last label day {seen}); next labels due on "
                f"{seen + timedelta(days=1)}. The newest label in {spec.training_mart} is from {last_label}: retrain "
                "once later labels are ingested.",
                metadata={
                    "champion_version": champion.version,
                    "champion_label_last_day": seen.isoformat(),
                    "label_last_day": last_label.isoformat(),
                },
            )
        used = f"{newer} of {len(frame)} rows labeled after champion version {champion.version}'s last label day {seen}"
        return {"used": used, "newer": newer}

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
    def model(context: dg.AssetExecutionContext, config: ModelConfig, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.mlflow_logging import log_and_register
        from assets.ml.training import train

        with not_retried(NotInWarehouse):
            frame = read_training_set(warehouse, spec)
        # Rows that cannot make a model (TrainingDataError, SpecError) or that evaluation refuses (ValueError,
        # KeyError): the same rows fail the same way on every retry.
        with not_retried(ValueError, KeyError):
            fingerprint = training_fingerprint(frame, spec)
            first_label, last_label = label_days(frame, spec)
        if not config.retrain_unchanged:
            unchanged = _unchanged(context, registry, fingerprint)
            if unchanged is not None:
                return unchanged
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
                FINGERPRINT_TAG: fingerprint,
                LABEL_FIRST_DAY_TAG: first_label.isoformat(),
                LABEL_LAST_DAY_TAG: last_label.isoformat(),
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
                "new_version": True,
                "model_uri": logged.model_uri,
                "mlflow_run_id": logged.run_id,
                "mlflow_run": registry.ui_link(logged.run_id, logged.experiment_id),
                "training_fingerprint": fingerprint,
                "label_last_day": last_label.isoformat(),
                **{f"holdout_{k}": float(v) for k, v in logged.metrics.items() if isinstance(v, (int, float))},
            },
            data_version=dg.DataVersion(str(logged.version)),
        )

    def _unchanged(
        context: dg.AssetExecutionContext, registry: ModelRegistry, fingerprint: str
    ) -> dg.MaterializeResult | None:
        """The result saying nothing new was learned, when the champion or the challenger was trained on exactly
        what this run would train on; None otherwise."""
        for alias in (CHAMPION, CHALLENGER):
            version = registry.by_alias(spec.name, alias)
            if version is None or version.tags.get(FINGERPRINT_TAG) != fingerprint:
                continue
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
                    "training_fingerprint": fingerprint,
                    "label_last_day": version.tags.get(LABEL_LAST_DAY_TAG, ""),
                },
                data_version=dg.DataVersion(str(version.version)),
            )
        return None

    @dg.asset_check(
        asset=model_key,
        name="champion_challenger_gate",
        blocking=True,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        description="Observes only: the newest version must clear the spec's floor on the primary metric and not "
        "trail the champion beyond the tolerance (primary metric and guardrails) on the same recent labeled "
        "holdout; it also says whether it beats the champion by more than min_improvement. The verdict is "
        f"recorded on the version (gate.* tags); it never moves an alias. Blocking: a failed gate stops "
        f"{spec.name}/champion in the same run, so the champion stays.",
    )
    def gate(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.gate import evaluate_gate

        version = _version_to_judge(context, registry)
        if version is None:
            return dg.AssetCheckResult(passed=False, description=f"'{spec.name}' has no registered version to judge")
        champion = registry.by_alias(spec.name, CHAMPION)
        if champion is not None and champion.version == version.version:
            return dg.AssetCheckResult(
                passed=True,
                description=f"version {version.version} is the champion: nothing to judge",
                metadata={"version": version.version, "champion_version": champion.version},
            )
        # Holdout rows the versions cannot be judged on fail the same way on every retry; a registry error
        # (a dagster.Failure) passes unchanged and is retried only if the server may answer later.
        with not_retried(NotInWarehouse, ValueError, KeyError):
            verdict = evaluate_gate(spec, registry, read_training_set(warehouse, spec), version, champion)
        registry.set_version_tags(spec.name, version.version, verdict.tags())
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.reason,
            metadata={
                "version": version.version,
                "champion_version": champion.version if champion else -1,
                "beats_champion": verdict.beats_champion,
                **({} if verdict.gain is None else {"improvement": verdict.gain}),
                "min_improvement": spec.promotion.min_improvement,
                "policy": spec.promotion.policy,
                **{f"challenger_{k}": float(v) for k, v in verdict.challenger_metrics.items()},
                **{f"champion_{k}": float(v) for k, v in verdict.champion_metrics.items()},
            },
        )

    def _version_to_judge(context: dg.AssetCheckExecutionContext, registry: ModelRegistry) -> VersionInfo | None:
        """The version the model asset last materialized (in a training run: the one it just trained, or the one
        it found unchanged); the newest registered version when this instance has no materialization of it."""
        event = context.instance.get_latest_materialization_event(model_key)
        if event is not None and "model_version" in event.asset_materialization.metadata:
            return registry.version(spec.name, event.asset_materialization.metadata["model_version"].value)
        versions = registry.versions(spec.name)
        return registry.version(spec.name, max(versions)) if versions else None

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
