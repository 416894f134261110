"""Recording a trained model in MLflow: one run with everything needed to judge it, then a registered version.

The run holds params (the spec and the estimator's effective params), holdout metrics, the training and holdout
datasets (name = the mart, digest = their content hash), plots and tables a person reads, the reference sample
monitoring compares against, and the model itself. The new version is registered without an alias: moving
``challenger`` / ``champion`` is the gate's job.

mlflow, scikit-learn and matplotlib are imported inside the functions: this module is imported when Dagster loads
its definitions.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from assets.ml import plots
from assets.ml.evaluation import (
    calibration_by_decile,
    features,
    labels,
    permutation_importance,
    segment_metrics,
)
from assets.ml.training import limited_threads

if TYPE_CHECKING:
    from assets.ml.spec import ModelSpec
    from assets.ml.training import TrainedModel
    from resources.registry import ModelRegistry

MODEL_NAME = "model"  # the logged model's name inside the run
REFERENCE_PATH = "reference/reference.parquet"
SCORE_COLUMN = "score"
# MLflow stores a dataset digest in a 36-character column.
DIGEST_CHARS = 32
# Requirements written with the model. Explicit pins skip MLflow's requirement inference, which re-loads the model
# in a subprocess and costs seconds per log; skops is needed to read the default (skops) serialization.
PINNED_PACKAGES = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
# skops refuses to load types it was not told to trust. Types from these packages are trusted when the fitted
# pipeline needs them (numpy.dtype, HistGradientBoosting's TreePredictor, tree.Tree, ...); anything else stops
# the logging with its name, so a new dependency is a decision rather than an accident.
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
IMPORTANCE_ROWS = 2000  # holdout rows for permutation importance: cost is rows x features x repeats predictions


@dataclass(frozen=True)
class LoggedVersion:
    name: str
    version: int
    run_id: str
    model_uri: str  # models:/<name>/<version>
    experiment_id: str
    metrics: dict[str, float]
    logged_model_uri: str  # models:/m-<id>, the LoggedModel the version points to
    data_hash: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase of log_and_register


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


def reference_sample(spec: ModelSpec, trained: TrainedModel, seed: int = 0) -> pd.DataFrame:
    """Up to ``monitoring.reference_rows`` holdout rows: features, the model's score, the target.

    The holdout, not the fitted rows: scores on rows the model was fitted on are over-confident (on small data the
    in-sample ROC AUC was 0.93 against 0.76 on the holdout), so score drift against them would fire on every
    healthy day. The holdout is the newest labeled window, scored out of sample, as production days will be.
    Sampled with a fixed seed and kept in time order, so the same training data gives the same reference.
    """
    rows = trained.holdout
    scores = pd.Series(trained.holdout_scores, index=rows.index)
    if len(rows) > spec.monitoring.reference_rows:
        rows = rows.sample(n=spec.monitoring.reference_rows, random_state=seed).sort_index()
    reference = features(rows, spec).reset_index(drop=True)
    reference[SCORE_COLUMN] = scores.loc[rows.index].to_numpy()
    reference[spec.target] = labels(rows, spec)
    return reference


def _write_artifacts(directory: Path, spec: ModelSpec, trained: TrainedModel, reference: pd.DataFrame) -> None:
    """Plots, tables and the reference sample, laid out as they appear in the run's artifacts."""
    y = labels(trained.holdout, spec)
    p = trained.holdout_scores
    window = trained.holdout_window
    caption = f"{spec.name}, holdout {window['first_day']}..{window['last_day']} ({window['rows']} rows)"

    deciles = calibration_by_decile(y, p)
    importance = permutation_importance(trained.pipeline, trained.holdout, spec, max_rows=IMPORTANCE_ROWS)
    (directory / "evaluation").mkdir(parents=True)
    deciles.to_csv(directory / "evaluation" / "calibration_by_decile.csv", index=False)
    segment_metrics(trained.holdout, y, p, spec.evaluation.segments).to_csv(
        directory / "evaluation" / "segment_metrics.csv", index=False
    )
    importance.to_csv(directory / "evaluation" / "feature_importance.csv", index=False)
    (directory / "evaluation" / "metrics.json").write_text(json.dumps(trained.metrics, indent=2, sort_keys=True))

    plots.save(plots.roc_figure(y, p, f"ROC curve\n{caption}"), directory / "plots" / "roc_curve.png")
    plots.save(
        plots.calibration_figure(deciles, f"Calibration by score decile\n{caption}"),
        directory / "plots" / "calibration.png",
    )
    plots.save(
        plots.importance_figure(importance, f"Permutation importance (up to {IMPORTANCE_ROWS} rows)\n{caption}"),
        directory / "plots" / "feature_importance.png",
    )

    (directory / "reference").mkdir()
    reference.to_parquet(directory / REFERENCE_PATH, index=False)
    (directory / "spec").mkdir()
    spec_json = spec.model_dump(mode="json", by_alias=True)
    (directory / "spec" / "model_spec.json").write_text(json.dumps(spec_json, indent=2))


