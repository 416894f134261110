"""The champion/challenger gate: both versions scored on the same recent labeled holdout, judged by the spec."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from assets.ml.spec import LOWER_IS_BETTER, ModelSpec
from resources.registry import ModelRegistry, VersionInfo


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] = field(default_factory=dict)


def _worse_by(metric: str, challenger: float, champion: float) -> float:
    """How much worse the challenger is (positive) or better (negative), whichever way the metric points."""
    return challenger - champion if metric in LOWER_IS_BETTER else champion - challenger


def _holdout_metrics(spec: ModelSpec, registry: ModelRegistry, version: VersionInfo, holdout: pd.DataFrame):
    from assets.ml.evaluation import metrics, score

    probabilities = score(registry.load(version), holdout, spec)
    return {k: float(v) for k, v in metrics(holdout[spec.target].to_numpy(), probabilities).items()}


def judge(spec: ModelSpec, challenger: dict[str, float], champion: dict[str, float] | None) -> tuple[bool, str]:
    """Pure verdict from metrics: the floor first, then primary metric and guardrails against the champion."""
    policy = spec.promotion
    primary = spec.evaluation.primary_metric
    value = challenger[primary]
    if math.isnan(value):
        return False, f"{primary} is undefined on the holdout (a single class?): the version cannot be judged"
    below_floor = value > policy.min_primary if primary in LOWER_IS_BETTER else value < policy.min_primary
    if below_floor:
        return False, f"{primary} {value:.4f} does not clear the floor {policy.min_primary}"
    if champion is None:
        return True, f"{primary} {value:.4f} clears the floor {policy.min_primary}; there is no champion yet"
    failures = []
    gap = _worse_by(primary, value, champion[primary])
    if gap > policy.tolerance:
        failures.append(f"{primary} {value:.4f} trails the champion's {champion[primary]:.4f} by {gap:.4f} (tolerance {policy.tolerance})")
    for metric, allowed in policy.guardrails.items():
        gap = _worse_by(metric, challenger[metric], champion[metric])
        if gap > allowed:
            failures.append(f"{metric} {challenger[metric]:.4f} is {gap:.4f} worse than the champion's {champion[metric]:.4f} (allowed {allowed})")
    if failures:
        return False, "; ".join(failures)
    return True, f"{primary} {value:.4f} vs champion {champion[primary]:.4f}: within tolerance {policy.tolerance}, guardrails held"


def evaluate_gate(
    spec: ModelSpec,
    registry: ModelRegistry,
    training_frame: pd.DataFrame,
    challenger: VersionInfo,
    champion: VersionInfo | None,
) -> GateVerdict:
    from assets.ml.training import time_split

    _, holdout = time_split(training_frame, spec)
    challenger_metrics = _holdout_metrics(spec, registry, challenger, holdout)
    champion_metrics = None
    if champion is not None and champion.version != challenger.version:
        champion_metrics = _holdout_metrics(spec, registry, champion, holdout)
    passed, reason = judge(spec, challenger_metrics, champion_metrics)
    return GateVerdict(passed, reason, challenger_metrics, champion_metrics or {})
