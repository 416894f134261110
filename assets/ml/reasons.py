"""Reason codes: for a scored row, the features that pushed its score up the most (the spec's ``reason_codes``).

What "its score" is depends on the spec's task: the probability of class 1 (binary), the predicted value
(regression), the probability of the row's predicted class (multiclass); the ``tree`` method measures the score the
trees add up (see below), which moves with it.

- ``tree`` (a scikit-learn tree model: HistGradientBoosting*, GradientBoosting*, RandomForest*, ExtraTrees*,
  DecisionTree*): exact path attributions (Saabas, :mod:`assets.ml.tree_paths`). Each split on a row's path in
  each tree credits its feature with the change of the expected value from the node to the child the row took;
  the credits add up to ``f(row) - f(expected)``, where ``f(expected)`` is the model's mean output over its training
  rows (not a reference applicant). ``f`` is the raw score the trees sum for boosting (binary: the log-odds of
  class 1; multiclass: the row's class's raw score; regression: the prediction, on the link scale for
  poisson / gamma) and the averaged prediction for forests and single trees (the probability of class 1 or of the
  row's class, the value). It costs well under one more prediction of the explained rows, so it is on by default.
- ``linear`` (a linear estimator, e.g. LogisticRegression, Ridge): exact. In the transformed space the log-odds
  (binary), the predicted value (regression) or the predicted class's logit (multiclass, that class's row of
  ``coef_``) are ``coef . z + b``, so ``f(row) - f(reference) = sum_j coef_j * (z_j - z_ref_j)``; the terms of one
  feature (its one-hot columns) are summed back to it. One matrix product per batch (per predicted class).
- ``occlusion`` (any other estimator, and a tree model the tree method cannot walk: HistGradientBoosting with
  native categorical splits or trees of more than 64 leaves, a forest whose path tables would be too large): each
  feature in turn is set to its reference value and the row is scored again; the drop in score is that feature's
  push. One extra prediction per feature, so it is computed only for the rows that get reasons
  (:func:`assets.ml.scorer.explained_rows`), in vectorized batches.

``linear`` and ``occlusion`` measure a row against one reference applicant, read from the fitted pipeline itself
(no training data is needed at scoring): the training median of each numeric feature and the most frequent
category of each categorical one (the statistics of the pipeline's imputers,
:func:`assets.ml.training.build_pipeline`); ``tree`` against the model's expected output (:data:`EXPECTED`).

A row names at most ``top`` features, strongest first, and only features that pushed its score up (a positive
attribution); a row nothing pushed up says :data:`NONE_ABOVE_REFERENCE`.

numpy and pandas are imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assets.ml.spec import ReasonCodes, SpecError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REASONS_COLUMN = "reasons"
NONE_ABOVE_REFERENCE = "(none above the reference)"
REFERENCE = "training median of each numeric feature, most frequent category of each categorical feature"
EXPECTED = "the model's expected output (its mean over the training rows, by the trees' leaf counts)"
_LOG = logging.getLogger("nightjar.reasons")


def raw_pipeline(model: Any) -> Any:
    """The fitted scikit-learn pipeline behind an MLflow pyfunc model (or the pipeline itself)."""
    return model.get_raw_model() if hasattr(model, "get_raw_model") else model


@dataclass
class ReasonExplainer:
    """Reason codes of one fitted pipeline: ``explain(X, scores)`` on rows prepared by
    :func:`assets.ml.evaluation.model_input` with ``features`` = numeric + categorical, in that order; for task
    multiclass also each row's predicted class (``explain(X, scores, predicted_class)``)."""

    method: str  # "linear", "tree" or "occlusion"
    pipeline: Any
    features: list[str]
    reference: dict[str, Any]  # feature -> its reference value, in the raw (untransformed) space
    top: int
    # linear only: z @ weights - offset is the per-feature attribution (weights: transformed columns x features);
    # multiclass: one such pair per class, stacked in ``classes`` order
    weights: np.ndarray | None = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    task: str = "binary"
    classes: list[str] | None = None  # multiclass: the pipeline's classes, in its predict_proba column order
    # tree only: the explained score columns (one; multiclass: one per class in ``classes`` order)
    columns: list[Any] | None = field(default=None, repr=False)

    @property
    def against(self) -> str:
        """What the attributions are measured from, in words (the run's metadata shows it)."""
        return EXPECTED if self.method == "tree" else REFERENCE

    @property
    def estimator(self) -> Any | None:
        """The pipeline's final estimator where the attributions work on the transformed input (``linear``,
        ``tree``) and the pipeline is exactly preprocess then model: the scorer then transforms a chunk once
        (:meth:`transform`) for both the prediction and the reasons; None otherwise."""
        if self.method == "occlusion" or list(getattr(self.pipeline, "named_steps", {})) != ["preprocess", "model"]:
            return None
        return self.pipeline.named_steps["model"]

    def transform(self, X: pd.DataFrame) -> Any:
        """``X`` as the pipeline hands it to its estimator (what ``Pipeline.predict_proba`` computes first)."""
        return self.pipeline.named_steps["preprocess"].transform(X)

    def attributions(
        self,
        X: pd.DataFrame | None,
        scores: np.ndarray,
        predicted_class: np.ndarray | None = None,
        transformed: Any = None,
    ) -> np.ndarray:
        """(rows, features): how much each feature pushed each row's score above the reference's. ``transformed``:
        the rows already through :meth:`transform` (``linear`` and ``tree``; then ``X`` is not read)."""
        import numpy as np

        n = len(X) if transformed is None else transformed.shape[0]
        column = self._class_columns(predicted_class, n)
        if self.method in ("linear", "tree"):
            transformed = np.asarray(self.transform(X) if transformed is None else transformed, dtype="float64")
        if self.method == "linear":
            if column is None:
                return transformed @ self.weights - self.offset
            out = np.empty((n, len(self.features)), dtype="float64")
            for k in np.unique(column):
                rows = column == k
                out[rows] = transformed[rows] @ self.weights[k] - self.offset[k]
            return out
        if self.method == "tree":
            if column is None:
                return self.columns[0].attributions(transformed)
            out = np.empty((n, len(self.features)), dtype="float64")
            for k in np.unique(column):
                rows = column == k
                out[rows] = self.columns[k].attributions(transformed[rows])
            return out
        out = np.empty((len(X), len(self.features)), dtype="float64")
        for j, feature in enumerate(self.features):
            occluded = X.copy()
            occluded[feature] = self.reference[feature]
            out[:, j] = np.asarray(scores, dtype="float64") - self._scores(occluded, column)
        return out

    def explain(
        self,
        X: pd.DataFrame | None,
        scores: np.ndarray,
        predicted_class: np.ndarray | None = None,
        transformed: Any = None,
    ) -> np.ndarray:
        """Each row's reason codes, e.g. ``"debt_to_income, credit_score, loan_amount"`` (an object array)."""
        return top_reasons(self.attributions(X, scores, predicted_class, transformed), self.features, self.top)

    def _class_columns(self, predicted_class: np.ndarray | None, n: int) -> np.ndarray | None:
        """Multiclass: each row's predicted class as its column in ``classes``; None for the other tasks."""
        import numpy as np

        if self.task != "multiclass":
            return None
        if predicted_class is None or len(predicted_class) != n:
            raise ValueError("reason codes of a multiclass model need each row's predicted class")
        index = {c: i for i, c in enumerate(self.classes or [])}
        unknown = sorted({str(c) for c in predicted_class if str(c) not in index})
        if unknown:
            raise ValueError(f"reason codes: predicted class(es) {unknown} are not among the model's {self.classes}")
        return np.fromiter((index[str(c)] for c in predicted_class), dtype="int64", count=n)

    def _scores(self, X: pd.DataFrame, column: np.ndarray | None) -> np.ndarray:
        """The score of each row as the task defines it, by the raw pipeline."""
        import numpy as np

        if self.task == "regression":
            return np.asarray(self.pipeline.predict(X), dtype="float64").reshape(len(X), -1)[:, 0]
        proba = np.asarray(self.pipeline.predict_proba(X), dtype="float64")
        return proba[:, 1] if column is None else proba[np.arange(len(X)), column]