def _log_datasets(spec: ModelSpec, trained: TrainedModel) -> None:
    import mlflow

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
            mlflow.log_input(dataset, context=context)  # infers the schema (lazily), hence inside the filter


def _log_model(spec: ModelSpec, trained: TrainedModel) -> Any:
    """Log the pipeline so that pyfunc ``predict`` returns ``predict_proba``: an (n, 2) float array."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    example = features(trained.train.head(5), spec)
    signature = infer_signature(example, trained.pipeline.predict_proba(example))
    # Every input optional: a batch where a column is entirely null must still be accepted (and imputed).
    signature.inputs = Schema([ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs])
    return mlflow.sklearn.log_model(
        trained.pipeline,
        name=MODEL_NAME,
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=skops_trusted_types(trained.pipeline),
        metadata={
            "spec_name": spec.name,
            "predict_output": f"(n, 2) float array from predict_proba; column 1 is P({spec.target} = 1)",
            "input": "rows prepared by assets.ml.evaluation.features (numeric float64, categorical object/NaN)",
        },
    )


def _version_description(spec: ModelSpec, trained: TrainedModel) -> str:
    train_w, holdout_w = trained.train_window, trained.holdout_window
    estimator = type(trained.pipeline.named_steps["model"]).__name__
    shown = ", ".join(f"{k} {v:.4f}" for k, v in trained.metrics.items())
    return (
        f"{estimator} trained on {train_w['rows']} rows of {spec.training_mart} "
        f"({train_w['first_day']}..{train_w['last_day']}); holdout {holdout_w['rows']} rows "
        f"({holdout_w['first_day']}..{holdout_w['last_day']}): {shown}. Data hash {trained.data_hash[:12]}."
    )


def log_and_register(
    registry: ModelRegistry,
    spec: ModelSpec,
    trained: TrainedModel,
    *,
    tags: dict[str, str],
    data_window: dict[str, Any],
) -> LoggedVersion:
    """One MLflow run in experiment ``spec.name`` with params, metrics, datasets, artifacts and the model, and the
    model registered as a new version of ``spec.name`` (no alias moved)."""
    import mlflow

    if trained.spec != spec:
        raise ValueError(f"log_and_register: spec '{spec.name}' is not the spec '{trained.spec.name}' was trained with")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[phase] = now - clock
        clock = now

    client = registry.client()  # also points mlflow's fluent API at the registry's tracking URI
    experiment_id = registry.experiment_id(spec.name)
    run_tags = {**{k: str(v) for k, v in tags.items()}, "spec_name": spec.name, "data_hash": trained.data_hash}
    reference = reference_sample(spec, trained)
    run_metrics = {
        **trained.metrics,
        "train_rows": float(len(trained.train)),
        "holdout_rows": float(len(trained.holdout)),
        "fit_seconds": trained.fit_seconds,
    }
    lap("prepare")
    run_name = f"{spec.name} {trained.holdout_window['last_day']}"
    with limited_threads(), mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(run_params(spec, trained, data_window))
        mlflow.log_metrics(run_metrics)
        _log_datasets(spec, trained)
        lap("params_metrics_datasets")
        with tempfile.TemporaryDirectory(prefix="nightjar-artifacts-") as tmp:
            _write_artifacts(Path(tmp), spec, trained, reference)
            lap("artifacts_build")
            mlflow.log_artifacts(tmp)
        lap("artifacts_upload")
        info = _log_model(spec, trained)
        lap("log_model")
        version_tags = {
            **run_tags,
            "estimator": type(trained.pipeline.named_steps["model"]).__name__,
            "train_first_day": trained.train_window["first_day"],
            "train_last_day": trained.train_window["last_day"],
            "holdout_first_day": trained.holdout_window["first_day"],
            "holdout_last_day": trained.holdout_window["last_day"],
            **{f"metric.{k}": repr(float(v)) for k, v in trained.metrics.items()},
        }
        registered = mlflow.register_model(info.model_uri, spec.name, tags=version_tags)
        version = int(registered.version)
        client.update_model_version(spec.name, str(version), description=_version_description(spec, trained))
        if spec.description and client.get_registered_model(spec.name).description != spec.description:
            client.update_registered_model(spec.name, description=spec.description)
        lap("register")
    return LoggedVersion(
        name=spec.name,
        version=version,
        run_id=run_id,
        model_uri=f"models:/{spec.name}/{version}",
        experiment_id=experiment_id,
        metrics=dict(trained.metrics),
        logged_model_uri=info.model_uri,
        data_hash=trained.data_hash,
        timings=timings,
    )


def load_reference(registry: ModelRegistry, run_id: str) -> pd.DataFrame:
    """The reference sample logged by the training run ``run_id`` (features, ``score``, target).

    Parquet keeps a missing categorical as null, so it comes back as ``None``: pass the frame through
    :func:`assets.ml.evaluation.features` before scoring it again.
    """
    import mlflow.artifacts

    registry.client()
    with tempfile.TemporaryDirectory(prefix="nightjar-reference-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=REFERENCE_PATH, dst_path=tmp, tracking_uri=registry.tracking_uri
        )
        return pd.read_parquet(path)
