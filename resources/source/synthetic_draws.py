"""What the synthetic loan generator draws: one chunk of applicant features and the probability that an application
defaults, in the regimes before and after the dated drifts (``SyntheticSource``, resources/source/synthetic.py,
seeds the random streams and shapes the tables).

Covariate drift (``drift_start``) shifts the columns of :data:`COVARIATE_DRIFT`; concept drift
(``concept_drift_start``) changes how default depends on the features (:data:`CONCEPT_DRIFT`). Every category is
drawn from one uniform per row whatever its weights, so a drift changes no other draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pandas are imported inside the functions: this module is imported when definitions load
    import numpy as np
    import pandas as pd

# The covariate shift applied to applications made on or after ``drift_start``, column -> what changes.
COVARIATE_DRIFT = {
    "credit_score": "mean 40 points lower",
    "debt_to_income": "6 percentage points higher",
    "loan_amount": "25% larger (and more small_business loans, which are larger)",
    "purpose": "small_business 4% -> 16% (debt_consolidation 50% -> 40%, credit_card 20% -> 18%)",
    "channel": "broker 15% -> 35% (web 60% -> 45%, branch 25% -> 20%)",
}
DRIFTED_COLUMNS = tuple(COVARIATE_DRIFT)
# Priced or chosen from the drifted columns, so they move too, less strongly: a drift test may flag them.
KNOCK_ON_COLUMNS = ("interest_rate", "term_months")
# Drawn independently of every drifted column: their distribution is the same before and after drift_start.
STABLE_COLUMNS = (
    "annual_income",
    "age",
    "employment_length_years",
    "home_ownership",
    "state",
    "open_credit_lines",
    "delinquencies_2y",
    "revolving_utilization",
    "inquiries_6m",
)
# How default depends on the features for applications made on or after ``concept_drift_start``.
CONCEPT_DRIFT = (
    "debt_to_income effect x4, revolving_utilization effect x3.4; credit_score, interest_rate, inquiries and "
    "small_business no longer matter directly; loan-to-income, broker channel and youth matter strongly; "
    "base default rate up (about 11% -> 15% on the same applicants)"
)

# Categories and their weights, as plain tuples (numpy arrays of them: :func:`_arrays`).
HOME_OWNERSHIP = ("RENT", "MORTGAGE", "OWN")
PURPOSES = ("debt_consolidation", "credit_card", "home_improvement", "small_business", "car", "medical", "other")
_PURPOSE_WEIGHTS = (0.50, 0.20, 0.08, 0.04, 0.07, 0.04, 0.07)
_PURPOSE_WEIGHTS_DRIFTED = (0.40, 0.18, 0.08, 0.16, 0.07, 0.04, 0.07)
# Loan size relative to income, by purpose (same order as PURPOSES).
_PURPOSE_LOAN_FACTOR = (1.0, 0.8, 1.2, 1.6, 0.7, 0.5, 0.6)
STATES = ("CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "WA")
_STATE_WEIGHTS = (0.18, 0.13, 0.11, 0.11, 0.07, 0.07, 0.06, 0.06, 0.06, 0.05, 0.05, 0.05)
CHANNELS = ("web", "branch", "broker")
_CHANNEL_WEIGHTS = (0.60, 0.25, 0.15)
_CHANNEL_WEIGHTS_DRIFTED = (0.45, 0.20, 0.35)


@cache
def _arrays() -> dict[str, np.ndarray]:
    """The tables above as numpy arrays (object arrays for categories, to index with drawn codes), built once."""
    import numpy as np

    categories = {"home_ownership": HOME_OWNERSHIP, "purpose": PURPOSES, "state": STATES, "channel": CHANNELS}
    weights = {
        "purpose_weights": _PURPOSE_WEIGHTS,
        "purpose_weights_drifted": _PURPOSE_WEIGHTS_DRIFTED,
        "purpose_loan_factor": _PURPOSE_LOAN_FACTOR,
        "state_weights": _STATE_WEIGHTS,
        "channel_weights": _CHANNEL_WEIGHTS,
        "channel_weights_drifted": _CHANNEL_WEIGHTS_DRIFTED,
    }
    return {
        **{name: np.array(values, dtype=object) for name, values in categories.items()},
        **{name: np.array(values, dtype="float64") for name, values in weights.items()},
    }


def _pick(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Category indices from uniforms; one uniform per row whatever the weights, so drift changes no other draw."""
    import numpy as np

    return np.minimum(np.searchsorted(np.cumsum(weights), u, side="right"), len(weights) - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def draw_features(rng: np.random.Generator, m: int, drifted: bool) -> dict[str, np.ndarray]:
    """One chunk of applicant features; ``time_offset`` (fraction of the row's time slot) is drawn here too.

    A latent credit quality ``z`` drives the bureau features (score, delinquencies, utilization, inquiries, dti)
    and, weakly, income, so the features are correlated the way real applications are.
    """
    import numpy as np

    a = _arrays()
    time_offset = rng.random(m)
    z = rng.standard_normal(m)
    age = np.clip(np.rint(rng.normal(42.0, 12.0, m)), 21, 80)
    employment = np.clip(np.rint((age - 21) * 0.22 + rng.normal(0.0, 2.5, m)), 0, 10)
    log_income = 10.9 + 0.18 * z + 0.012 * (np.minimum(age, 60) - 40) + 0.03 * employment + rng.normal(0, 0.45, m)
    income = np.round(np.clip(np.exp(log_income), 12_000, 750_000), -2)
    # Ordered logit: older, better-paid applicants rent less and own outright more.
    home = np.digitize(0.06 * (age - 42) + 1.2 * (log_income - 10.9) + rng.logistic(0.0, 1.0, m), [-0.2, 2.3])
    purpose = _pick(rng.random(m), a["purpose_weights_drifted" if drifted else "purpose_weights"])
    loan = income * 0.22 * a["purpose_loan_factor"][purpose] * rng.lognormal(0.0, 0.45, m) * (1.25 if drifted else 1.0)
    loan = np.round(np.clip(loan, 1_000, 50_000) / 25) * 25
    term = np.where(rng.random(m) < 0.05 + 0.8 * _sigmoid((loan - 18_000) / 6_000), 60, 36)
    score = np.clip(np.rint(695 + 60 * z + rng.normal(0, 15, m) - (40 if drifted else 0)), 300, 850)
    delinquencies = np.minimum(rng.poisson(np.exp(-1.9 - 0.8 * z)), 20)
    inquiries = np.minimum(rng.poisson(np.exp(-0.1 - 0.35 * z)), 30)
    open_lines = 1 + rng.poisson(np.clip(4 + 0.12 * (age - 21) + 1.5 * (log_income - 10.9), 0.5, None))
    utilization = np.round(np.clip(1.3 * _sigmoid(-0.6 - 0.45 * z + rng.normal(0, 0.9, m)), 0, 1.5), 4)
    dti = rng.normal(17 - 2.0 * z, 8.0, m) + 4 * (utilization - 0.45) + (6 if drifted else 0)
    dti = np.round(np.clip(dti, 0, 60), 2)
    rate = 5.5 + 0.048 * (850 - score) + 2.8 * (term == 60) + 0.06 * (dti - 17) + 0.5 * delinquencies
    rate = np.round(np.clip(rate + rng.normal(0, 1.0, m), 5.0, 35.99), 2)
    state = _pick(rng.random(m), a["state_weights"])
    channel = _pick(rng.random(m), a["channel_weights_drifted" if drifted else "channel_weights"])
    return {
        "time_offset": time_offset,
        "annual_income": income,
        "loan_amount": loan,
        "term_months": term.astype(np.int64),
        "interest_rate": rate,
        "credit_score": score.astype(np.int64),
        "debt_to_income": dti,
        "employment_length_years": employment.astype(np.int64),
        "home_ownership": a["home_ownership"][home],
        "purpose": a["purpose"][purpose],
        "state": a["state"][state],
        "age": age.astype(np.int64),
        "open_credit_lines": open_lines.astype(np.int64),
        "delinquencies_2y": delinquencies.astype(np.int64),
        "revolving_utilization": utilization,
        "inquiries_6m": inquiries.astype(np.int64),
        "channel": a["channel"][channel],
    }


def default_probability(features: Mapping[str, np.ndarray] | pd.DataFrame, concept_drifted: bool) -> np.ndarray:
    """The latent probability that an application defaults: a logistic model of its features.

    ``features`` is a chunk's feature arrays or an applications frame (tests score frames with it).

    The concept-drift regime leans on what the first one barely uses (loan-to-income, channel, age), so a model
    fitted before ``concept_drift_start`` ranks the later applications noticeably worse.
    """
    import numpy as np

    f = features
    dti = f["debt_to_income"] - 17
    utilization = f["revolving_utilization"] - 0.45
    broker = f["channel"] == "broker"
    if concept_drifted:
        logit = (
            -2.8
            + 0.11 * dti
            + 2.6 * utilization
            + 5.0 * (f["loan_amount"] / f["annual_income"] - 0.22)
            + 1.0 * broker
            - 0.06 * (f["age"] - 42)
            + 0.20 * f["delinquencies_2y"]
        )
    else:
        logit = (
            -2.95
            - 0.0094 * (f["credit_score"] - 695)
            + 0.026 * dti
            + 0.085 * (f["interest_rate"] - 13)
            + 0.77 * utilization
            + 0.30 * f["delinquencies_2y"]
            + 0.085 * f["inquiries_6m"]
            + 0.50 * (f["purpose"] == "small_business")
            + 0.21 * (f["purpose"] == "medical")
            + 0.25 * (f["term_months"] == 60)
            - 0.25 * (np.log(f["annual_income"]) - 10.9)
            + 0.13 * (f["home_ownership"] == "RENT")
            - 0.025 * f["employment_length_years"]
            + 0.17 * broker
        )
    return _sigmoid(logit)
