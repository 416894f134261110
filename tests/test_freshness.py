"""Due times and automation as the Definitions declare them: each model's predictions carry the due hour of the
missing-predictions alert as a Dagster freshness policy (the UI's Freshness), and the chain after the nightly run
declares no automation condition, since schedules run it (jobs/nightly.py says why)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import dagster as dg

from jobs.nightly import NIGHTLY_SCHEDULE_NAME
from resources.settings import Settings

MISSING_PREDICTIONS_SENSOR = "missing_predictions_sensor"


def _specs(defs: dg.Definitions) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for spec in defs.resolve_all_asset_specs()}


def _predictions_keys(specs: dict[dg.AssetKey, dg.AssetSpec]) -> list[dg.AssetKey]:
    keys = [key for key in specs if key.path[-1] == "predictions"]
    assert keys, "no <model>/predictions asset in the definitions"
    return keys


def test_predictions_are_due_by_the_hour_the_sensor_alerts(defs: dg.Definitions, nightjar_env: Settings):
    specs = _specs(defs)
    due = nightjar_env.predictions_due_hour
    for key in _predictions_keys(specs):
        policy = specs[key].freshness_policy
        assert policy == dg.FreshnessPolicy.cron(
            deadline_cron=f"0 {due} * * *", lower_bound_delta=timedelta(hours=due), timezone=nightjar_env.timezone
        ), key
    # The sensor that alerts on the same due time is still there: Dagster's freshness shows, nightjar's alerts.
    sensor = defs.resolve_sensor_def(MISSING_PREDICTIONS_SENSOR)
    assert f"From {due:02d}:00 ({nightjar_env.timezone})" in (sensor.description or "")


def test_the_due_hour_and_timezone_come_from_the_settings(nightjar_env: Settings):
    from definitions import build_definitions

    settings = dataclasses.replace(nightjar_env, predictions_due_hour=9, timezone="Europe/Paris")
    specs = _specs(build_definitions(settings))
    for key in _predictions_keys(specs):
        policy = specs[key].freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy)
        # Built since local midnight (when yesterday's partition begins to exist), due at 09:00 Paris time.
        assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == (
            "0 9 * * *",
            timedelta(hours=9),
            "Europe/Paris",
        )


def test_a_due_hour_of_midnight_gives_a_valid_policy():
    from assets.ml.inference_assets import predictions_freshness_policy

    policy = predictions_freshness_policy(0, "UTC")
    assert (policy.deadline_cron, policy.lower_bound_delta) == ("0 0 * * *", timedelta(days=1))


def test_the_chain_after_the_nightly_run_declares_no_automation_condition(defs: dg.Definitions):
    """Schedules run it: a declared condition would launch duplicates of what they run."""
    specs = _specs(defs)
    downstream = [key for key, spec in specs.items() if spec.group_name in ("inference", "monitoring")]
    assert len(downstream) >= 3
    assert {key: specs[key].automation_condition for key in downstream if specs[key].automation_condition} == {}
    # What runs them instead: the nightly schedule the inference group (predictions, landed reviews, final
    # decisions), each model's monitoring schedule its drift and quality.
    graph = defs.resolve_asset_graph()
    for key in downstream:
        nightly = specs[key].group_name == "inference"
        name = NIGHTLY_SCHEDULE_NAME if nightly else f"monitor_{key.path[0]}_daily"
        job = defs.resolve_schedule_def(name).job
        assert key in job.selection.resolve(graph), (key, name)