def top_reasons(attributions: np.ndarray, names: list[str], top: int) -> np.ndarray:
    """Per row, the names of the ``top`` largest positive attributions, strongest first, joined by ", ".

    The strings are built once per distinct choice of features (a few hundred at most in practice), not per row."""
    import numpy as np

    n, width = attributions.shape
    if n == 0:
        return np.empty(0, dtype=object)
    top = min(top, width)
    # The strongest first (the first column among equals), one argmax per place: width stands for no feature
    # (this one and the rest did not push the score up; NaN never does).
    left = np.where(np.isnan(attributions), -np.inf, attributions)
    order = np.empty((n, top), dtype=np.int64)
    rows = np.arange(n)
    for k in range(top):
        best = left.argmax(axis=1)
        order[:, k] = np.where(left[rows, best] > 0, best, width)
        left[rows, best] = -np.inf
    if (width + 1) ** top < 2**62:  # one integer per choice, in base width + 1
        keys = order @ ((width + 1) ** np.arange(top, dtype=np.int64))
        chosen, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        choices = order[first]
    else:
        choices, inverse = np.unique(order, axis=0, return_inverse=True)
    labels = [*names, ""]
    said = [", ".join(labels[j] for j in row if j < width) or NONE_ABOVE_REFERENCE for row in choices.tolist()]
    return np.asarray(said, dtype=object)[inverse.reshape(-1)]


