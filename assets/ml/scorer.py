"""Turning chunks of scoring rows into prediction rows: each row scored and decided by the version of its role
(the champion, or the challenger for the canary slice), with reason codes where :func:`explained_rows` says.

What a row holds follows the spec's task (:func:`assets.ml.evaluation.predict`): ``score`` is P(1) (binary), the
predicted value (regression) or the predicted class's probability (multiclass); ``decision`` is the score's band
(binary, regression with ``decision_bands``; NULL for regression without) or the predicted class renamed by
``class_decisions`` (multiclass, which also writes ``predicted_class`` and ``class_probabilities``, a JSON object
in the model's class order).

:class:`InputRows` keeps the model input of each chunk as the scorers read it (``predictions.<model>_inputs``), so
a decision can be replayed later from what was scored, not from a mart row rebuilt since (:mod:`assets.ml.replay`).

:func:`assets.ml.inference.score_window` resolves the versions and writes the rows; this module only computes them.
numpy and pandas are imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from assets.ml.canary import DECIDED_BY_COLUMN, in_canary
from assets.ml.reasons import REASONS_COLUMN, ReasonExplainer, explainer_for
from assets.ml.spec import ModelSpec
from resources.failures import not_retried
from resources.registry import VersionInfo

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from assets.ml.evaluation import Predictions

SHADOW = "shadow"  # decided_by of the shadow table's rows: scored, never used for a decision
# Multiclass prediction rows only: the predicted class, and every class's probability as a JSON object.
PREDICTED_CLASS_COLUMN = "predicted_class"
CLASS_PROBABILITIES_COLUMN = "class_probabilities"


@dataclass
class Scorer:
    """A version scoring rows in a role (``champion``, ``challenger`` in the canary, or ``shadow``): its loaded
    model and reason-code explainer (None: no reason codes), and the seconds and rows its reason codes took."""

    role: str
    version: VersionInfo
    model: Any
    explainer: ReasonExplainer | None = None
    reason_seconds: float = field(default=0.0, compare=False)
    reason_rows: int = field(default=0, compare=False)


def _inputs(spec: ModelSpec, model: Any) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns the version was trained on; the spec's if it does not say."""
    from assets.ml.evaluation import inputs_of

    return inputs_of(model) or (spec.features.numeric, spec.features.categorical)


