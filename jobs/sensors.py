"""Sensors that speak up when something needs a person (or a retraining): failed runs, failed asset checks, and
predictions still missing after their due hour. Every alert goes through the ``alerts`` resource
(:class:`resources.alerts.AlertsResource`). One file per sensor (``run_failure_sensor.py``,
``monitoring_checks_sensor.py``, ``missing_predictions_sensor.py``); this module builds the three for the models.

What a tick did shows in the UI's tick list. A tick that sent alerts but launched no run is "skipped" to Dagster
(its SkipReason is the text the list shows), so that text starts with ``alerted:`` and names what was alerted; a
tick that requested a training run shows the run, and logs the same summary (the tick's logs). The run failure
sensor follows Dagster's run-status convention: a tick that acted on a failed run is a success naming that run.

Their settings come from ``Settings`` (``retrain_cooldown_hours``: at most one retraining per model per window;
``predictions_due_hour``: the hour, in the partitions' timezone, by which yesterday's predictions must exist; the
predictions assets declare the same hour as their freshness policy, which the UI shows as Freshness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg

from assets.ml.spec import ModelSpec
from jobs.missing_predictions_sensor import build_missing_predictions_sensor
from jobs.monitoring_checks_sensor import build_monitoring_checks_sensor
from jobs.retraining import TrainingJob
from jobs.run_failure_sensor import build_run_failure_sensor
from jobs.sensor_env import Clock, utc_now
from jobs.training import training_job_name
from resources.settings import Settings


def build_sensors(
    specs: Sequence[ModelSpec],
    training_jobs: Mapping[str, TrainingJob],
    settings: Settings,
    *,
    clock: Clock = utc_now,
) -> list[dg.SensorDefinition]:
    """The platform's sensors, for these models. ``training_jobs`` maps a model name to its training job.

    ``clock`` returns the current time (timezone-aware); it exists for tests.
    """
    jobs_by_model = _training_jobs_by_model(specs, training_jobs)
    return [
        build_run_failure_sensor(),
        build_monitoring_checks_sensor(jobs_by_model, timedelta(hours=settings.retrain_cooldown_hours), clock),
        build_missing_predictions_sensor(
            specs, settings.predictions_due_hour, settings.timezone, clock, last_partition=settings.end_date
        ),
    ]


def _training_jobs_by_model(specs: Sequence[ModelSpec], training_jobs: Mapping[str, TrainingJob]) -> dict[str, Any]:
    missing = [spec.name for spec in specs if spec.name not in training_jobs]
    if missing:
        raise ValueError(
            f"build_sensors: no training job for model(s) {missing} (training_jobs has {sorted(training_jobs)})"
        )
    wrong = {s.name: training_jobs[s.name].name for s in specs if training_jobs[s.name].name != training_job_name(s)}
    if wrong:
        raise ValueError(f"build_sensors: training jobs must be named train_<model>, got {wrong}")
    return {spec.name: training_jobs[spec.name] for spec in specs}
