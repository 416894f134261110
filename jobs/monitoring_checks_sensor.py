"""The sensor that alerts on every failed asset check of finished runs, and requests a model's training job when
one of its monitoring checks fails at ERROR (the decision: jobs/retraining.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg

from jobs.checks_cursor import ChecksCursor
from jobs.retraining import FailedCheck, TrainingJob, retrain_decision
from jobs.sensor_env import Clock, run_partition, utc_now
from resources.alerts import AlertsResource

# Check results are read per finished run (see `_finished_runs`); all three ends count, because in Dagster OSS a
# failed check does not fail its run, and a run that failed or was canceled later may still hold failed checks.
RUN_END_EVENTS = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED)
RUNS_PER_TICK = 100  # per kind of run end; the rest wait for the next tick
FIRST_TICK_LOOKBACK = timedelta(hours=24)  # how far back the checks sensor reads when it is first turned on
NAMED_PER_TICK = 5  # failed checks named in a tick's message; the alerts themselves name every one


def build_monitoring_checks_sensor(
    jobs_by_model: Mapping[str, TrainingJob], cooldown: timedelta, clock: Clock = utc_now
) -> dg.SensorDefinition:
    @dg.sensor(
        name="monitoring_checks_sensor",
        jobs=list(jobs_by_model.values()),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts on every failed asset check of finished runs (a failed check does not fail its run, "
        "so the run failure sensor never hears of it), and requests the model's training job when a monitoring "
        f"check (drift, quality) fails at ERROR, at most once per model per {cooldown.total_seconds() / 3600:g} h "
        "(that training refuses to run without labels the champion never saw).",
    )
    def monitoring_checks_sensor(context: dg.SensorEvaluationContext, alerts: AlertsResource) -> dg.SensorResult:
        state = ChecksCursor.parse(context.cursor, "monitoring_checks_sensor")
        if state is None:
            # First tick: look back one day only, so turning the sensor on (or `dagster dev` after `make run`)
            # sees last night's checks but does not replay, and retrain on, older history.
            lookback = clock() - FIRST_TICK_LOOKBACK
            state = ChecksCursor(after_storage_id=_run_end_ids_before(context.instance, lookback.timestamp()))
        run_ids = _finished_runs(context.instance, state)
        if not run_ids:
            return dg.SensorResult(skip_reason="no run finished since the last evaluation", cursor=state.dump())
        now = clock()
        requests, requested = [], set()
        failures = [f for run_id in run_ids for f in _failed_checks(context.instance, run_id)]
        for failure in failures:
            request, decision = retrain_decision(failure, jobs_by_model, state, cooldown, now, requested)
            if request is not None:
                requests.append(request)
            _send_check_alert(alerts, failure, decision, context.log)
        summary = _checks_tick_summary(len(run_ids), failures, requests)
        context.log.info(summary)
        # A SensorResult with run requests cannot carry a skip reason: that tick shows its runs instead.
        return dg.SensorResult(run_requests=requests, skip_reason=None if requests else summary, cursor=state.dump())

    return monitoring_checks_sensor


def _checks_tick_summary(runs: int, failures: Sequence[FailedCheck], requests: Sequence[dg.RunRequest]) -> str:
    """What a tick of the checks sensor did, for the UI's tick list: ``alerted: ...`` when it sent alerts."""
    if not failures:
        return f"{runs} finished run(s), no failed check: nothing alerted"
    named = [
        f"{f.asset_key.to_user_string()} {f.check_name}" + (f" ({f.partition})" if f.partition else "")
        for f in failures[:NAMED_PER_TICK]
    ]
    more = f" and {len(failures) - NAMED_PER_TICK} more" if len(failures) > NAMED_PER_TICK else ""
    retraining = ("requested " + ", ".join(r.job_name for r in requests if r.job_name)) if requests else "no retraining"
    return (
        f"alerted: {len(failures)} failed check(s): {'; '.join(named)}{more} "
        f"(from {runs} finished run(s)); {retraining}"
    )


def _run_end_ids_before(instance: dg.DagsterInstance, timestamp: float) -> dict[str, int]:
    """Per kind of run end, the storage id of the last one before ``timestamp`` (0: none)."""
    latest = {}
    for event_type in RUN_END_EVENTS:
        records = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, before_timestamp=timestamp), limit=1, ascending=False
        ).records
        latest[event_type.value] = records[0].storage_id if records else 0
    return latest


def _finished_runs(instance: dg.DagsterInstance, state: ChecksCursor) -> list[str]:
    """Ids of the runs that finished since the cursor, oldest first; advances the cursor past them.

    Why runs and not the check evaluation events themselves: ``DagsterInstance.get_event_records`` (the only
    instance-wide query for ASSET_CHECK_EVALUATION) is deprecated, and on the default SQLite storage (the local
    setup) it refuses a storage-id cursor for check events. Run status changes have a public, cursor-able query on
    every storage, and a run's check results are all written before it ends. Runless check results (reported from
    outside a run) are not seen.
    """
    found: list[tuple[int, str]] = []
    for event_type in RUN_END_EVENTS:
        after = state.after_storage_id.get(event_type.value, 0)
        records = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
            limit=RUNS_PER_TICK,
            ascending=True,
        ).records
        if records:
            state.after_storage_id[event_type.value] = records[-1].storage_id
        found += [(r.storage_id, r.run_id) for r in records]
    return [run_id for _, run_id in sorted(found)]


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[FailedCheck]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.asset_check_evaluation_data for r in records]
    failed = [e for e in evaluations if not e.passed]
    if not failed:
        return []
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run else {}
    return [
        FailedCheck(
            asset_key=e.asset_key,
            check_name=e.check_name,
            severity=e.severity,
            description=e.description,
            # A check of a partitioned asset records no partition of its own in a partitioned run: use the run's.
            partition=e.partition or run_partition(tags),
            run_id=run_id,
            job_name=run.job_name if run else "?",
        )
        for e in failed
    ]


def _alert_severity(check_severity: dg.AssetCheckSeverity) -> str:
    return "error" if check_severity == dg.AssetCheckSeverity.ERROR else "warning"


def _send_check_alert(alerts: AlertsResource, failure: FailedCheck, retraining: str | None, log: Any) -> None:
    asset = failure.asset_key.to_user_string()
    where = f" (partition {failure.partition})" if failure.partition else ""
    text = (
        f"{failure.severity.value}: {failure.description or 'no description'}\n"
        f"run {failure.run_id} of {failure.job_name}"
    )
    if retraining:
        text += f"\nretraining: {retraining}"
    alerts.send(
        title=f"Check failed: {asset} {failure.check_name}{where}",
        severity=_alert_severity(failure.severity),
        text=text,
        details={
            "asset_key": asset,
            "check_name": failure.check_name,
            "severity": failure.severity.value,
            "description": failure.description,
            "partition": failure.partition,
            "run_id": failure.run_id,
            "job_name": failure.job_name,
            "retraining": retraining,
        },
        log=log,
    )
