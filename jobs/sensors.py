"""Sensors that speak up when something needs a person (or a retraining): failed runs, failed asset checks, and
predictions still missing after their due hour. Every alert goes through the ``alerts`` resource
(:class:`resources.alerts.AlertsResource`).

What a tick did shows in the UI's tick list. A tick that sent alerts but launched no run is "skipped" to Dagster
(its SkipReason is the text the list shows), so that text starts with ``alerted:`` and names what was alerted; a
tick that requested a training run shows the run, and logs the same summary (the tick's logs). The run failure
sensor follows Dagster's run-status convention: a tick that acted on a failed run is a success naming that run.

Their settings come from ``Settings`` (``retrain_cooldown_hours``: at most one retraining per model per window;
``predictions_due_hour``: the hour, in the partitions' timezone, by which yesterday's predictions must exist).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from assets.ml.spec import ModelSpec
from assets.ml.training_assets import RETRAIN_REASON_TAG
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from jobs.training import training_job_name
from resources.alerts import AlertsResource
from resources.settings import Settings

# (asset key suffix, check name) of the monitoring checks whose ERROR failure means the model no longer fits its
# data. Listed, not inferred from the asset key: a retraining is expensive, and other checks may be added to
# these assets later without meaning "retrain".
RETRAIN_CHECKS = frozenset(
    {
        ("drift", "data_drift"),
        ("drift", "score_drift"),
        ("quality", "auc_drop"),
        ("quality", "calibration"),
    }
)

# Check results are read per finished run (see `_finished_runs`); all three ends count, because in Dagster OSS a
# failed check does not fail its run, and a run that failed or was canceled later may still hold failed checks.
RUN_END_EVENTS = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED)
RUNS_PER_TICK = 100  # per kind of run end; the rest wait for the next tick
FIRST_TICK_LOOKBACK = timedelta(hours=24)  # how far back the checks sensor reads when it is first turned on
ALERTED_DAYS_KEPT = 7  # how long the predictions sensor remembers what it alerted (keeps its cursor small)
NAMED_PER_TICK = 5  # failed checks named in a tick's message; the alerts themselves name every one
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_TAGS = (RANGE_START_TAG, RANGE_END_TAG)

# What `dg.define_asset_job` returns (its class is not exported by dagster) or a `dg.JobDefinition`.
TrainingJob = Any
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock. Tests pass their own ``clock`` to :func:`build_sensors` instead."""
    return datetime.now(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"environment variable NIGHTJAR_TIMEZONE={name!r} is not a known time zone") from None


# --- the factory -------------------------------------------------------------------------------------------------


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
        build_missing_predictions_sensor(specs, settings.predictions_due_hour, settings.timezone, clock),
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


def _alert_severity(check_severity: dg.AssetCheckSeverity) -> str:
    return "error" if check_severity == dg.AssetCheckSeverity.ERROR else "warning"


# --- a. failed runs ----------------------------------------------------------------------------------------------


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
        partition = context.partition_key or _run_partition(run.tags)
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


def _run_partition(tags: Mapping[str, str]) -> str | None:
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    start, end = (tags.get(t) for t in PARTITION_RANGE_TAGS)
    return f"{start}...{end}" if start and end else None


# --- b. failed asset checks, and retraining on failed monitoring checks --------------------------------------------


@dataclass(frozen=True)
class FailedCheck:
    asset_key: dg.AssetKey
    check_name: str
    severity: dg.AssetCheckSeverity
    description: str | None
    partition: str | None
    run_id: str
    job_name: str


@dataclass
class ChecksCursor:
    """The checks sensor's memory, kept as JSON in its cursor.

    ``after_storage_id``: per kind of run end, the last run-status event already read. ``last_retrain``: per model,
    when (ISO UTC) this sensor last requested its training job: the cool-down, so a model whose checks keep failing
    cannot trigger a retraining loop.
    """

    after_storage_id: dict[str, int] = field(default_factory=dict)
    last_retrain: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None, sensor_name: str) -> ChecksCursor | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(after_storage_id=dict(data["after_storage_id"]), last_retrain=dict(data["last_retrain"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"sensor {sensor_name}: cursor {raw!r} is not what this sensor writes; "
                "clear it in the UI to start from now"
            ) from None

    def dump(self) -> str:
        data = {"after_storage_id": self.after_storage_id, "last_retrain": self.last_retrain}
        return json.dumps(data, sort_keys=True)


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
            request, decision = _retrain_decision(failure, jobs_by_model, state, cooldown, now, requested)
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
            partition=e.partition or _run_partition(tags),
            run_id=run_id,
            job_name=run.job_name if run else "?",
        )
        for e in failed
    ]


def _retrain_decision(
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


# --- c. predictions missing after their due hour -------------------------------------------------------------------


def build_missing_predictions_sensor(
    specs: Sequence[ModelSpec], due_hour: int, timezone_name: str, clock: Clock = utc_now
) -> dg.SensorDefinition:
    zone = _zone(timezone_name)

    @dg.sensor(
        name="missing_predictions_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"From {due_hour:02d}:00 ({timezone_name}) on, alerts once per model and day when yesterday's "
        "partition of the model's predictions has not been materialized.",
    )
    def missing_predictions_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertsResource
    ) -> dg.SensorResult | dg.SkipReason:
        local_now = clock().astimezone(zone)
        if local_now.hour < due_hour:
            return dg.SkipReason(f"before the due hour {due_hour:02d}:00 {timezone_name}")
        day = (local_now.date() - timedelta(days=1)).isoformat()
        alerted = _parse_alerted(context.cursor)
        done = set(alerted.get(day, []))
        missing = [s.name for s in specs if s.name not in done and not _has_partition(context.instance, s.name, day)]
        for name in missing:
            alerts.send(
                title=f"Predictions missing: {name} {day}",
                severity="error",
                text=f"partition {day} of {name}/predictions was not materialized by {due_hour:02d}:00 {timezone_name}",
                details={
                    "model": name,
                    "asset_key": f"{name}/predictions",
                    "partition": day,
                    "due_hour": due_hour,
                    "timezone": timezone_name,
                },
                log=context.log,
            )
        alerted[day] = sorted(done | set(missing))
        oldest = (local_now.date() - timedelta(days=ALERTED_DAYS_KEPT)).isoformat()
        cursor = json.dumps({d: names for d, names in alerted.items() if d >= oldest}, sort_keys=True)
        skip = (
            f"alerted: predictions for {day} missing: {', '.join(missing)}"
            if missing
            else f"predictions for {day}: every model materialized or already alerted"
        )
        context.log.info(skip)
        return dg.SensorResult(skip_reason=skip, cursor=cursor)

    return missing_predictions_sensor


def _parse_alerted(raw: str | None) -> dict[str, list[str]]:
    """Day -> models already alerted for it."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError(f"sensor missing_predictions_sensor: cursor {raw!r} is not JSON; clear it in the UI") from None
    if not isinstance(data, dict):
        raise ValueError(f"sensor missing_predictions_sensor: cursor {raw!r} is not a mapping; clear it in the UI")
    return {str(day): list(names) for day, names in data.items()}


def _has_partition(instance: dg.DagsterInstance, model: str, day: str) -> bool:
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey([model, "predictions"]), asset_partitions=[day])
    return bool(instance.fetch_materializations(records_filter, limit=1).records)