def _imputer_statistics(preprocess: Any, part: str) -> list[Any]:
    transformer = preprocess.named_transformers_.get(part)
    if transformer is None or transformer == "drop":
        return []
    imputer = getattr(transformer, "named_steps", {}).get("impute")
    if imputer is None or not hasattr(imputer, "statistics_"):
        raise SpecError(
            f"reason_codes: the pipeline's '{part}' transformer has no fitted 'impute' step to take the reference from"
        )
    return list(imputer.statistics_)


def _output_owners(preprocess: Any, features: list[str], method: str = "linear") -> list[int]:
    """For each transformed column, the index in ``features`` of the feature it comes from."""
    owners: list[int] = []
    for name, transformer, columns in preprocess.transformers_:
        width = preprocess.output_indices_[name].stop - preprocess.output_indices_[name].start
        if width == 0:
            continue
        encoder = getattr(transformer, "named_steps", {}).get("onehot")
        widths = [len(c) for c in encoder.categories_] if encoder is not None else [1] * len(columns)
        if sum(widths) != width or encoder is not None and getattr(encoder, "drop_idx_", None) is not None:
            raise SpecError(
                f"reason_codes.method {method}: cannot map the {width} output columns of transformer '{name}' back to "
                f"its features {list(columns)}"
            )
        for column, w in zip(columns, widths, strict=True):
            owners += [features.index(column)] * w
    return owners


def _linear_rows(estimator: Any, task: str, classes: list[str] | None) -> np.ndarray | None:
    """The rows of ``coef_`` the linear method uses (one for binary and regression, one per class for multiclass,
    in ``classes`` order); None when the estimator has no such coefficients."""
    import numpy as np

    coef = np.asarray(getattr(estimator, "coef_", np.empty((0, 0))), dtype="float64")
    if task == "binary":
        return coef if coef.ndim == 2 and coef.shape[0] == 1 else None
    if task == "regression":
        return coef.reshape(1, -1) if coef.ndim == 1 or (coef.ndim == 2 and coef.shape[0] == 1) else None
    if coef.ndim != 2 or not classes:
        return None
    if coef.shape[0] == len(classes):
        return coef
    if coef.shape[0] == 1 and len(classes) == 2:  # scikit-learn's one row for two classes: the second's logit
        return np.vstack([-coef[0], coef[0]])
    return None


