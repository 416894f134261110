"""Stand-ins for the MLflow registry resource, for tests about what happens around it (retries, monitoring) that
need no MLflow at all: a registry with no versions, one whose server fails once, one where every version exists.

They are ``ModelRegistry`` subclasses, so an asset takes them as its ``registry`` resource; the tracking URI they
are given is never opened. Tests of the registry itself use a real MLflow store (tests/ml_lab.py).
"""

from __future__ import annotations

from types import SimpleNamespace

from resources.registry import ModelRegistry, RegistryError, VersionInfo

# Calls FailsOnceRegistry answered, by tracking URI (a resource is built again for each attempt of a step, so the
# count cannot live on the instance): give each test its own URI.
_calls: dict[str, int] = {}


class NoVersionsRegistry(ModelRegistry):
    """A registry with no versions at all: every alias resolves to nothing."""

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        return None


class FailsOnceRegistry(ModelRegistry):
    """A registry whose server fails once (a transient RegistryError), then answers that there is no version."""

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        _calls[self.tracking_uri] = _calls.get(self.tracking_uri, 0) + 1
        if _calls[self.tracking_uri] == 1:
            raise RegistryError(
                "MLflow registry: could not resolve alias: server busy [TEMPORARILY_UNAVAILABLE]", transient=True
            )
        return None

    def calls(self) -> int:
        """How many times the registry at this tracking URI was asked, over every attempt of the step."""
        return _calls.get(self.tracking_uri, 0)


class EveryVersionRegistry(ModelRegistry):
    """Every version exists (validated at ROC AUC 0.8, on run ``run-<version>``); metrics and artifacts logged to
    it go nowhere."""

    def version(self, name: str, version: int | str) -> VersionInfo:
        return VersionInfo(name=name, version=int(version), run_id=f"run-{version}", tags={"metric.roc_auc": "0.8"})

    def client(self):
        class Client:
            def log_metric(self, *args, **kwargs) -> None:
                pass

            def log_artifact(self, *args, **kwargs) -> None:  # the report's MLflow copy
                pass

            def get_run(self, run_id: str):
                return SimpleNamespace(info=SimpleNamespace(experiment_id="1"))

        return Client()
