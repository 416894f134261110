"""The fitted pipeline as MLflow stores it: an sklearn model whose pyfunc ``predict`` is ``predict_proba`` (binary,
multiclass) or ``predict`` (regression), saved with skops (only the types it needs trusted) and pinned requirements,
kept as an MLflow 3 logged model of the training run.

It is logged through an ``MlflowClient`` of the registry (no process-wide tracking URI), with the steps MLflow's
own ``mlflow.sklearn.log_model`` takes, in public calls: the logged model is created with the run's params, linked
as the run's output, given the run's metrics, saved with ``mlflow.sklearn.save_model`` (the MLmodel file names the
logged model and the run), uploaded and marked READY (FAILED if any step fails).

mlflow and skops are imported inside the functions: this module is imported when Dagster loads its definitions.
"""

from __future__ import annotations

import tempfile
import time
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.ml.evaluation import features
from resources.model_integrity import ARTIFACT_SHA256_TAG, folder_sha256

if TYPE_CHECKING:
    from assets.ml.spec import ModelSpec
    from assets.ml.training import TrainedModel

MODEL_NAME = "model"  # the logged model's name inside the run
# Requirements written with the model. Explicit pins skip MLflow's requirement inference, which re-loads the model
# in a subprocess and costs seconds per log; skops is needed to read the default (skops) serialization.
PINNED_PACKAGES = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
# skops refuses to load types it was not told to trust. Types from these packages are trusted when the fitted
# pipeline needs them (numpy.dtype, HistGradientBoosting's TreePredictor, tree.Tree, ...); anything else stops
# the logging with its name, so a new dependency is a decision rather than an accident.
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def pip_requirements() -> list[str]:
    return [f"{package}=={installed_version(package)}" for package in PINNED_PACKAGES]


def skops_trusted_types(pipeline: Any) -> list[str]:
    """The types skops must be told to trust to load ``pipeline``, limited to TRUSTED_TYPE_PREFIXES."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_TYPE_PREFIXES)]
    if foreign:
        raise ValueError(
            f"the fitted pipeline needs types from outside {TRUSTED_TYPE_PREFIXES} to be trusted by skops: "
            f"{foreign}; add their package to TRUSTED_TYPE_PREFIXES in {__name__} if it is safe to load"
        )
    return sorted(untrusted)


def predict_fn(spec: ModelSpec) -> str:
    """The pipeline's method pyfunc ``predict`` calls: the probabilities of a classifier, a regressor's values."""
    return "predict" if spec.task == "regression" else "predict_proba"


def predict_output(spec: ModelSpec, pipeline: Any) -> str:
    """What pyfunc ``predict`` returns, in words (the logged model's metadata)."""
    if spec.task == "regression":
        return f"(n,) float array from predict: the predicted {spec.target}"
    if spec.task == "multiclass":
        classes = [str(c) for c in pipeline.classes_]
        return (
            f"(n, {len(classes)}) float array from predict_proba: P({spec.target} = class), columns in order {classes}"
        )
    return f"(n, 2) float array from predict_proba; column 1 is P({spec.target} = 1)"


def log_model(
    client: Any,
    experiment_id: str,
    run_id: str,
    spec: ModelSpec,
    trained: TrainedModel,
    *,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    sensitive: frozenset[str] = frozenset(),
) -> Any:
    """Log the pipeline as the logged model of run ``run_id`` of experiment ``experiment_id`` (``client``: the
    registry's ``MlflowClient``), so that pyfunc ``predict`` returns what :func:`predict_output` says: (n, 2) or
    (n, k) probabilities for a classifier, (n,) values for a regressor. The logged model carries the run's
    ``params``, ``metrics`` (logged on the run here, linked to the model, as the UI's model page shows them) and
    ``tags``; returns it, READY.

    The input example (five training rows, kept with the model) holds no value of a ``sensitive`` feature: it is
    missing there, as the model accepts and imputes; the signature keeps the feature's type."""
    import mlflow.sklearn
    from mlflow.entities import LoggedModelOutput, Metric
    from mlflow.models import Model, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    method = predict_fn(spec)
    example = features(trained.train.head(5), spec)
    signature = infer_signature(example, getattr(trained.pipeline, method)(example))
    # Every input optional: a batch where a column is entirely null must still be accepted (and imputed).
    signature.inputs = Schema([ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs])
    example = example.assign(**{c: float("nan") for c in example.columns if c in sensitive})
    metadata = {
        "spec_name": spec.name,
        "task": spec.task,
        "predict_output": predict_output(spec, trained.pipeline),
        "input": "rows prepared by assets.ml.evaluation.features (numeric float64, categorical object/NaN)",
    }
    if spec.task == "multiclass":
        metadata["classes"] = [str(c) for c in trained.pipeline.classes_]
    model = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id, params=params, tags=tags)
    try:
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        stamp = int(time.time() * 1000)
        client.log_batch(
            run_id, metrics=[Metric(k, float(v), stamp, 0, model_id=model.model_id) for k, v in metrics.items()]
        )
        with tempfile.TemporaryDirectory(prefix="nightjar-model-") as tmp:
            path = Path(tmp) / MODEL_NAME
            mlflow.sklearn.save_model(
                trained.pipeline,
                str(path),
                mlflow_model=Model(
                    artifact_path=model.artifact_location,
                    run_id=run_id,
                    model_uuid=model.model_id,
                    model_id=model.model_id,
                ),
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
                pyfunc_predict_fn=method,
                skops_trusted_types=skops_trusted_types(trained.pipeline),
                metadata=metadata,
            )
            files_sha256 = folder_sha256(path)  # of the files as written, before the upload (resources.model_integrity)
            client.log_model_artifacts(model.model_id, str(path))
            client.set_logged_model_tags(model.model_id, {ARTIFACT_SHA256_TAG: files_sha256})
    except BaseException:
        client.finalize_logged_model(model.model_id, "FAILED")
        raise
    return client.finalize_logged_model(model.model_id, "READY")
