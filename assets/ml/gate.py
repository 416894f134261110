"""The champion/challenger gate: both versions scored on the same recent labeled holdout, judged by the spec.

The gate only observes: it says whether a version may serve (the floor, the tolerance, the guardrails) and whether
it beats the champion by enough to replace it without a person (``promotion.min_improvement``). A spec with a
``fairness`` section also has the version's gaps between segments measured on the holdout (:mod:`assets.ml.fairness`):
a gap above its limit refuses the version, the first one too. Moving the
``champion`` alias is the ``<model>/champion`` asset's job (:mod:`assets.ml.champion_assets`, which decides with
:mod:`assets.ml.champion`); the check that runs the gate is :mod:`assets.ml.gate_checks`.

Every comparison of a challenger with the champion goes through :func:`improvement`, which knows the direction of
each metric: for a lower-is-better primary metric (rmse, mae, log_loss, ...) ``promotion.min_primary`` is a ceiling,
and being better means being lower. Both versions are measured as training measures them, by the spec's task
(:func:`assets.ml.evaluation.predict`, :func:`assets.ml.evaluation.task_metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from assets.ml.promotion import (
    GATE_BEATS_TAG,
    GATE_CHAMPION_TAG,
    GATE_IMPROVEMENT_TAG,
    GATE_PASSED_TAG,
    GATE_REASON_TAG,
)
from assets.ml.spec import LOWER_IS_BETTER, METRICS, ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from assets.ml.evaluation import Predictions
    from assets.ml.fairness import FairnessResult
    from resources.registry import ModelRegistry, VersionInfo

# Metrics are compared after rounding to this many decimals: 0.785 against 0.79 is a gap of exactly 0.005, not
# 0.005000000000000004, so a bound written in the spec holds as written.
COMPARISON_DECIMALS = 12


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better ``challenger`` is than ``champion`` on ``metric``: positive when better, negative when worse,
    0.0 for a tie, whichever way the metric points (``LOWER_IS_BETTER``: rmse, mae, log_loss, brier, ...).

    NaN when either side is NaN: such a pair cannot be compared, and every caller must treat it as "not good
    enough" (a NaN never lets a challenger pass, nor beat the champion).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}' (known: {sorted(METRICS)})")
    if math.isnan(challenger) or math.isnan(champion):
        return math.nan
    gain = champion - challenger if metric in LOWER_IS_BETTER else challenger - champion
    return round(gain, COMPARISON_DECIMALS)


@dataclass(frozen=True)
class GateVerdict:
    passed: bool  # may serve: clears the floor, within tolerance and guardrails of the champion
    reason: str
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] = field(default_factory=dict)
    champion_version: int | None = None  # the champion it was compared with; None: there was none
    gain: float | None = None  # improvement() on the primary metric; None without a champion
    beats_champion: bool = False  # passed, and gain > min_improvement (or no champion): may replace it by itself
    fairness: FairnessResult | None = None  # its gaps between segments on the holdout; None: the spec has no limits

    def tags(self) -> dict[str, str]:
        """What the gate records on the version it judged (read back by the champion asset and promotions)."""
        return {
            GATE_PASSED_TAG: str(self.passed).lower(),
            GATE_REASON_TAG: self.reason,
            GATE_CHAMPION_TAG: "none" if self.champion_version is None else str(self.champion_version),
            GATE_IMPROVEMENT_TAG: "none" if self.gain is None else repr(self.gain),
            GATE_BEATS_TAG: str(self.beats_champion).lower(),
            **({} if self.fairness is None else self.fairness.tags()),
        }


def judge(
    spec: ModelSpec,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: int | None = None,
) -> GateVerdict:
    """Pure verdict from metrics: the floor first, then primary metric and guardrails against the champion, then
    whether the challenger beats the champion by more than ``promotion.min_improvement``."""
    policy = spec.promotion
    primary = spec.evaluation.primary_metric
    value = challenger[primary]
    if math.isnan(value):
        why = " (a single class?)" if spec.task == "binary" else ""
        reason = f"{primary} is undefined on the holdout{why}: the version cannot be judged"
        return GateVerdict(False, reason, challenger, champion or {}, champion_version)
    lower_is_better = primary in LOWER_IS_BETTER
    bound = (
        f"the ceiling {policy.min_primary} (lower is better)" if lower_is_better else f"the floor {policy.min_primary}"
    )
    if value > policy.min_primary if lower_is_better else value < policy.min_primary:
        reason = f"{primary} {value:.4f} does not clear {bound}"
        return GateVerdict(False, reason, challenger, champion or {}, champion_version)
    if champion is None:
        reason = f"{primary} {value:.4f} clears {bound}; there is no champion yet"
        return GateVerdict(True, reason, challenger, {}, None, None, beats_champion=True)

    failures = []
    gain = improvement(primary, value, champion[primary])
    if math.isnan(gain):
        failures.append(f"{primary} cannot be compared with the champion's ({champion[primary]}) on this holdout")
    elif gain < -policy.tolerance:
        failures.append(
            f"{primary} {value:.4f} trails the champion's {champion[primary]:.4f} by {-gain:.4f} "
            f"(tolerance {policy.tolerance})"
        )
    for metric, allowed in policy.guardrails.items():
        guard = improvement(metric, challenger[metric], champion[metric])
        if math.isnan(guard):
            failures.append(f"{metric} cannot be compared with the champion's ({champion[metric]}) on this holdout")
        elif guard < -allowed:
            failures.append(
                f"{metric} {challenger[metric]:.4f} is {-guard:.4f} worse than the champion's "
                f"{champion[metric]:.4f} (allowed {allowed})"
            )
    if failures:
        return GateVerdict(False, "; ".join(failures), challenger, champion, champion_version, gain)
    compared = f"{primary} {value:.4f} vs champion {champion[primary]:.4f} ({gain:+.4f})"
    beats = gain > policy.min_improvement
    if beats:
        reason = (
            f"{compared}: beats the champion by more than min_improvement {policy.min_improvement}; guardrails held"
        )
    else:
        reason = (
            f"{compared}: within tolerance {policy.tolerance} and guardrails, but does not beat the champion "
            f"by more than min_improvement {policy.min_improvement}: the champion stays unless a person "
            "promotes this version"
        )
    return GateVerdict(True, reason, challenger, champion, champion_version, gain, beats_champion=beats)


def with_fairness(verdict: GateVerdict, fairness: FairnessResult) -> GateVerdict:
    """``verdict`` with the version's fairness: refused (and not beating anyone) when a gap is above its limit,
    whatever the metrics said; a version without a champion is held to the same limits."""
    refusal = fairness.refusal()
    if refusal is None:
        reason = f"{verdict.reason}; fairness gaps within limits" if verdict.passed else verdict.reason
        return replace(verdict, reason=reason, fairness=fairness)
    # The refusal first: the champion asset and the versions table show the start of the reason.
    reason = f"{refusal}; on the metrics alone: {verdict.reason}" if verdict.passed else f"{verdict.reason}; {refusal}"
    return replace(verdict, passed=False, reason=reason, beats_champion=False, fairness=fairness)


def holdout_fairness(spec: ModelSpec, holdout: pd.DataFrame, predictions: Predictions | np.ndarray) -> FairnessResult:
    """The version's gaps on the holdout: its decisions are the spec's (bands on the score, or the predicted class's
    decision), the score its probability (binary), predicted value (regression) or predicted class's probability
    with the predicted classes beside it (multiclass)."""
    import numpy as np

    from assets.ml.evaluation import Predictions, decisions_of, labels
    from assets.ml.fairness import measure

    if not isinstance(predictions, Predictions):
        predictions = Predictions(np.asarray(predictions, dtype="float64"))
    decisions = decisions_of(predictions, spec)
    return measure(
        holdout,
        spec.fairness,
        decisions,
        labels(holdout, spec),
        predictions.score,
        task=spec.task,
        predicted=predictions.predicted_class,
    )


def _holdout_metrics(
    spec: ModelSpec, registry: ModelRegistry, version: VersionInfo, holdout: pd.DataFrame
) -> tuple[dict[str, float], Predictions]:
    """(metrics, predictions) of ``version`` on the holdout, measured as training measured it."""
    from assets.ml.evaluation import labels, predict, task_metrics

    predictions = predict(registry.load(version), holdout, spec)
    measured = task_metrics(spec.task, labels(holdout, spec), predictions)
    return {k: float(v) for k, v in measured.items()}, predictions


def evaluate_gate(
    spec: ModelSpec,
    registry: ModelRegistry,
    training_frame: pd.DataFrame,
    challenger: VersionInfo,
    champion: VersionInfo | None,
) -> GateVerdict:
    """Both versions re-scored on the holdout of the training set (the newest ``holdout_days``) and judged."""
    from assets.ml.training import time_split

    _, holdout = time_split(training_frame, spec)
    challenger_metrics, predictions = _holdout_metrics(spec, registry, challenger, holdout)
    if champion is None or champion.version == challenger.version:
        verdict = judge(spec, challenger_metrics, None)
    else:
        champion_metrics, _ = _holdout_metrics(spec, registry, champion, holdout)
        verdict = judge(spec, challenger_metrics, champion_metrics, champion.version)
    if spec.fairness is None:
        return verdict
    return with_fairness(verdict, holdout_fairness(spec, holdout, predictions))
