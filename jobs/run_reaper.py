"""The sensor that heals crashed runs while the daemon runs (`make dev`, servers).

A run whose process was killed (kill -9, out of memory, a reboot) stays STARTED and keeps its `warehouse` pool
slot, so every later run waits for ever. Dagster's run monitoring cannot see that with the DefaultRunLauncher,
so this sensor asks `resources.instance.reap_dead_runs` every minute: runs whose processes are all gone are
marked failed (the run-failure alert then reports them) and their slots freed. It never requests runs.
"""

from __future__ import annotations

import dagster as dg

from resources.instance import reap_dead_runs


@dg.sensor(
    name="run_reaper_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs whose process died (kill -9, out of memory) and frees the concurrency-pool "
    "slots they held, so later runs do not wait for ever.",
)
def run_reaper_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance, log=context.log)
    return dg.SkipReason(f"marked failed and freed: {', '.join(reaped)}" if reaped else "no dead runs")
