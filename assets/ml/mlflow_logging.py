"""Recording a trained model in MLflow: one run with everything needed to judge it, then a registered version.

The run holds params (the spec and the estimator's effective params), holdout metrics, the training and holdout
datasets (name = the mart, digest = their content hash), the plots, tables and reference sample of
:mod:`assets.ml.run_artifacts`, and the model itself (:mod:`assets.ml.mlflow_model`). The new version is registered
without an alias: moving ``challenger`` / ``champion`` is the gate's job.

Everything goes through the registry's ``MlflowClient`` (no process-wide tracking URI): the run is created and
ended by the client, with the system tags MLflow's ``start_run`` would have resolved (who and what started it:
:func:`run_context_tags`); only registering the version runs on the process-wide URI, for that call
(:meth:`resources.registry.ModelRegistry.register`).

The run reads as what it is in the MLflow UI: a unique name (:func:`training_run_name`: model, when, what it learned
from) and a Markdown description (MLflow's ``mlflow.note.content`` tag) saying what was trained on which rows, the
caller's lines (the model asset links the Dagster run), and, once registered, which version it became (linked to
its page in the MLflow UI). The version's description says what it was trained on, and the caller's lines too.

mlflow is imported inside the functions: this module is imported when Dagster loads its definitions.
"""

from __future__ import annotations

import getpass
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from assets.ml.mlflow_model import log_model
from assets.ml.provenance import FINGERPRINT_TAG
from assets.ml.run_artifacts import REFERENCE_PATH, reference_sample, write_artifacts
from assets.ml.training import limited_threads

if TYPE_CHECKING:
    from assets.ml.spec import ModelSpec
    from assets.ml.training import TrainedModel
    from resources.registry import ModelRegistry

# MLflow stores a dataset digest in a 36-character column.
DIGEST_CHARS = 32
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in the MLflow UI (Markdown)
DATASET_CONTEXT_TAG = "mlflow.data.context"  # what a run's dataset was for ("training", "evaluation")
SENSITIVE_TAG = "sensitive_features"  # the features whose values the run holds none of (comma-separated)


@dataclass(frozen=True)
class LoggedVersion:
    name: str
    version: int
    run_id: str
    run_name: str  # see training_run_name
    model_uri: str  # models:/<name>/<version>
    experiment_id: str
    metrics: dict[str, float]
    logged_model_uri: str  # models:/m-<id>, the LoggedModel the version points to
    data_hash: str


def mlflow_key(metric: str) -> str:
    """A metric's name as an MLflow metric or tag name: a character MLflow refuses (a class name in
    ``recall_<class>`` may hold any) becomes ``_``."""
    return re.sub(r"[^\w.\- ]", "_", metric)


