"""What a registered version was trained on, recorded as tags on the version (and its MLflow run), and the check
that keeps training from registering the same thing twice (no churn).

A version is registered only when there is something new to learn: :func:`training_fingerprint` hashes what a
version would learn from (the training set's content and the spec's learning fields), and
:func:`version_trained_on` finds the champion or waiting challenger that was trained on exactly that.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import TYPE_CHECKING

from assets.ml.spec import ModelSpec
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionInfo
from resources.settings import redact_url

if TYPE_CHECKING:
    import pandas as pd

# Tags on every registered version (and its MLflow run), written by the model asset.
FINGERPRINT_TAG = "training.fingerprint"  # sha256 of the training set's content hash and the spec's learning fields
LABEL_FIRST_DAY_TAG = "training.label_first_day"  # the oldest label date (spec.label_date) the version learned from
LABEL_LAST_DAY_TAG = "training.label_last_day"  # the newest
# With review.labels_from_reviews on: how many training rows took their label from a reviewer's decision. The
# fingerprint needs nothing more: those rows are in the content hash like any other (a changed review, a new
# reviewed case or another after_days changes it).
REVIEW_LABELED_TAG = "training.review_labeled_rows"
DAGSTER_RUN_TAG = "dagster_run_id"  # the Dagster run that trained it (assets.ml.recovery reads it)
# The spec fields that change what a model learns; promotion, decision bands and monitoring do not.
LEARNING_FIELDS = frozenset(
    {"training_mart", "entity_id", "timestamp", "label_date", "target", "features", "estimator", "evaluation"}
)


def training_fingerprint(frame: pd.DataFrame, spec: ModelSpec) -> str:
    """What a version learns from, as one sha256: the training set's content hash (rows sorted by timestamp, then
    entity id, so the order they were read in does not matter; see :func:`assets.ml.training.content_hash`, which
    also makes the ``data_hash`` tag) and the spec's :data:`LEARNING_FIELDS` (features, estimator, window...)."""
    from assets.ml.training import content_hash

    ordered = frame.sort_values([spec.timestamp, spec.entity_id], kind="mergesort")
    # The task changes what is learnt from the same columns (a 0/1 target as two classes or as a number); binary
    # specs leave it out, so the fingerprints of versions trained before tasks existed stay the same.
    fields = set(LEARNING_FIELDS) | ({"task"} if spec.task != "binary" else set())
    learning = spec.model_dump(mode="json", by_alias=True, include=fields)
    payload = json.dumps({"data_hash": content_hash(ordered, spec), "spec": learning}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def tagged_day(version: VersionInfo | None, tag: str) -> date | None:
    value = version.tags.get(tag) if version is not None else None
    return date.fromisoformat(value) if value else None


def version_trained_on(registry: ModelRegistry, spec: ModelSpec, fingerprint: str) -> tuple[str, VersionInfo] | None:
    """(alias, version): the champion, else the waiting challenger, trained on exactly ``fingerprint``; None when
    neither was (there is something new to learn)."""
    for alias in (CHAMPION, CHALLENGER):
        version = registry.by_alias(spec.name, alias)
        if version is not None and version.tags.get(FINGERPRINT_TAG) == fingerprint:
            return alias, version
    return None


def dagster_run_url(dagster_url: str, run_id: str) -> str:
    """The Dagster UI's page of a run, under ``dagster_url`` (settings: ``NIGHTJAR_DAGSTER_URL``), without any
    user:password the setting may hold: the link goes into MLflow run descriptions."""
    return redact_url(f"{dagster_url.rstrip('/')}/runs/{run_id}")


def git_commit() -> str:
    """The git commit of the code that trained, when no code version is configured (a deployed image sets one)."""
    import subprocess

    from resources.settings import PROJECT_ROOT

    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"
