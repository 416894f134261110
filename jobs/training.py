"""Per model: a training job (training set -> model, judged by the gate -> champion) and its weekly schedule."""

import dagster as dg

from assets.ml.spec import ModelSpec
from resources.settings import Settings

TRAINING_TAG = "nightjar/training"


def training_job_name(spec: ModelSpec) -> str:
    return f"train_{spec.name}"


def build_training_job(spec: ModelSpec, settings: Settings) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        name=training_job_name(spec),
        # The model's checks (the gate) come with it; the champion is materialized with its default config (auto).
        selection=dg.AssetSelection.assets([spec.name, "training_set"], [spec.name, "model"], [spec.name, "champion"]),
        # One training run per model at a time (dagster.yaml limits this tag): runs share the training-set table.
        tags={TRAINING_TAG: spec.name},
        description=f"Train a new version of {spec.name} (none when the data and spec are those of the champion), "
        "register it in MLflow as challenger, judge it with the champion/challenger gate, then decide which version "
        f"serves ({spec.name}/champion, policy: {spec.promotion.policy}).",
    )
    schedule = dg.ScheduleDefinition(
        name=f"{training_job_name(spec)}_weekly",
        job=job,
        cron_schedule=settings.training_cron,
        execution_timezone=settings.timezone,
        description=f"Retrain {spec.name} on its newest labeled window; the gate judges it, the champion asset "
        "decides whether it serves.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return job, schedule
