"""What a crashed training leaves in MLflow, put right by the next training or gate step: no MLflow run stays
RUNNING after its Dagster run ended, and no registered version stays without a verdict.

A training killed mid-step (kill -9, out of memory) never ends its MLflow run, which MLflow then shows as RUNNING
for ever; killed after registering its version but before the gate judged it, it leaves a version with no verdict
and, once another version takes the ``challenger`` alias, nothing that would ever judge it. :func:`recover` runs at
the start of the model step and of the gate check (:mod:`assets.ml.training_assets`, :mod:`assets.ml.gate_checks`):

- an MLflow run of the model's experiment still RUNNING whose Dagster run (tag :data:`DAGSTER_RUN_TAG`) is over
  (SUCCESS, FAILURE or CANCELED, or unknown to this Dagster instance) is ended as FAILED, tagged with why
  (:data:`ENDED_TAG`). A Dagster run still in progress (STARTED included: a run whose process died is marked
  failed by the instance's own healing before the next step runs) keeps its MLflow run;
- a registered version with no gate verdict (no ``gate.passed`` tag) that is neither champion nor challenger, was
  never champion, and whose training Dagster run is over is retired: ``gate.passed`` ``false`` (so every reader,
  promotion included, treats it as refused: a person may still promote it with ``force: true`` and a reason),
  ``gate.reason`` saying which run left it unjudged, and ``gate.retired`` (when, by which Dagster run). It is retired rather than judged:
  the gate judges a version on the holdout of the training set it was trained with, which a later training has
  replaced, and a verdict on other days (against whichever version serves by then) would not be the gate's.

Versions the gate can still judge are left alone: the challenger (a retraining on unchanged data hands it to the
gate), those of a Dagster run still in progress (the current one included), and ``keep`` (the version the gate is
about to judge). Everything is idempotent: a retried step finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from assets.ml.promotion import CHAMPION_SINCE_TAG, GATE_PASSED_TAG, GATE_REASON_TAG, GATE_RETIRED_TAG
from assets.ml.provenance import DAGSTER_RUN_TAG
from resources.registry import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    import dagster as dg

    from resources.registry import ModelRegistry

ENDED_TAG = "nightjar.ended_by_recovery"  # on an MLflow run ended FAILED: why, and by which Dagster run
RETIRED_PREFIX = "retired without a verdict"  # how gate.reason of a retired version begins


@dataclass
class Recovery:
    """What :func:`recover` did: one line per MLflow run ended and per version retired."""

    ended_runs: list[str] = field(default_factory=list)  # MLflow run ids
    retired_versions: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.ended_runs or self.retired_versions)

    def summary(self) -> str:
        return "; ".join(self.lines)


def dagster_run_over(instance: dg.DagsterInstance) -> Callable[[str], str | None]:
    """``over(run_id)``: why the Dagster run ``run_id`` is over ("ended FAILURE", "is not in this Dagster
    instance"), or ``None`` while it is in progress (queued, starting, started, canceling). Answers are kept for
    the one recovery that asks."""
    answers: dict[str, str | None] = {}

    def over(run_id: str) -> str | None:
        if run_id not in answers:
            run = instance.get_run_by_id(run_id)
            if run is None:
                answers[run_id] = f"Dagster run {run_id} is not in this Dagster instance"
            elif run.is_finished:
                answers[run_id] = f"Dagster run {run_id} ended {run.status.value}"
            else:
                answers[run_id] = None
        return answers[run_id]

    return over


def recover(
    registry: ModelRegistry,
    model: str,
    instance: dg.DagsterInstance,
    *,
    by_run_id: str,
    keep: Collection[int] = (),
) -> Recovery:
    """End the MLflow runs of ``model``'s experiment left RUNNING by a Dagster run that is over, and retire the
    versions of ``model`` left without a verdict (see the module doc). ``by_run_id``: the Dagster run doing it,
    recorded on what it changes; ``keep``: versions to leave alone whatever they carry."""
    over = dagster_run_over(instance)
    done = Recovery()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    for run in registry.running_runs(model):
        dagster_run = run.tags.get(DAGSTER_RUN_TAG)
        if not dagster_run:
            continue  # not a nightjar training run: someone's own, left as it is
        why = over(dagster_run)
        if why is None:
            continue
        reason = f"{why} while this MLflow run was still RUNNING (crashed?)"
        registry.end_run(
            run.run_id, "FAILED", {ENDED_TAG: f"ended FAILED at {now} by Dagster run {by_run_id}: {reason}"}
        )
        done.ended_runs.append(run.run_id)
        done.lines.append(f"MLflow run {run.name or run.run_id} ({run.run_id}) ended as FAILED: {reason}")
    for version in sorted(registry.all_versions(model), key=lambda v: v.version):
        if (
            GATE_PASSED_TAG in version.tags  # judged (or retired) already
            or version.version in keep
            or {CHAMPION, CHALLENGER} & set(version.aliases)
            or CHAMPION_SINCE_TAG in version.tags  # served once: a decision was made on it
        ):
            continue
        dagster_run = version.tags.get(DAGSTER_RUN_TAG)
        if not dagster_run:
            continue  # not registered by a nightjar training (e.g. by hand): not this module's to judge
        why = over(dagster_run)
        if why is None:
            continue  # its training still runs: its own gate step judges it
        reason = (
            f"{RETIRED_PREFIX}: its training run ({why}) left it without a gate verdict (crashed, or the gate never "
            "ran) and it no longer waits as challenger; the training set it would be judged on is gone"
        )
        registry.set_version_tags(
            model,
            version.version,
            {GATE_PASSED_TAG: "false", GATE_REASON_TAG: reason, GATE_RETIRED_TAG: f"{now} by Dagster run {by_run_id}"},
        )
        done.retired_versions.append(version.version)
        done.lines.append(f"version {version.version} of '{model}' {reason}")
    return done


def recover_in_step(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    registry: ModelRegistry,
    model: str,
    *,
    keep: Collection[int] = (),
) -> Recovery:
    """:func:`recover` from a Dagster step, each thing done logged as a warning in the run."""
    done = recover(registry, model, context.instance, by_run_id=context.run.run_id, keep=keep)
    for line in done.lines:
        context.log.warning(f"{model}: {line}")
    return done
