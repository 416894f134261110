"""What kind of estimator a spec names (a classifier with ``predict_proba``, a regressor, neither), known at
definitions load without paying for scikit-learn there.

Importing the estimator's module costs about 2.5 s, and every Dagster process loads definitions: the code server and
each run. So the answer is cached in a small JSON file (``NIGHTJAR_DATA_DIR/cache/estimator_kinds.json``) per class,
params and installed version of its package (the package's ``__init__.py`` as found without importing it: its path,
size and modification time). A miss builds the estimator once (the first load after the spec or the package
changed) and stores the answer. Every load then checks the spec against it in microseconds, so a regressor named
for a 0/1 target fails the load, naming the file and field, instead of a training run after the set is built.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.ml.spec.fields import SpecError

if TYPE_CHECKING:
    from assets.ml.spec.model_spec import ModelSpec

CACHE_FILE = "estimator_kinds.json"


@dataclass(frozen=True)
class EstimatorKind:
    kind: str  # "classifier", "regressor" or "other" (scikit-learn's is_classifier / is_regressor)
    predict_proba: bool
    error: str | None = None  # why it could not be built (class missing, params that do not fit)


def estimator_kind(class_path: str, params: dict[str, Any], cache_dir: Path | None) -> EstimatorKind:
    """The kind of ``class_path`` built with ``params``: from the cache when the package is unchanged, else by
    building it (and caching the answer when ``cache_dir`` is given)."""
    key = _key(class_path, params)
    cache = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
    known = _read(cache) if cache is not None and key is not None else {}
    if key in known:
        return EstimatorKind(**known[key])
    found = _inspect(class_path, params)
    if cache is not None and key is not None:
        _write(cache, {**_read(cache), key: asdict(found)})
    return found


def _key(class_path: str, params: dict[str, Any]) -> str | None:
    """The class, its params and its package's version as installed; None if the package is not found."""
    try:
        spec = importlib.util.find_spec(class_path.split(".")[0])  # a top-level package: found, not imported
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    stat = os.stat(spec.origin)
    return json.dumps([class_path, params, spec.origin, stat.st_size, stat.st_mtime_ns], sort_keys=True, default=str)


def _inspect(class_path: str, params: dict[str, Any]) -> EstimatorKind:
    module_name, _, class_name = class_path.rpartition(".")
    try:
        estimator_cls = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError as error:
        return EstimatorKind("other", False, f"cannot import '{module_name}': {error}")
    if estimator_cls is None:
        return EstimatorKind("other", False, f"module '{module_name}' has no '{class_name}'")
    try:
        estimator = estimator_cls(**params)
    except TypeError as error:
        return EstimatorKind("other", False, f"estimator.params do not fit {class_path}: {error}")
    from sklearn.base import is_classifier, is_regressor

    kind = "classifier" if is_classifier(estimator) else "regressor" if is_regressor(estimator) else "other"
    return EstimatorKind(kind, hasattr(estimator, "predict_proba"))


def _read(cache: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or damaged: rebuilt from the estimators
    return data if isinstance(data, dict) else {}


def _write(cache: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Written to a temporary file and renamed into place: processes loading at once never read half a file."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
    except OSError:
        return  # a read-only data dir: the next load inspects again, which is slower, not wrong
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def check_estimator(spec: ModelSpec, source: str, cache_dir: Path | None) -> None:
    """Fail, naming the spec file and field, when its estimator cannot be built or does not fit the spec's task: a
    regressor for ``regression``, a classifier with ``predict_proba`` for ``binary`` and ``multiclass``."""
    class_path = spec.estimator.class_path
    found = estimator_kind(class_path, spec.estimator.params, cache_dir)
    if found.error:
        field = "estimator.params" if found.error.startswith("estimator.params") else "estimator.class"
        raise SpecError(f"{source}: field '{field}': {found.error.removeprefix('estimator.params ')}")
    what = {"regressor": "a regressor", "other": "neither a classifier nor a regressor"}.get(
        found.kind, "a classifier" if found.predict_proba else "a classifier without predict_proba"
    )
    if spec.task == "regression":
        if found.kind != "regressor":
            raise SpecError(
                f"{source}: field 'estimator.class': '{class_path}' is {what}; task regression predicts the number "
                f"'{spec.target}', which needs a scikit-learn regressor (e.g. "
                "sklearn.ensemble.HistGradientBoostingRegressor, or a pipeline ending in one)"
            )
        return
    if found.kind != "classifier" or not found.predict_proba:
        label = "a 0/1 label scored by its probability" if spec.task == "binary" else "one of several classes"
        hint = " (or task: regression for a number)" if found.kind == "regressor" else ""
        raise SpecError(
            f"{source}: field 'estimator.class': '{class_path}' is {what}; the spec's target '{spec.target}' is "
            f"{label} (task {spec.task}), which needs a scikit-learn classifier with predict_proba (e.g. "
            f"sklearn.ensemble.HistGradientBoostingClassifier, or a pipeline ending in one){hint}"
        )