def explainer_for(
    model: Any, numeric: list[str], categorical: list[str], codes: ReasonCodes, task: str = "binary"
) -> ReasonExplainer:
    """The explainer of a fitted model (pyfunc or pipeline) trained on ``numeric`` + ``categorical``, for the
    spec's ``task`` (what a row's score is)."""
    import numpy as np
    import pandas as pd

    from assets.ml.evaluation import class_names
    from assets.ml.tree_paths import is_tree_ensemble

    pipeline = raw_pipeline(model)
    steps = getattr(pipeline, "named_steps", {})
    preprocess, estimator = steps.get("preprocess"), steps.get("model")
    if preprocess is None or estimator is None:
        raise SpecError("reason_codes: the model is not a pipeline of a 'preprocess' and a 'model' step")
    features = [*numeric, *categorical]
    values = _imputer_statistics(preprocess, "numeric") + _imputer_statistics(preprocess, "categorical")
    reference = dict(zip(features, values, strict=True))
    classes = [str(c) for c in class_names(pipeline.classes_)] if task == "multiclass" else None
    rows = _linear_rows(estimator, task, classes)
    method = codes.method
    if method == "auto":
        method = "linear" if rows is not None else "tree" if is_tree_ensemble(estimator) else "occlusion"
    if method == "tree":
        explained = _tree_explainer(pipeline, estimator, features, reference, codes, task, classes)
        if explained is not None or codes.method == "tree":
            return explained
        method = "occlusion"
    if method == "occlusion":
        return ReasonExplainer("occlusion", pipeline, features, reference, codes.top, task=task, classes=classes)
    if rows is None:
        wanted = "a row of coef_ per class" if task == "multiclass" else "a single row of coef_"
        raise SpecError(
            f"reason_codes.method linear: estimator {type(estimator).__name__} has no {wanted} (task {task}); "
            "use method occlusion (or auto)"
        )
    owners = _output_owners(preprocess, features)
    if len(owners) != rows.shape[1]:
        raise SpecError(f"reason_codes.method linear: {len(owners)} transformed columns but {rows.shape[1]} coef_")
    membership = np.zeros((len(owners), len(features)))
    membership[np.arange(len(owners)), owners] = 1.0
    weights = rows[:, :, None] * membership  # (rows of coef_, transformed columns, features)
    reference_row = pd.DataFrame({f: [reference[f]] for f in features})
    reference_row[numeric] = reference_row[numeric].astype("float64")
    reference_row[categorical] = reference_row[categorical].astype(object)
    z_reference = np.asarray(preprocess.transform(reference_row), dtype="float64")[0]
    offset = np.einsum("t,ktf->kf", z_reference, weights)
    if task != "multiclass":
        weights, offset = weights[0], offset[0]
    return ReasonExplainer("linear", pipeline, features, reference, codes.top, weights, offset, task, classes)


def _tree_explainer(
    pipeline: Any,
    estimator: Any,
    features: list[str],
    reference: dict[str, Any],
    codes: ReasonCodes,
    task: str,
    classes: list[str] | None,
) -> ReasonExplainer | None:
    """The ``tree`` explainer of a scikit-learn tree model; None (logged) where ``auto`` picked it and the trees
    cannot be walked, so that occlusion takes over; a :class:`SpecError` where the spec asked for ``tree``."""
    from assets.ml.tree_paths import NotExplainable, is_tree_ensemble, score_columns

    name = type(estimator).__name__
    if not is_tree_ensemble(estimator):
        raise SpecError(
            f"reason_codes.method tree: estimator {name} is not a scikit-learn tree model (HistGradientBoosting*, "
            "GradientBoosting*, RandomForest*, ExtraTrees*, DecisionTree*); use method occlusion (or auto)"
        )
    preprocess = pipeline.named_steps["preprocess"]
    owners = _output_owners(preprocess, features, "tree")
    if len(owners) != getattr(estimator, "n_features_in_", len(owners)):
        raise SpecError(
            f"reason_codes.method tree: {len(owners)} transformed columns but {name} has {estimator.n_features_in_}"
        )
    try:
        columns = score_columns(estimator, owners, len(features), task)
    except NotExplainable as why:
        if codes.method == "tree":
            raise SpecError(f"reason_codes.method tree: {why}; use method occlusion (or auto)") from why
        _LOG.warning("reason codes of %s: the tree method does not apply (%s); occlusion is used instead", name, why)
        return None
    return ReasonExplainer(
        "tree", pipeline, features, reference, codes.top, task=task, classes=classes, columns=columns
    )