def _flatten(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    if isinstance(value, list | tuple):
        return {prefix: ",".join(str(v) for v in value)}
    return {prefix: str(value)[:MAX_PARAM_CHARS]}


def run_params(spec: ModelSpec, trained: TrainedModel, data_window: dict[str, Any]) -> dict[str, str]:
    """Params of a training run: the spec, the estimator as fitted, the data window and its hash."""
    estimator = trained.pipeline.named_steps["model"]
    params = _flatten(spec.model_dump(mode="json", by_alias=True, exclude={"description"}), "spec")
    params["estimator.class"] = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    params.update(_flatten(estimator.get_params(deep=False), "estimator"))
    params.update({f"window.train_{k}": str(v) for k, v in trained.train_window.items()})
    params.update({f"window.holdout_{k}": str(v) for k, v in trained.holdout_window.items()})
    params["window.data_hash"] = trained.data_hash
    params.update(_flatten(dict(data_window), "data_window"))
    return params


def run_context_tags() -> dict[str, str]:
    """Who and what started the run, as MLflow's documented system tags (the UI's "User" and "Source"): what
    ``mlflow.start_run`` resolves from the process (the user, the program, a local run), which a client's
    ``create_run`` leaves to its caller."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this process's uid (a container)
        user = "unknown"
    return {
        "mlflow.user": user,
        "mlflow.source.name": sys.argv[0] if sys.argv and sys.argv[0] else "<console>",
        "mlflow.source.type": "LOCAL",
    }


def log_datasets(client: Any, run_id: str, spec: ModelSpec, trained: TrainedModel) -> None:
    """The training and holdout rows as the run's datasets (name = the mart, digest = their content hash, MLflow's
    schema and profile of them), each tagged with what it was for (:data:`DATASET_CONTEXT_TAG`)."""
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = []
    for rows, digest, context in (
        (trained.train, trained.train_hash, "training"),
        (trained.holdout, trained.holdout_hash, "evaluation"),
    ):
        with warnings.catch_warnings():
            # The dataset's schema is a description, not an enforced model signature: its hint about integer
            # columns and missing values does not apply.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            dataset = mlflow.data.from_pandas(
                rows, name=spec.training_mart, targets=spec.target, digest=digest[:DIGEST_CHARS]
            )
            described = dataset.to_dict()  # infers the schema (lazily), hence inside the filter
        inputs.append(DatasetInput(Dataset(**described), tags=[InputTag(DATASET_CONTEXT_TAG, context)]))
    client.log_inputs(run_id, datasets=inputs)


def _version_description(spec: ModelSpec, trained: TrainedModel) -> str:
    train_w, holdout_w = trained.train_window, trained.holdout_window
    estimator = type(trained.pipeline.named_steps["model"]).__name__
    shown = ", ".join(f"{k} {v:.4f}" for k, v in trained.metrics.items())
    return (
        f"{estimator} trained on {train_w['rows']} rows of {spec.training_mart} "
        f"({train_w['first_day']}..{train_w['last_day']}); holdout {holdout_w['rows']} rows "
        f"({holdout_w['first_day']}..{holdout_w['last_day']}): {shown}. Data hash {trained.data_hash[:12]}."
    )


def _markdown_link(text: str, url: str) -> str:
    """``text`` as code, linked to ``url`` when it is a web address (no MLflow UI known: the text alone)."""
    return f"[`{text}`]({url})" if url.startswith(("http://", "https://")) else f"`{text}`"


def training_run_name(model: str, started: datetime, fingerprint: str) -> str:
    """``<model>-<YYYYMMDD>-<HHMMSS>-<fingerprint[:8]>`` (UTC): unique, as one training of a model runs at a time,
    ordered by time, and the fingerprint tells runs on the same data apart from runs on new data."""
    return f"{model}-{started.astimezone(UTC):%Y%m%d-%H%M%S}-{fingerprint[:8]}"


def run_description(spec: ModelSpec, trained: TrainedModel, lines: list[str]) -> str:
    """The run's Markdown description: what was trained on which rows, then the caller's ``lines``."""
    train_w, holdout_w = trained.train_window, trained.holdout_window
    estimator = type(trained.pipeline.named_steps["model"]).__name__
    head = (
        f"Training run of **{spec.name}**: {estimator} on {train_w['rows']} rows of `{spec.training_mart}` "
        f"({train_w['first_day']}..{train_w['last_day']}), evaluated on the {holdout_w['rows']} holdout rows of "
        f"{holdout_w['first_day']}..{holdout_w['last_day']}."
    )
    return "\n\n".join([head, *lines])


def log_and_register(
    registry: ModelRegistry,
    spec: ModelSpec,
    trained: TrainedModel,
    *,
    tags: dict[str, str],
    data_window: dict[str, Any],
    description_lines: list[str] | None = None,
    sensitive: frozenset[str] = frozenset(),
) -> LoggedVersion:
    """One MLflow run in experiment ``spec.name`` with params, metrics, datasets, artifacts and the model, and the
    model registered as a new version of ``spec.name`` (no alias moved). ``description_lines``: Markdown added to the
    run's description (e.g. a link to the Dagster run). ``sensitive``: features whose values the run must not hold
    (``resources.source.sensitive``): left out of the reference sample and the tables, missing in the input
    example, named in the tag :data:`SENSITIVE_TAG`."""
    from mlflow.entities import Param

    if trained.spec != spec:
        raise ValueError(f"log_and_register: spec '{spec.name}' is not the spec '{trained.spec.name}' was trained with")
    client = registry.client()
    experiment_id = registry.experiment_id(spec.name)
    run_tags = {**{k: str(v) for k, v in tags.items()}, "spec_name": spec.name, "data_hash": trained.data_hash}
    if sensitive:
        run_tags[SENSITIVE_TAG] = ", ".join(sorted(sensitive))
    lines = description_lines or []
    description = run_description(spec, trained, lines)
    reference = reference_sample(spec, trained, sensitive=sensitive)
    run_metrics = {
        **{mlflow_key(k): v for k, v in trained.metrics.items()},
        "train_rows": float(len(trained.train)),
        "holdout_rows": float(len(trained.holdout)),
        "fit_seconds": trained.fit_seconds,
    }
    run_name = training_run_name(spec.name, datetime.now(UTC), tags.get(FINGERPRINT_TAG) or trained.data_hash)
    context = run_context_tags()
    with limited_threads():
        run = client.create_run(
            experiment_id, run_name=run_name, tags={**context, **run_tags, DESCRIPTION_TAG: description}
        )
        run_id = run.info.run_id
        try:
            params = run_params(spec, trained, data_window)
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
            log_datasets(client, run_id, spec, trained)
            with tempfile.TemporaryDirectory(prefix="nightjar-artifacts-") as tmp:
                write_artifacts(Path(tmp), spec, trained, reference, sensitive)
                client.log_artifacts(run_id, tmp)
            model = log_model(
                client,
                experiment_id,
                run_id,
                spec,
                trained,
                params=params,
                metrics=run_metrics,
                tags=context,
                sensitive=sensitive,
            )
            logged_model_uri = f"models:/{model.model_id}"
            version_tags = {
                **run_tags,
                "estimator": type(trained.pipeline.named_steps["model"]).__name__,
                "train_first_day": trained.train_window["first_day"],
                "train_last_day": trained.train_window["last_day"],
                "holdout_first_day": trained.holdout_window["first_day"],
                "holdout_last_day": trained.holdout_window["last_day"],
                **{f"metric.{mlflow_key(k)}": repr(float(v)) for k, v in trained.metrics.items()},
            }
            version = registry.register(spec.name, logged_model_uri, version_tags)
            version_text = "\n\n".join([f"{_version_description(spec, trained)} MLflow run {run_name}.", *lines])
            client.update_model_version(spec.name, str(version), description=version_text)
            registered_as = (
                f"Registered as **version {version}** of `{spec.name}` "
                f"({_markdown_link(f'models:/{spec.name}/{version}', registry.version_page(spec.name, version))})."
            )
            client.set_tag(run_id, DESCRIPTION_TAG, f"{description}\n\n{registered_as}")
            if spec.description and client.get_registered_model(spec.name).description != spec.description:
                client.update_registered_model(spec.name, description=spec.description)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
    return LoggedVersion(
        name=spec.name,
        version=version,
        run_id=run_id,
        run_name=run_name,
        model_uri=f"models:/{spec.name}/{version}",
        experiment_id=experiment_id,
        metrics=dict(trained.metrics),
        logged_model_uri=logged_model_uri,
        data_hash=trained.data_hash,
    )


def load_reference(registry: ModelRegistry, run_id: str) -> pd.DataFrame:
    """The reference sample logged by the training run ``run_id`` (features, ``score``, multiclass
    ``predicted_class``, target, ``nightjar_day``).

    Parquet keeps a missing categorical as null, so it comes back as ``None``: pass the frame through
    :func:`assets.ml.evaluation.features` before scoring it again.
    """
    with tempfile.TemporaryDirectory(prefix="nightjar-reference-") as tmp:
        return pd.read_parquet(registry.download_run_artifact(run_id, REFERENCE_PATH, tmp))
