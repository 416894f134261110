"""Turning chunks of scoring rows into prediction rows: each row scored and decided by the version of its role
(the champion, or the challenger for the canary slice), with reason codes outside the lowest band.

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

SHADOW = "shadow"  # decided_by of the shadow table's rows: scored, never used for a decision


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


def make_scorer(spec: ModelSpec, role: str, version: VersionInfo, model: Any, *, reasons: bool) -> Scorer:
    """A scorer, with the spec's reason codes when ``reasons`` and ``reason_codes`` allows them (:func:`reasons_off`)."""
    explainer = None
    if reasons and spec.reason_codes.enabled is not False:
        explainer = explainer_for(model, *_inputs(spec, model), spec.reason_codes)
        if reasons_off(spec, explainer.method):
            explainer = None
    return Scorer(role, version, model, explainer)


def reasons_off(spec: ModelSpec, method: str | None) -> str | None:
    """Why the spec's reason codes are off for a version whose method would be ``method``; None when they are on."""
    codes = spec.reason_codes
    if codes.enabled is False:
        return "off: reason_codes.enabled is false in the spec"
    if codes.enabled is None and codes.method == "auto" and method == "occlusion":
        return (
            f"off by default for {spec.estimator.class_path.rpartition('.')[2]}: occlusion scores every row outside "
            "the lowest band once per feature (about 8x scoring alone, bench/model.py); set reason_codes.enabled: "
            "true to write them anyway"
        )
    return None


def decide_rows(spec: ModelSpec, scorer: Scorer, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, decisions, reasons) of ``rows`` by ``scorer``; reasons only outside the lowest band (else None)."""
    import numpy as np

    from assets.ml.evaluation import decide, model_input, score

    with not_retried(ValueError, KeyError):
        probabilities = score(scorer.model, rows, spec)
        decisions = decide(probabilities, spec.decision_bands)
        reasons = np.full(len(rows), None, dtype=object)
        outside = decisions != spec.decision_bands.names[0]
        if scorer.explainer is not None and outside.any():
            started = time.perf_counter()
            X = model_input(rows[outside], *_inputs(spec, scorer.model), spec.name)
            reasons[outside] = scorer.explainer.explain(X, probabilities[outside])
            scorer.reason_seconds += time.perf_counter() - started
            scorer.reason_rows += int(outside.sum())
    return probabilities, decisions, reasons


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


def score_chunks(
    spec: ModelSpec,
    scorer: Scorer,
    chunks: Iterator[pd.DataFrame],
    run_id: str,
    canary: tuple[float, Scorer] | None = None,
    scored_at: datetime | None = None,
) -> Iterator[pd.DataFrame]:
    """Prediction rows for each chunk of scoring rows: id, day, score, decision band, provenance, who decided and
    the reasons.

    ``scorer`` decides every row but those of the ``canary`` slice (its share, the challenger's scorer) when given.
    Rows the model cannot score (a feature column missing, a value that is not a number, a NaN score) fail as a
    :class:`DataFailure`: scoring them again gives the same answer."""
    import numpy as np
    import pandas as pd

    scored_at = pd.Timestamp(scored_at or datetime.now(UTC).replace(tzinfo=None))
    for chunk in chunks:
        n = len(chunk)
        sliced = in_canary(chunk[spec.entity_id], canary[0]) if canary else np.zeros(n, dtype=bool)
        out = {
            "score": np.empty(n, dtype="float64"),
            "decision": np.empty(n, dtype=object),
            "model_version": np.empty(n, dtype="int64"),
            DECIDED_BY_COLUMN: np.empty(n, dtype=object),
            REASONS_COLUMN: np.full(n, None, dtype=object),
        }
        for who, rows in ((scorer, ~sliced), (canary[1] if canary else None, sliced)):
            if who is None or not rows.any():
                continue
            part = chunk if rows.all() else chunk[rows]
            probabilities, decisions, reasons = decide_rows(spec, who, part)
            out["score"][rows], out["decision"][rows], out[REASONS_COLUMN][rows] = probabilities, decisions, reasons
            out["model_version"][rows], out[DECIDED_BY_COLUMN][rows] = who.version.version, who.role
        yield pd.DataFrame(
            {
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
        )
