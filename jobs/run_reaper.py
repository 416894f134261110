"""The sensor that heals crashed runs while the daemon runs (`make dev`, servers).

A run whose process was killed (kill -9, out of memory, a reboot) stays STARTED in Dagster's records. It blocks
nothing (the warehouse's writer lock dies with it), and the next warehouse step of any run marks it failed; while
the daemon runs, this sensor does so within a minute, even when no run follows. Dagster's run monitoring cannot
see it with the DefaultRunLauncher. Runs whose process is gone are marked failed (the run-failure alert then
reports them); the sensor never requests runs.
"""

from __future__ import annotations

import dagster as dg

from resources.instance import reap_dead_runs


@dg.sensor(
    name="run_reaper_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs whose process died (kill -9, out of memory): Dagster's run monitoring "
    "cannot tell with the default run launcher.",
)
def run_reaper_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance, log=context.log)
    return dg.SkipReason(f"marked failed: {', '.join(reaped)}" if reaped else "no dead runs")