def read_columns(spec: ModelSpec, scorers: list[Scorer]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns any of ``scorers`` reads (each version its own, :func:`_inputs`), each
    once, in order; a column numeric for one version and categorical for another counts as numeric."""
    numeric: list[str] = []
    categorical: list[str] = []
    for scorer in scorers:
        version_numeric, version_categorical = _inputs(spec, scorer.model)
        numeric += [c for c in version_numeric if c not in numeric]
        categorical += [c for c in version_categorical if c not in categorical]
    return numeric, [c for c in categorical if c not in numeric]


def make_scorer(spec: ModelSpec, role: str, version: VersionInfo, model: Any, *, reasons: bool) -> Scorer:
    """A scorer, with the spec's reason codes when ``reasons`` and ``reason_codes`` allows them (:func:`reasons_off`)."""
    explainer = None
    if reasons and spec.reason_codes.enabled is not False:
        explainer = explainer_for(model, *_inputs(spec, model), spec.reason_codes, spec.task)
        if reasons_off(spec, explainer.method):
            explainer = None
    return Scorer(role, version, model, explainer)


def reasons_off(spec: ModelSpec, method: str | None) -> str | None:
    """Why the spec's reason codes are off for a version whose method would be ``method``; None when they are on."""
    codes = spec.reason_codes
    if codes.enabled is False:
        return "off: reason_codes.enabled is false in the spec"
    if codes.enabled is None and codes.method == "auto" and method == "occlusion":
        which = explained_rows_described(spec)
        return (
            f"off by default for {spec.estimator.class_path.rpartition('.')[2]}: occlusion scores every row"
            f"{' ' + which if which else ''} once per feature (about 8x scoring alone, bench/model.py); set "
            "reason_codes.enabled: true to write them anyway"
        )
    return None


def explained_rows_described(spec: ModelSpec) -> str:
    """Which rows get reason codes (:func:`explained_rows`), in words; "" for every row."""
    if spec.decision_bands is not None:
        return "outside the lowest band"
    if spec.review_band is not None:
        return f"of decision '{spec.review_band}'"
    return ""


def explained_rows(spec: ModelSpec, decisions: np.ndarray, predicted_class: np.ndarray | None) -> np.ndarray:
    """The rows that get reason codes: outside the lowest band where the spec has bands (binary, banded
    regression); else the rows of the spec's ``review_band`` (for multiclass, its decision or predicted class, as
    the review queue takes them), else every row."""
    import numpy as np

    if spec.decision_bands is not None:
        return decisions != spec.decision_bands.names[0]
    if spec.review_band is None:
        return np.ones(len(decisions), dtype=bool)
    chosen = decisions == spec.review_band
    if predicted_class is not None:
        chosen |= predicted_class == spec.review_band
    return np.asarray(chosen, dtype=bool)


def decide_predictions(spec: ModelSpec, predictions: Predictions) -> np.ndarray:
    """Each row's decision: its score's band (binary; regression with ``decision_bands``), its predicted class
    renamed by ``class_decisions`` (multiclass), or None (regression without bands). A NaN score is an error."""
    import numpy as np

    from assets.ml.evaluation import decide

    if spec.decision_bands is not None:
        return decide(predictions.score, spec.decision_bands)
    missing = int(np.isnan(predictions.score).sum())
    if missing:
        raise ValueError(f"model spec '{spec.name}': {missing} NaN score(s)")
    if predictions.predicted_class is None:
        return np.full(len(predictions.score), None, dtype=object)
    mapping = spec.class_decisions
    return np.asarray([mapping.get(c, c) for c in predictions.predicted_class], dtype=object)


def class_probabilities_json(predictions: Predictions) -> np.ndarray:
    """Each row's class probabilities as a JSON object (keys in the model's class order): a VARCHAR every engine
    stores and reads alike."""
    import json

    import numpy as np

    classes = predictions.classes or []
    return np.asarray(
        [json.dumps(dict(zip(classes, row, strict=True))) for row in predictions.probabilities.tolist()], dtype=object
    )


def decide_rows(spec: ModelSpec, scorer: Scorer, rows: pd.DataFrame) -> tuple[Predictions, np.ndarray, np.ndarray]:
    """(predictions, decisions, reasons) of ``rows`` by ``scorer``; reasons only for :func:`explained_rows` (else
    None).

    Where the reason codes work on the pipeline's transformed input (tree, linear), the chunk is transformed once:
    the pipeline's estimator predicts from it (the numbers ``predict_proba`` gives, which does the same) and the
    explained rows are taken from it, not transformed again."""
    import numpy as np

    from assets.ml.evaluation import model_input, predict, predict_transformed

    explainer = scorer.explainer
    estimator = explainer.estimator if explainer is not None else None
    with not_retried(ValueError, KeyError):
        transformed = None
        if estimator is not None:
            transformed = explainer.transform(model_input(rows, *_inputs(spec, scorer.model), spec.name))
            predictions = predict_transformed(estimator, transformed, spec)
        else:
            predictions = predict(scorer.model, rows, spec)
        decisions = decide_predictions(spec, predictions)
        reasons = np.full(len(rows), None, dtype=object)
        explained = explained_rows(spec, decisions, predictions.predicted_class)
        if explainer is not None and explained.any():
            started = time.perf_counter()
            chosen = predictions.take(explained)
            if transformed is not None:
                reasons[explained] = explainer.explain(
                    None, chosen.score, chosen.predicted_class, transformed=transformed[explained]
                )
            else:
                X = model_input(rows[explained], *_inputs(spec, scorer.model), spec.name)
                reasons[explained] = explainer.explain(X, chosen.score, chosen.predicted_class)
            scorer.reason_seconds += time.perf_counter() - started
            scorer.reason_rows += int(explained.sum())
    return predictions, decisions, reasons


@dataclass(frozen=True)
class ScoreRows:
    """:func:`score_chunks` as one picklable callable of the chunks: what a warehouse runs where the data is
    (``Warehouse.replace_window_mapped``; on Spark, on the executors)."""

    spec: ModelSpec
    scorer: Scorer
    run_id: str
    canary: tuple[float, Scorer] | None = None
    scored_at: datetime | None = None

    def __call__(self, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return score_chunks(self.spec, self.scorer, chunks, self.run_id, self.canary, self.scored_at)


@dataclass(frozen=True)
class InputRows:
    """The model input of each chunk, as the run's scorers read it, kept for replay: the id, the day, each column
    of ``numeric`` as the float64 the model is handed (:func:`assets.ml.evaluation.model_input`), each of
    ``categorical`` as read (a missing value NULL) and the run's ``scored_at``, which ties a day's input to its
    prediction rows. Picklable, like :class:`ScoreRows`: an engine that computes runs it where the data is."""

    model: str
    entity_id: str
    timestamp: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    scored_at: datetime

    def __call__(self, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        scored_at = pd.Timestamp(self.scored_at)
        for chunk in chunks:
            with not_retried(ValueError, KeyError):
                missing = [c for c in (*self.numeric, *self.categorical) if c not in chunk.columns]
                if missing:
                    raise KeyError(f"model spec '{self.model}': frame has no feature column(s) {missing}")
                frame = {
                    self.entity_id: chunk[self.entity_id].to_numpy(),
                    self.timestamp: pd.to_datetime(chunk[self.timestamp]).to_numpy(),
                }
                for c in self.numeric:
                    frame[c] = pd.to_numeric(chunk[c], errors="raise").astype("float64").to_numpy()
                for c in self.categorical:
                    column = chunk[c].astype(object)
                    frame[c] = column.where(column.notna(), None).to_numpy()
                frame["scored_at"] = scored_at
            yield pd.DataFrame(frame)


def score_chunks(
    spec: ModelSpec,
    scorer: Scorer,
    chunks: Iterator[pd.DataFrame],
    run_id: str,
    canary: tuple[float, Scorer] | None = None,
    scored_at: datetime | None = None,
) -> Iterator[pd.DataFrame]:
    """Prediction rows for each chunk of scoring rows: id, day, score, decision, provenance, who decided and the
    reasons (multiclass: also the predicted class and the class probabilities), in the columns' declared order
    (:func:`assets.ml.inference.prediction_columns`).

    ``scorer`` decides every row but those of the ``canary`` slice (its share, the challenger's scorer) when given.
    Rows the model cannot score (a feature column missing, a value that is not a number, a NaN score) fail as a
    :class:`DataFailure`: scoring them again gives the same answer."""
    import numpy as np
    import pandas as pd

    scored_at = pd.Timestamp(scored_at or datetime.now(UTC).replace(tzinfo=None))
    multiclass = spec.task == "multiclass"
    for chunk in chunks:
        n = len(chunk)
        sliced = in_canary(chunk[spec.entity_id], canary[0]) if canary else np.zeros(n, dtype=bool)
        out = {
            "score": np.empty(n, dtype="float64"),
            "decision": np.empty(n, dtype=object),
            "model_version": np.empty(n, dtype="int64"),
            DECIDED_BY_COLUMN: np.empty(n, dtype=object),
            REASONS_COLUMN: np.full(n, None, dtype=object),
            PREDICTED_CLASS_COLUMN: np.full(n, None, dtype=object),
            CLASS_PROBABILITIES_COLUMN: np.full(n, None, dtype=object),
        }
        for who, rows in ((scorer, ~sliced), (canary[1] if canary else None, sliced)):
            if who is None or not rows.any():
                continue
            part = chunk if rows.all() else chunk[rows]
            predictions, decisions, reasons = decide_rows(spec, who, part)
            out["score"][rows], out["decision"][rows], out[REASONS_COLUMN][rows] = predictions.score, decisions, reasons
            out["model_version"][rows], out[DECIDED_BY_COLUMN][rows] = who.version.version, who.role
            if multiclass:
                out[PREDICTED_CLASS_COLUMN][rows] = predictions.predicted_class
                out[CLASS_PROBABILITIES_COLUMN][rows] = class_probabilities_json(predictions)
        frame = {
            spec.entity_id: chunk[spec.entity_id].to_numpy(),
            spec.timestamp: pd.to_datetime(chunk[spec.timestamp]).to_numpy(),
            "score": out["score"],
            "decision": out["decision"],
            "model_name": spec.name,
            "model_version": out["model_version"],
            "dagster_run_id": run_id,
            "scored_at": scored_at,
            DECIDED_BY_COLUMN: out[DECIDED_BY_COLUMN],
            REASONS_COLUMN: out[REASONS_COLUMN],
        }
        if multiclass:
            frame[PREDICTED_CLASS_COLUMN] = out[PREDICTED_CLASS_COLUMN]
            frame[CLASS_PROBABILITIES_COLUMN] = out[CLASS_PROBABILITIES_COLUMN]
        yield pd.DataFrame(frame)
