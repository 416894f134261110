"""Schedules ask for the partitions a user expects: yesterday for the nightly chain; yesterday's drift and the
quality of the day whose labels have just arrived for monitoring."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg


def test_nightly_schedule_runs_yesterday(defs, instance):
    schedule = defs.resolve_schedule_def("nightly_schedule")
    # The instance: the loan example lands its reviews (late days are asked for). Used in a `with`, as Dagster's
    # daemon uses it: the context opens its own instance from the given one's ref and closes it on exit; left open,
    # that instance stays Dagster's current one for the process (a definitions load after it is collected fails).
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 3, 10, 2, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    ) as context:
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


def test_nightly_schedule_asks_again_for_recent_days_whose_landing_file_had_not_arrived(nightjar_env, instance):
    """A landing file not complete (or absent) when its day ran leaves the raw partition unmaterialized; each tick
    asks again for such days among the last week, with a run key of its own, until the file lands."""
    from assets.partitions import build_daily_partitions
    from jobs.nightly import LATE_ARRIVAL_TAG, build_nightly_jobs

    key = dg.AssetKey(["raw", "trips"])
    jobs, schedule = build_nightly_jobs(nightjar_env, [key])

    @dg.asset(key=key, group_name="raw", partitions_def=build_daily_partitions(nightjar_env))
    def trips() -> None: ...

    repository = dg.Definitions(assets=[trips], jobs=jobs, schedules=[schedule]).get_repository_def()
    for day in ("2026-03-02", "2026-03-03", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day))
    with dg.build_schedule_context(  # in a `with`: see test_nightly_schedule_runs_yesterday
        instance=instance, scheduled_execution_time=datetime(2026, 3, 10, 2, 30, tzinfo=UTC), repository_def=repository
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
        assert [r.partition_key for r in requests] == ["2026-03-09", "2026-03-04"]
        late = requests[1]
        assert late.tags[LATE_ARRIVAL_TAG] == "true" and late.run_key != "2026-03-04"

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition="2026-03-04"))
        assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-03-09"]


def test_a_spec_sets_its_own_label_delay_for_the_quality_day(tmp_path, monkeypatch):
    """The label delay is the model's: a spec's monitoring.label_delay_days wins over NIGHTJAR_LABEL_DELAY_DAYS."""
    import yaml

    from definitions import build_definitions
    from resources.settings import MODEL_SPECS_DIR
    from tests.stores import point_stores_at

    raw = yaml.safe_load((MODEL_SPECS_DIR / "loan_default.yaml").read_text())
    raw.setdefault("monitoring", {})["label_delay_days"] = 1
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "loan_default.yaml").write_text(yaml.safe_dump(raw))
    settings = point_stores_at(tmp_path, monkeypatch, NIGHTJAR_MODEL_SPECS_DIR=str(specs))
    assert settings.label_delay_days != 1
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("monitor_loan_default_risk_daily")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 6, 0, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    requests = {tuple(r.asset_selection[0].path): r.partition_key for r in schedule.evaluate_tick(context).run_requests}
    assert requests == {("loan_default_risk", "drift"): "2026-03-09", ("loan_default_risk", "quality"): "2026-03-08"}
    assert "(1 days earlier)" in schedule.description
