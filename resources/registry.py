"""The model registry: MLflow, wrapped as a resource so every asset, check and job reaches it the same way.

MLflow is the system of record for model versions; aliases carry their state (``champion`` serves,
``challenger`` waits for the gate or a person). MLflow keeps no history of alias moves, so every move made
through :meth:`ModelRegistry.move_alias` also leaves a record on the registered model's tags (the caller adds the
warehouse audit row). mlflow is imported inside the methods: it costs over a second at definitions load.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from pydantic import Field

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        # A version number, not an alias: what was resolved once is what gets loaded, even if the alias moves.
        return f"models:/{self.name}/{self.version}"


class ModelRegistry(dg.ConfigurableResource):
    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///... locally, http(s)://... for a server)")
    artifact_root: str | None = Field(
        default=None, description="Where new experiments keep artifacts; None lets the tracking server decide"
    )

    def client(self):
        import mlflow
        from mlflow import MlflowClient

        # Download progress bars would land in every run's logs.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The experiment for a model, created on first use with the configured artifact root."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name, artifact_location=self.artifact_root)

    def version(self, name: str, version: int | str) -> VersionInfo:
        mv = self.client().get_model_version(name, str(version))
        return VersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, tags=dict(mv.tags))

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return VersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, tags=dict(mv.tags))

    def set_version_tags(self, name: str, version: int, tags: dict[str, Any]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, str(value))

    def load(self, info: VersionInfo):
        """The pyfunc model of a version (predicts default probabilities: logged with predict_proba)."""
        import mlflow.pyfunc

        self.client()
        # suppress_warnings: skips re-checking the pip requirements on every load (0.5 s -> 0.1 s a load).
        return mlflow.pyfunc.load_model(info.uri, suppress_warnings=True)

    def move_alias(self, name: str, alias: str, version: int, record: dict[str, Any]) -> None:
        """Point ``alias`` at ``version`` and keep ``record`` (who, why, from, to, metrics) on the model's tags."""
        client = self.client()
        client.set_registered_model_alias(name, alias, str(version))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        client.set_registered_model_tag(name, f"audit.{alias}.{stamp}", json.dumps(record, default=str))
        client.set_model_version_tag(name, str(version), f"{alias}_since", stamp)

    def remove_alias(self, name: str, alias: str) -> None:
        self.client().delete_registered_model_alias(name, alias)

    def audit_trail(self, name: str) -> list[dict[str, Any]]:
        """The alias moves recorded on the registered model, oldest first."""
        model = self.client().get_registered_model(name)
        audit = [(key.rsplit(".", 1)[1], value) for key, value in model.tags.items() if key.startswith("audit.")]
        return [json.loads(value) for _, value in sorted(audit)]  # by time stamp, whatever the alias

    def ui_link(self, run_id: str, experiment_id: str) -> str:
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"{self.tracking_uri} experiment {experiment_id} run {run_id}"
