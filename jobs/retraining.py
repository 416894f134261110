"""Whether a failed check asks for a retraining, and the training run it asks for.

Only the monitoring checks in :data:`assets.monitoring.check_names.RETRAIN_CHECKS` ask, only at ERROR, at most once
per model per cool-down (remembered in the checks sensor's cursor, :class:`jobs.checks_cursor.ChecksCursor`) and
once per model per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from assets.ml.training_assets import RETRAIN_REASON_TAG
from assets.monitoring.check_names import RETRAIN_CHECKS
from jobs.checks_cursor import ChecksCursor

# What `dg.define_asset_job` returns (its class is not exported by dagster) or a `dg.JobDefinition`.
TrainingJob = Any


@dataclass(frozen=True)
class FailedCheck:
    asset_key: dg.AssetKey
    check_name: str
    severity: dg.AssetCheckSeverity
    description: str | None
    partition: str | None
    run_id: str
    job_name: str


def retrain_decision(
    failure: FailedCheck,
    jobs_by_model: Mapping[str, TrainingJob],
    state: ChecksCursor,
    cooldown: timedelta,
    now: datetime,
    requested: set[str],
) -> tuple[dg.RunRequest | None, str | None]:
    """A training run request (or None) and, for monitoring checks, what was decided, for the alert.

    Records a request in the cursor state and in ``requested`` (the models requested in this tick: with a zero
    cool-down, two failed checks of one run would otherwise ask twice).
    """
    model = _monitored_model(failure, jobs_by_model)
    if model is None:
        return None, None
    job_name = jobs_by_model[model].name
    if failure.severity != dg.AssetCheckSeverity.ERROR:
        return None, "warning only: no retraining"
    if model in requested:  # another failed check of the same model, in this same tick
        return None, f"{job_name} requested by this evaluation already"
    last = state.last_retrain.get(model)
    if last is not None and now - datetime.fromisoformat(last) < cooldown:
        until = datetime.fromisoformat(last) + cooldown
        return None, f"{job_name} already requested at {last}; cool-down until {until.isoformat()}"
    state.last_retrain[model] = now.astimezone(UTC).isoformat()
    requested.add(model)
    request = dg.RunRequest(
        job_name=job_name,
        # Unique per triggering run: a tick evaluated twice cannot launch the training twice.
        run_key=f"retrain-{model}-{failure.run_id}",
        # The training set reads this tag: a retraining asked for by a failed check needs labels the champion
        # never saw, or it refuses to train (assets/ml/training_assets.py).
        tags={
            RETRAIN_REASON_TAG: f"{failure.asset_key.to_user_string()}:{failure.check_name}",
            "nightjar/triggered_by_run": failure.run_id,
        },
    )
    return request, f"requested {job_name}"


def _monitored_model(failure: FailedCheck, jobs_by_model: Mapping[str, TrainingJob]) -> str | None:
    """The model whose monitoring check this is, or None for any other check."""
    path = failure.asset_key.path
    if len(path) == 2 and path[0] in jobs_by_model and (path[1], failure.check_name) in RETRAIN_CHECKS:
        return path[0]
    return None
