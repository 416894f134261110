"""The sensor that alerts, once per model and day, when yesterday's predictions are still missing after their
due hour (``predictions_due_hour``, in the partitions' time zone).

The same due time is each ``<model>/predictions`` asset's Dagster freshness policy
(:func:`assets.ml.inference_assets.predictions_freshness_policy`): the UI shows it as the asset's Freshness. It does
not replace this sensor. Dagster's cron freshness reads the asset's latest materialization of any partition (a
backfill of an older day after midnight passes it), while this checks yesterday's partition itself; and open-source
Dagster ships no freshness alert (alert policies are Dagster+), while this one goes to nightjar's webhook through
``AlertsResource``, once per model and day, and stays quiet after the partitions' last day (NIGHTJAR_END_DATE)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta

import dagster as dg

from assets.ml.spec import ModelSpec
from jobs.sensor_env import Clock, utc_now, zone
from resources.alerts import AlertsResource

ALERTED_DAYS_KEPT = 7  # how long the predictions sensor remembers what it alerted (keeps its cursor small)


def build_missing_predictions_sensor(
    specs: Sequence[ModelSpec],
    due_hour: int,
    timezone_name: str,
    clock: Clock = utc_now,
    last_partition: date | None = None,
) -> dg.SensorDefinition:
    """``last_partition``: the partitions' last day when they end before yesterday (NIGHTJAR_END_DATE, a past
    window): a day after it has no partition, so nothing is missing."""
    local_zone = zone(timezone_name)

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
        local_now = clock().astimezone(local_zone)
        if local_now.hour < due_hour:
            return dg.SkipReason(f"before the due hour {due_hour:02d}:00 {timezone_name}")
        yesterday = local_now.date() - timedelta(days=1)
        if last_partition is not None and yesterday > last_partition:
            return dg.SkipReason(f"the partitions end on {last_partition} (NIGHTJAR_END_DATE): no day is due")
        day = yesterday.isoformat()
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
