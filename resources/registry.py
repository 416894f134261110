"""The model registry: MLflow, wrapped as a resource so every asset, check and job reaches it the same way.

MLflow is the system of record for model versions; aliases carry their state (``champion`` serves,
``challenger`` waits for the gate or a person). MLflow keeps no history of alias moves: the caller of
:meth:`ModelRegistry.move_alias` writes the history to the warehouse (``audit.model_alias_changes``), and the
registered model's tags hold only the current state, a fixed set of keys overwritten on every move. Experiments
are created as classic ML (model training) experiments, and every link to an MLflow page (:meth:`ModelRegistry.ui_page`:
the tracking server's, or the local store's UI at ``NIGHTJAR_MLFLOW_UI_URL``) asks for that view, so the MLflow 3 UI
opens them on runs and models, not on the GenAI view. mlflow is imported inside the methods: it costs over a second
at definitions load.

Every call goes through an ``MlflowClient`` built with this resource's URI (:meth:`ModelRegistry.client`); nothing
sets MLflow's process-wide tracking URI, so two registries in one process (two stores, or a test beside a user's
own MLflow) never write into each other. The one exception is registering a version
(:meth:`ModelRegistry.register`): MLflow's database store looks the logged model up through the process-wide URI,
which is set for that one call and restored (:func:`_process_wide_uri`).

Every MLflow error leaves this resource as a :class:`RegistryError` (a ``dagster.Failure``) whose message names
the model, the version or alias and what was being done. Whether a step's retry policy applies depends on the
error: a server that is down, busy or timing out may answer on the next attempt (``allow_retries=True``); a
version that does not exist or a request MLflow refuses will not change by asking again (``allow_retries=False``).

A version is served only as registered: :meth:`ModelRegistry.register` records the content hash of the logged
model's files on the version, and :meth:`ModelRegistry.load` checks the downloaded copy against it before MLflow
reads it (:mod:`resources.model_integrity`).

No credential leaves this resource: its ``tracking_uri`` is the URI without user:password (the settings split them
off, :func:`resources.settings.tracking_uri_from_env`), a URI given with them anyway is split again before MLflow
sees it, and every URI in a message or link goes through :func:`resources.settings.redact_url`. Each client also
bounds MLflow's own HTTP retries (:class:`resources.settings.MlflowHttpBudget`), so that a server that is down
fails the attempt in seconds and the step's :data:`SERVER_RETRY_POLICY` decides what comes next.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import dagster as dg
from pydantic import Field

from resources.model_integrity import ARTIFACT_SHA256_TAG, check_folder
from resources.settings import MlflowHttpBudget, export_mlflow_credentials, redact_url, split_credentials

CHAMPION = "champion"
CHALLENGER = "challenger"

# The experiment's kind (an MLflow 3 tag the UI reads): classic ML model training, not a GenAI app. Without it the
# MLflow 3 UI asks which kind the experiment is, or opens it on the (empty) GenAI view. MLflow 3.17 has no Python
# API for the kind (only the UI's own selector writes this tag), so it is written here (ARCHITECTURE register).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# The view the MLflow 3 UI opens an experiment's pages on: its JS reads ``workflowType`` from the page's query
# (``genai`` or ``machine_learning``), else the browser's last choice, GenAI in a fresh browser. Every link nightjar
# records to an MLflow page carries it, so the page opens on runs and models, not on traces.
ML_VIEW_QUERY = "workflowType=machine_learning"
# The variables MLflow reads its process-wide URIs from when nothing set them in the process (_process_wide_uri).
_TRACKING_URI_VAR = "MLFLOW_TRACKING_URI"
_REGISTRY_URI_VAR = "MLFLOW_REGISTRY_URI"
_PROCESS_WIDE_URI_LOCK = threading.Lock()
# The registered-model tags of earlier releases: one JSON record per alias move, e.g. audit.champion.20260301T...Z.
# The warehouse audit table holds the same records; these are removed when an alias next moves.
_LEGACY_AUDIT_TAG = re.compile(r"^audit\.[a-z_]+\.\d{8}T\d{6}\d*Z$")

# For steps that talk to servers (MLflow tracking server, Postgres): retried after about 2, 6 and 14 s (each
# +/- 2 s). Only failures worth retrying are: validation and data errors raise dg.Failure(allow_retries=False).
# With MLflow's calls bounded by MlflowHttpBudget (at most 54 s a call by default), a step gives up on an MLflow
# server that never answers after about 4 x 54 s + 22 s; the README (Configuration) states the budget.
SERVER_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# MLflow error codes of a server that may answer on a later attempt. Any other code (not found, invalid
# parameter, permission denied, ...) is an answer that retrying will not change.
_TRANSIENT_CODES = frozenset(
    {
        "INTERNAL_ERROR",  # also what MLflow reports when it cannot reach the server at all
        "TEMPORARILY_UNAVAILABLE",
        "SERVICE_UNDER_MAINTENANCE",
        "WORKSPACE_TEMPORARILY_UNAVAILABLE",
        "IO_ERROR",
        "DEADLINE_EXCEEDED",
        "CANCELLED",
        "ABORTED",
        "RESOURCE_EXHAUSTED",
        "REQUEST_LIMIT_EXCEEDED",
        "COULD_NOT_ACQUIRE_LOCK",
        "UNPARSEABLE_HTTP_ERROR",  # an HTML error page from a proxy in front of the server
    }
)
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_MAX_LISTED_VERSIONS = 20
_MAX_CAUSE_CHARS = 500


class RegistryError(dg.Failure):
    """An MLflow registry call failed. ``description`` names the model, version or alias and the call;
    ``transient`` says whether the server may answer on a later attempt (then the step's retry policy applies)."""

    def __init__(self, description: str = "", transient: bool = False):
        super().__init__(description=description, allow_retries=transient)
        self.transient = transient


class ModelVersionNotFound(RegistryError):
    """The model, or the version of it, is not in the registry; the message lists the versions that are."""


def safe_uri(uri: str) -> str:
    """The tracking URI without what may hold a secret: for a server, its scheme, host and port only; any other URI
    (a database's) without its user:password (:func:`resources.settings.redact_url`)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https", "databricks"):
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"
    return redact_url(uri)


def _cause(exc: Exception) -> str:
    """MLflow's message on one line, shortened, without credentials a URL in it may carry (``//user:pw@host``)."""
    text = redact_url(" ".join(str(getattr(exc, "message", None) or exc).split()))
    return text if len(text) <= _MAX_CAUSE_CHARS else text[: _MAX_CAUSE_CHARS - 3] + "..."


@contextmanager
def _process_wide_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URI is ``uri`` for the calls inside, and what it was after.

    A shim (ARCHITECTURE register), for :meth:`ModelRegistry.register` alone: MLflow's database store, asked for a
    version whose source is a logged model (``models:/m-...``, what links the version to its logged model in the
    UI), looks that model up with ``MlflowClient()`` on the process-wide URI, whatever URI its own client was given
    (mlflow 3.17 ``SqlAlchemyStore.create_model_version``, a TODO there). The URI is put where MLflow reads it:
    its variables (``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``), or, when code in the process pinned a URI with
    ``mlflow.set_tracking_uri`` / ``set_registry_uri`` (which win over the variables), those calls; both are put
    back as they were, under a lock, so nightjar's own calls never see another registry's URI.
    """
    import mlflow

    with _PROCESS_WIDE_URI_LOCK:
        saved = {name: os.environ.get(name) for name in (_TRACKING_URI_VAR, _REGISTRY_URI_VAR)}
        before_tracking, before_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        os.environ[_TRACKING_URI_VAR] = uri
        os.environ[_REGISTRY_URI_VAR] = uri
        pinned_tracking = mlflow.get_tracking_uri() != uri  # set_tracking_uri was called: it wins over the variable
        pinned_registry = mlflow.get_registry_uri() != uri
        try:
            if pinned_tracking:
                mlflow.set_tracking_uri(uri)
            if pinned_registry:
                mlflow.set_registry_uri(uri)
            yield
        finally:
            if pinned_tracking:
                mlflow.set_tracking_uri(before_tracking)
            if pinned_registry:
                mlflow.set_registry_uri(before_registry)
            for name, value in saved.items():  # after the set_*_uri calls, which write the variables too
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def as_link(where: str) -> dg.MetadataValue:
    """A UI address as Dagster metadata: a link the UI opens when it is a URL, else (no UI known) text."""
    return dg.MetadataValue.url(where) if where.startswith(("http://", "https://")) else dg.MetadataValue.text(where)


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()  # filled by ModelRegistry.all_versions only

    @property
    def uri(self) -> str:
        # A version number, not an alias: what was resolved once is what gets loaded, even if the alias moves.
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RunningRun:
    """An MLflow run still marked RUNNING (:meth:`ModelRegistry.running_runs`)."""

    run_id: str
    name: str
    tags: dict[str, str]
    start_time: int | None  # milliseconds since the epoch


class ModelRegistry(dg.ConfigurableResource):
    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///... locally, http(s)://... for a server)")
    artifact_root: str | None = Field(
        default=None, description="Where new experiments keep artifacts; None lets the tracking server decide"
    )
    ui_url: str | None = Field(
        default=None,
        description="The MLflow UI of a local (non-HTTP) store, for links to runs (`make mlflow-ui` serves it); a "
        "tracking server is its own UI",
    )

    @property
    def connect_uri(self) -> str:
        """The URI MLflow is given: ``tracking_uri`` without a user:password, which (if one was there anyway) goes
        to MLflow's credential variables instead (:func:`resources.settings.export_mlflow_credentials`). MLflow
        prints the URI it was given ("View run ... at ..."), so it must hold no secret."""
        uri, username, password = split_credentials(self.tracking_uri)
        if username or password:
            export_mlflow_credentials(username, password)
        return uri

    @property
    def shown_uri(self) -> str:
        """The tracking URI as messages and links show it: nothing in it that may be a secret."""
        return redact_url(self.tracking_uri)

    def client(self):
        """An MLflow client of this registry's store: tracking and registry at :attr:`connect_uri`. Nothing
        process-wide is pointed at it: every MLflow call of nightjar goes through a client like this one."""
        from mlflow import MlflowClient

        MlflowHttpBudget.from_env().apply()  # one bounded wait per call; the step's retry policy does the rest
        uri = self.connect_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def register(self, name: str, logged_model_uri: str, tags: dict[str, str]) -> int:
        """Register the logged model ``logged_model_uri`` (``models:/m-...``) as a new version of ``name`` (the
        registered model is created on first use) with ``tags``; returns the version number.

        The version also gets the hash of the logged model's files (tag :data:`ARTIFACT_SHA256_TAG`, which
        :func:`assets.ml.mlflow_model.log_model` writes on the logged model from the files before their upload), so
        that :meth:`load` can refuse files changed since. A logged model without that tag registers a version without
        it, which loads with a warning that it cannot be verified (a log line says so now too).

        ``mlflow.register_model`` does what the UI shows: the version's source is the logged model (its page links
        it) and its run, and the logged model lists the version. It runs on the process-wide URI, set to this
        registry's for the call only (:func:`_process_wide_uri`), as MLflow's store reads that URI anyway."""
        import mlflow

        client = self.client()  # the HTTP budget and credentials, as for every call
        model_id = logged_model_uri.removeprefix("models:/")
        with self._calling(f"read logged model {model_id} to register it as a version of model '{name}'"):
            recorded = client.get_logged_model(model_id).tags.get(ARTIFACT_SHA256_TAG)
        if recorded is None:
            dg.get_dagster_logger("nightjar.registry").warning(
                f"logged model {model_id} has no '{ARTIFACT_SHA256_TAG}' tag: the new version of '{name}' is "
                "registered without the hash of its files, and cannot be verified when it is loaded"
            )
        with _process_wide_uri(self.connect_uri):
            registering = {**tags, ARTIFACT_SHA256_TAG: recorded} if recorded else tags
            return int(mlflow.register_model(logged_model_uri, name, tags=registering).version)

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Turn an MLflow error raised inside into a :class:`RegistryError` saying what could not be done."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            transient = exc.error_code in _TRANSIENT_CODES
            error = RegistryError(
                f"MLflow registry at {safe_uri(self.tracking_uri)}: could not {what}: {_cause(exc)} "
                f"[{exc.error_code}{'; may succeed on retry' if transient else ''}]",
                transient=transient,
            )
            # MLflow's message is in the description; its traceback (and the URL it may hold) is left out.
            raise error from None

    def experiment_id(self, name: str) -> str:
        """The experiment for a model, created on first use with the configured artifact root, as a classic ML
        experiment (:data:`EXPERIMENT_KIND`; an experiment made before gets the tag now)."""
        with self._calling(f"find or create the MLflow experiment '{name}'"):
            client = self.client()
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return client.create_experiment(
                    name, artifact_location=self.artifact_root, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                )
            if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return experiment.experiment_id

    def version(self, name: str, version: int | str) -> VersionInfo:
        """A version of a model; :class:`ModelVersionNotFound`, listing the versions that exist, if there is none."""
        from mlflow.exceptions import MlflowException

        with self._calling(f"read version {version} of model '{name}'"):
            try:
                mv = self.client().get_model_version(name, str(version))
            except MlflowException as exc:
                if exc.error_code not in _NOT_FOUND_CODES:
                    raise
                mv = None
        if mv is None:
            raise ModelVersionNotFound(self._no_such_version(name, version)) from None
        return VersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, tags=dict(mv.tags))

    def versions(self, name: str) -> dict[int, list[str]]:
        """Every version of a model with the aliases pointing at it, oldest first; empty if the model is unknown."""
        return {v.version: list(v.aliases) for v in reversed(self.all_versions(name))}

    def all_versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model with its tags and aliases, newest first; empty if the model is unknown."""
        from mlflow.exceptions import MlflowException

        with self._calling(f"list the versions of model '{name}'"):
            client = self.client()
            try:
                aliases = client.get_registered_model(name).aliases or {}
            except MlflowException as exc:
                if exc.error_code not in _NOT_FOUND_CODES:
                    raise
                return []
            quoted = name.replace("'", "\\'")
            found = client.search_model_versions(filter_string=f"name = '{quoted}'")
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(aliases.items()):
            by_version.setdefault(int(version), []).append(alias)
        listed = [
            VersionInfo(name, int(mv.version), mv.run_id, dict(mv.tags), tuple(by_version.get(int(mv.version), ())))
            for mv in found
        ]
        return sorted(listed, key=lambda v: v.version, reverse=True)

    def _no_such_version(self, name: str, version: int | str) -> str:
        where = f"the MLflow registry at {safe_uri(self.tracking_uri)}"
        existing = self.versions(name)
        if not existing:
            return (
                f"model '{name}' has no version {version}: {where} has no versions of '{name}' at all "
                f"(train one with the train_{name} job first)"
            )
        listed = [f"{v} ({', '.join(aliases)})" if aliases else str(v) for v, aliases in existing.items()]
        if len(listed) > _MAX_LISTED_VERSIONS:
            older = len(listed) - _MAX_LISTED_VERSIONS
            listed = [f"... {older} older"] + listed[-_MAX_LISTED_VERSIONS:]
        return f"model '{name}' has no version {version} in {where}; versions that exist: {', '.join(listed)}"

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version ``alias`` points at; ``None`` if the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        with self._calling(f"resolve alias '{alias}' of model '{name}'"):
            try:
                mv = self.client().get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise
        return VersionInfo(name=name, version=int(mv.version), run_id=mv.run_id, tags=dict(mv.tags))

    def set_version_tags(self, name: str, version: int, tags: dict[str, Any]) -> None:
        with self._calling(f"tag version {version} of model '{name}' ({', '.join(tags)})"):
            client = self.client()
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, str(value))

    def delete_version_tags(self, name: str, version: int, keys: list[str]) -> None:
        """Remove the tags ``keys`` from a version, those it has (a version without them is left as it is)."""
        with self._calling(f"remove tags {', '.join(keys)} of version {version} of model '{name}'"):
            client = self.client()
            present = client.get_model_version(name, str(version)).tags
            for key in keys:
                if key in present:
                    client.delete_model_version_tag(name, str(version), key)

    def load(self, info: VersionInfo):
        """The pyfunc model of a version (predicts default probabilities: logged with predict_proba).

        Downloaded from where the registry says the version's files are, with this registry's URI (a ``models:/``
        URI would be resolved on the process-wide one), checked against the hash recorded at registration before
        MLflow reads a byte of it (:func:`resources.model_integrity.check_folder`: a
        :class:`~resources.model_integrity.ModelIntegrityError` if they differ, a warning if the version has no
        hash), then loaded from the local copy."""
        import mlflow.artifacts
        import mlflow.pyfunc

        with self._calling(f"load version {info.version} of model '{info.name}' ({info.uri})"):
            stored = self.client().get_model_version_download_uri(info.name, str(info.version))
            with tempfile.TemporaryDirectory(prefix="nightjar-model-") as tmp:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=stored, dst_path=tmp, tracking_uri=self.connect_uri
                )
                recorded = info.tags.get(ARTIFACT_SHA256_TAG)
                check_folder(local, recorded, model=info.name, version=info.version, where=redact_url(stored))
                # suppress_warnings: skips re-checking the pip requirements on every load (0.5 s -> 0.1 s a load).
                return mlflow.pyfunc.load_model(local, suppress_warnings=True)

    def download_run_artifact(self, run_id: str, path: str, into: str) -> str:
        """Download the artifact ``path`` (a file or folder) of run ``run_id`` under the folder ``into``; returns
        its local path."""
        with self._calling(f"download artifact '{path}' of MLflow run {run_id}"):
            return self.client().download_artifacts(run_id, path, dst_path=into)

    def move_alias(
        self, name: str, alias: str, version: int, *, model_tags: dict[str, str], version_tags: dict[str, str]
    ) -> None:
        """Point ``alias`` at ``version``, and record the new state: ``model_tags`` on the registered model (a fixed
        set of keys, overwritten on every move: the current state, never a history), ``version_tags`` on the version.

        Idempotent: a retried step that sets the same alias and tags again changes nothing more. The registered
        model's audit tags of earlier releases (one per move, a growing pile) are removed on the way.
        """
        with self._calling(f"point alias '{alias}' of model '{name}' at version {version}"):
            client = self.client()
            client.set_registered_model_alias(name, alias, str(version))
            for key, value in model_tags.items():
                client.set_registered_model_tag(name, key, value)
            for key, value in version_tags.items():
                client.set_model_version_tag(name, str(version), key, value)
            for key in client.get_registered_model(name).tags:
                if _LEGACY_AUDIT_TAG.match(key):
                    client.delete_registered_model_tag(name, key)

    def remove_alias(self, name: str, alias: str) -> None:
        with self._calling(f"remove alias '{alias}' of model '{name}'"):
            self.client().delete_registered_model_alias(name, alias)

    def run_page(self, run_id: str) -> str:
        """:meth:`ui_link` of a run known by its id alone (asks MLflow for its experiment)."""
        with self._calling(f"read run '{run_id}'"):
            experiment_id = self.client().get_run(run_id).info.experiment_id
        return self.ui_link(run_id, experiment_id)

    def ui_page(
        self,
        *,
        experiment_id: str | None = None,
        run_id: str | None = None,
        model: str | None = None,
        version: int | None = None,
    ) -> str | None:
        """The MLflow UI's page of a run (``experiment_id`` and ``run_id``) or of a registered version (``model``
        and ``version``), on its model-training view (:data:`ML_VIEW_QUERY`): under the tracking server, which is its
        own UI, or under ``ui_url`` for a local store (the settings' ``NIGHTJAR_MLFLOW_UI_URL``); None when neither
        is known.

        The one place that knows the UI's addresses (ARCHITECTURE register): MLflow has no public helper for them
        outside Databricks. They are the routes of the UI's hash router, as mlflow 3.17's UI declares them
        (``/experiments/:experimentId/runs/:runUuid``, ``/models/:modelName/versions/:version``) and as MLflow
        itself prints a run's address; tests/test_links.py checks the installed UI still declares them.
        """
        if experiment_id is not None and run_id is not None:
            route = f"experiments/{experiment_id}/runs/{run_id}"
        elif model is not None and version is not None:
            route = f"models/{quote(model, safe='')}/versions/{version}"
        else:
            raise ValueError("ui_page: give experiment_id and run_id (a run's page) or model and version (a version's)")
        shown = self.shown_uri
        ui = shown if shown.startswith(("http://", "https://")) else redact_url(self.ui_url or "")
        return f"{ui.rstrip('/')}/#/{route}?{ML_VIEW_QUERY}" if ui else None

    def ui_link(self, run_id: str, experiment_id: str) -> str:
        """The run's page in the MLflow UI (:meth:`ui_page`); without a UI, where to find it in words."""
        return self.ui_page(experiment_id=experiment_id, run_id=run_id) or (
            f"{self.shown_uri} experiment {experiment_id} run {run_id}"
        )

    def version_page(self, name: str, version: int) -> str:
        """The registered version's page in the MLflow UI (:meth:`ui_page`); without a UI, its model URI."""
        return self.ui_page(model=name, version=version) or f"models:/{name}/{version}"

    def version_links(
        self, name: str, version: int, run_id: str | None = None, experiment_id: str | None = None
    ) -> dict[str, dg.MetadataValue]:
        """A registered version's MLflow pages as Dagster metadata (links, :func:`as_link`): ``mlflow_run``, the
        run that trained it, and ``mlflow_model_version``, its page in the registry. What the caller does not know
        (the version's run, the run's experiment) is asked of MLflow."""
        if run_id is None:
            run_id = self.version(name, version).run_id
        run = self.ui_link(run_id, experiment_id) if experiment_id else self.run_page(run_id)
        return {"mlflow_run": as_link(run), "mlflow_model_version": as_link(self.version_page(name, version))}

    def running_runs(self, experiment: str) -> list[RunningRun]:
        """The runs of experiment ``experiment`` that MLflow still shows as RUNNING; empty if there is no such
        experiment."""
        with self._calling(f"list the RUNNING runs of experiment '{experiment}'"):
            client = self.client()
            found = client.get_experiment_by_name(experiment)
            if found is None:
                return []
            runs = client.search_runs(
                [found.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
            )
        return [RunningRun(r.info.run_id, r.info.run_name or "", dict(r.data.tags), r.info.start_time) for r in runs]

    def end_run(self, run_id: str, status: str, tags: dict[str, str]) -> None:
        """End an MLflow run (``FAILED``, ``KILLED``...), tagged first with ``tags`` saying why."""
        with self._calling(f"end MLflow run {run_id} as {status}"):
            client = self.client()
            for key, value in tags.items():
                client.set_tag(run_id, key, value)
            client.set_terminated(run_id, status=status)
