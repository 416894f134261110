"""The champion/challenger gate of one model spec, as a blocking asset check on ``<model>/model``.

The check only observes: it judges the newest version (:func:`assets.ml.gate.evaluate_gate`) and records the
verdict on the version (``gate.*`` tags); it never moves an alias. Being blocking, a failed gate stops
``<model>/champion`` (:mod:`assets.ml.champion_assets`) in the same run, so the champion stays.

With a ``fairness`` section in the spec, the check's metadata also carries the version's gaps between segments, and
its segments are appended to the warehouse table :func:`gate_fairness_table` (one set of rows per judgement).
Before judging, the check puts right what a crashed training left in MLflow (:mod:`assets.ml.recovery`): a version
a later training took the ``challenger`` alias from before the gate judged it is retired here, in the same run.
"""

# No `from __future__ import annotations` here: Dagster reads the check function's annotations (context,
# resources) as real types.
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.spec import LOWER_IS_BETTER, ModelSpec
from assets.ml.training_set import read_training_set
from resources.failures import not_retried
from resources.registry import CHAMPION, SERVER_RETRY_POLICY, ModelRegistry, VersionInfo
from resources.warehouse import NotInWarehouse, Warehouse

if TYPE_CHECKING:
    from assets.ml.gate import GateVerdict

GATE_CHECK_NAME = "champion_challenger_gate"
# What a fairness gap compares between segments, by task (assets.ml.fairness).
GAP_WORDS = {
    "binary": "approval rate or ROC AUC",
    "regression": "mean absolute error or approval rate",
    "multiclass": "macro recall or approval rate",
}


def gate_fairness_table(spec: ModelSpec) -> str:
    return f"ml.{spec.name}_gate_fairness"


def _description(spec: ModelSpec) -> str:
    primary = spec.evaluation.primary_metric
    bound = "ceiling" if primary in LOWER_IS_BETTER else "floor"
    text = (
        f"Observes only: the newest version must clear the spec's {bound} on the primary metric ({primary}) and not "
        "trail the champion beyond the tolerance (primary metric and guardrails) on the same recent labeled holdout; "
        "it also "
        "says whether it beats the champion by more than min_improvement. The verdict is recorded on the version "
        f"(gate.* tags); it never moves an alias. Blocking: a failed gate stops {spec.name}/champion in the same "
        "run, so the champion stays."
    )
    if spec.fairness is not None:
        text += (
            f" It also refuses a version (the first one too) whose gap between segments in {GAP_WORDS[spec.task]} "
            f"is above the spec's fairness limits; the segments go to {gate_fairness_table(spec)}."
        )
    return text


def _record_fairness(spec: ModelSpec, warehouse: Warehouse, verdict: "GateVerdict", version: int, run_id: str) -> None:
    """Appended, not replaced: every judgement of a version stays, with the run that made it."""
    import pandas as pd

    segments = verdict.fairness.segments
    rows = segments.assign(
        model_version=version,
        # NULL when there was no champion (rows written before 2026-12-06 say -1), still an integer column.
        champion_version=pd.array([verdict.champion_version] * len(segments), dtype="Int64"),
        passed=verdict.passed,
        judged_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
        dagster_run_id=run_id,
    )
    warehouse.append(gate_fairness_table(spec), rows)


def build_gate_check(spec: ModelSpec, model_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=model_key,
        name=GATE_CHECK_NAME,
        blocking=True,
        retry_policy=SERVER_RETRY_POLICY,  # when MLflow or the warehouse server does not answer
        description=_description(spec),
    )
    def gate(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, registry: ModelRegistry):
        from assets.ml.gate import evaluate_gate
        from assets.ml.recovery import recover_in_step

        version = _version_to_judge(context, registry)
        # What a crashed training left (assets.ml.recovery); the version about to be judged is left to the gate.
        recover_in_step(context, registry, spec.name, keep=() if version is None else (version.version,))
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
        if verdict.fairness is not None:
            _record_fairness(spec, warehouse, verdict, version.version, context.run.run_id)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.reason,
            metadata={
                "version": version.version,
                **({"champion_version": champion.version} if champion else {}),
                "beats_champion": verdict.beats_champion,
                **({} if verdict.gain is None else {"improvement": verdict.gain}),
                "min_improvement": spec.promotion.min_improvement,
                "policy": spec.promotion.policy,
                **{f"challenger_{k}": float(v) for k, v in verdict.challenger_metrics.items()},
                **{f"champion_{k}": float(v) for k, v in verdict.champion_metrics.items()},
                **(verdict.fairness.metadata() if verdict.fairness is not None else {}),
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

    return gate
