"""The sensor that alerts on every failed run: job, run, partition and the error of each failed step."""

from __future__ import annotations

from typing import Any

import dagster as dg

from jobs.sensor_env import run_partition
from resources.alerts import AlertsResource


def build_run_failure_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts (severity error) on every failed run of this code location: job, run, failed steps.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
        run = context.dagster_run
        failures = _step_failures(context)
        if failures:
            text = "\n".join(f"step {step}: {error}" for step, error in failures.items())
        else:  # the run failed outside any step (launch, resources, a killed worker)
            text = _run_failure_message(context.failure_event)
        partition = context.partition_key or run_partition(run.tags)
        alerts.send(
            title=f"Run failed: {run.job_name}",
            severity="error",
            text=f"run {run.run_id}" + (f" (partition {partition})" if partition else "") + f"\n{text}",
            details={"job_name": run.job_name, "run_id": run.run_id, "partition": partition, "failed_steps": failures},
            log=context.log,
        )

    return alert_on_run_failure


def _step_failures(context: dg.RunFailureSensorContext) -> dict[str, str]:
    """Failed step -> the error that failed it (the user's exception, not Dagster's wrapper around it)."""
    failures = {}
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error
        failures[event.step_key or "?"] = _root_message(error) if error else (event.message or "no error recorded")
    return failures


def _run_failure_message(event: dg.DagsterEvent) -> str:
    error = getattr(event.event_specific_data, "error", None)  # JobFailureData.error, when the run recorded one
    return _root_message(error) if error else (event.message or "no error recorded")


def _root_message(error: Any) -> str:
    """The innermost cause's message: ``ValueError: ...`` rather than ``DagsterExecutionStepExecutionError``."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
