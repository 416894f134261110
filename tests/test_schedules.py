"""Schedules ask for the partitions a user expects: yesterday for the nightly chain; yesterday's drift and the
quality of the day whose labels have just arrived for monitoring."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg


def test_nightly_schedule_runs_yesterday(defs):
    schedule = defs.resolve_schedule_def("nightly_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 2, 30, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-03-09"
    assert schedule.job_name == "nightly"


def test_monitoring_schedule_checks_drift_of_yesterday_and_quality_once_labels_are_in(defs, nightjar_env):
    schedule = defs.resolve_schedule_def("monitor_loan_default_risk_daily")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 6, 0, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    requests = {tuple(r.asset_selection[0].path): r.partition_key for r in schedule.evaluate_tick(context).run_requests}
    labeled_day = f"2026-03-{9 - nightjar_env.label_delay_days:02d}"
    assert requests == {("loan_default_risk", "drift"): "2026-03-09", ("loan_default_risk", "quality"): labeled_day}
