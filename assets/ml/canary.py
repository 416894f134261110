"""The canary: the challenger decides a stable slice of entities, the champion the rest (the spec's ``canary``).

An entity's slice comes from the md5 of its id (as text) into 10,000 buckets: the same id lands in the same bucket
every day, for every version and in every process (Python's ``hash()`` is salted per process, so it is never used).
The challenger decides the ids whose bucket is below ``share * 10,000``; every prediction row says which role
decided it (``decided_by``) and which version (``model_version``: the version whose score and decision the row
holds).

Who may take the slice: only the ``challenger`` alias, when it is newer than the champion and the gate passed it.
A rollback ends the canary at once: the ``<model>/champion`` asset clears the ``challenger`` alias when it rolls
back (:mod:`assets.ml.champion_assets`), so the next scoring has no challenger to give the slice to; and a version
that already served as champion (``champion.until`` tag: replaced or rolled back) never takes the slice, even if
a person points the alias at it again by hand.

numpy and pandas are imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from assets.ml.promotion import CHAMPION_UNTIL_TAG, gate_verdict
from assets.ml.spec import ModelSpec
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionInfo
from resources.warehouse import Warehouse
from resources.warehouse.sql import day_window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CANARY_BUCKETS = 10_000
DECIDED_BY_COLUMN = "decided_by"
ROLES = (CHAMPION, CHALLENGER)  # the values of decided_by


def canary_buckets(ids: pd.Series | list) -> np.ndarray:
    """Each id's bucket in [0, 10,000): the first 8 bytes of the md5 of the id as text, modulo 10,000."""
    import numpy as np

    return np.fromiter(
        (int.from_bytes(hashlib.md5(str(i).encode()).digest()[:8], "big") % CANARY_BUCKETS for i in ids),
        dtype="int64",
        count=len(ids),
    )


def in_canary(ids: pd.Series | list, share: float) -> np.ndarray:
    """True for the ids the challenger decides at ``share`` (a larger share keeps every id of a smaller one)."""
    return canary_buckets(ids) < round(share * CANARY_BUCKETS)


@dataclass(frozen=True)
class CanaryPlan:
    """Who decides this run: ``challenger`` the version that takes the slice (None: the canary is off), and why."""

    share: float
    challenger: VersionInfo | None
    why: str

    @property
    def on(self) -> bool:
        return self.challenger is not None


def plan_canary(
    spec: ModelSpec, registry: ModelRegistry, champion: VersionInfo, challenger: VersionInfo | None
) -> CanaryPlan:
    """Whether ``challenger`` (the alias, resolved once per run like the champion) takes the spec's slice."""
    share = spec.canary.share
    if not spec.canary.on:
        return CanaryPlan(0.0, None, "off: canary.share is 0 in the spec")
    if challenger is None:
        return CanaryPlan(share, None, "off: no challenger (none trained since the last promotion, or a rollback)")
    if challenger.version <= champion.version:
        return CanaryPlan(
            share,
            None,
            f"off: challenger version {challenger.version} is not newer than champion version {champion.version}",
        )
    if CHAMPION_UNTIL_TAG in challenger.tags:  # e.g. the alias set by hand on the version a rollback left
        return CanaryPlan(
            share,
            None,
            f"off: challenger version {challenger.version} already served as champion (until "
            f"{challenger.tags[CHAMPION_UNTIL_TAG]}): a replaced or rolled-back version takes no canary",
        )
    passed, reason = gate_verdict(registry, spec.name, challenger.version)
    if not passed:
        verdict = "was not judged by the gate" if passed is None else f"failed the gate: {reason}"
        return CanaryPlan(share, None, f"off: challenger version {challenger.version} {verdict}")
    return CanaryPlan(
        share, challenger, f"on: challenger version {challenger.version} decides {share:.1%} of {spec.entity_id}s"
    )


def slice_metadata(warehouse: Warehouse, table: str, spec: ModelSpec, start: date, end: date) -> dict[str, Any]:
    """The two slices of the window side by side: rows and the decision mix per decision of each role (numeric,
    so Dagster plots them over days), and the same as a Markdown table. The decisions are the spec's bands, else
    those written (multiclass); a spec without decisions (regression without bands) compares the mean score."""
    import dagster as dg

    frame = warehouse.query(
        f"SELECT coalesce({DECIDED_BY_COLUMN}, '{CHAMPION}') AS role, decision, count(*) AS n, sum(score) AS total "
        f"FROM {table} WHERE {day_window(spec.timestamp, start, end)} GROUP BY 1, 2"
    )
    counts = {(str(r.role), None if r.decision is None else str(r.decision)): int(r.n) for r in frame.itertuples()}
    rows = {role: sum(n for (r, _), n in counts.items() if r == role) for role in ROLES}
    metadata: dict[str, Any] = {f"{role}_rows": rows[role] for role in ROLES}
    if spec.task != "binary":  # the loan example's metadata stays as it was
        totals = frame.groupby("role")["total"].sum()
        metadata.update(
            {f"{role}_mean_score": float(totals[role]) / rows[role] for role in ROLES if rows[role] and role in totals}
        )
    names = spec.decisions or sorted({d for (_, d) in counts if d is not None})
    if not names:
        return metadata
    lines = ["| decision | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    if spec.decision_bands is not None:
        lines[0] = lines[0].replace("decision", "band", 1)
    for band in names:
        shares = {role: counts.get((role, band), 0) / rows[role] if rows[role] else 0.0 for role in ROLES}
        metadata.update({f"{role}_{band}_rate": shares[role] for role in ROLES})
        lines.append(f"| {band} | " + " | ".join(f"{shares[r]:.1%} ({counts.get((r, band), 0)})" for r in ROLES) + " |")
    metadata["decision_mix_by_role"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def slice_quality(
    labeled: pd.DataFrame, target: str, score: str = "score", *, task: str = "binary"
) -> dict[str, dict[str, float]]:
    """Realised quality per role once labels arrive: ``labeled`` holds ``decided_by``, the label and the score of
    the version that decided each row (multiclass: also its ``predicted_class`` and ``class_probabilities``).

    Binary: rows, ROC AUC (NaN with a single class), Brier, positive and predicted rate. Regression: rows, RMSE,
    MAE, mean actual and mean predicted value. Multiclass: rows, macro F1, accuracy, log loss."""
    import pandas as pd

    out: dict[str, dict[str, float]] = {}
    if DECIDED_BY_COLUMN in labeled:
        roles = labeled[DECIDED_BY_COLUMN].fillna(CHAMPION)
    else:  # rows scored before the canary existed: the champion decided them
        roles = pd.Series(CHAMPION, index=labeled.index)
    for role in ROLES:
        part = labeled[roles == role]
        if part.empty:
            continue
        out[role] = {"rows": float(len(part)), **_role_quality(part, target, score, task)}
    return out


def _role_quality(part: pd.DataFrame, target: str, score: str, task: str) -> dict[str, float]:
    from assets.ml.evaluation import metrics, multiclass_metrics, regression_metrics

    if task == "regression":
        measured = regression_metrics(part[target].astype("float64").to_numpy(), part[score].to_numpy("float64"))
        keep = {"rmse": "rmse", "mae": "mae", "mean_actual": "mean_target", "mean_predicted": "mean_prediction"}
        return {name: measured[key] for name, key in keep.items()}
    if task == "multiclass":
        measured = multiclass_metrics(part[target].to_numpy(), stored_predictions(part, score))
        return {name: measured[name] for name in ("macro_f1", "accuracy", "log_loss")}
    measured = metrics(part[target].astype("int64").to_numpy(), part[score].to_numpy(dtype="float64"))
    return {
        "roc_auc": measured["roc_auc"],
        "brier": measured["brier"],
        "positive_rate": measured["base_rate"],
        "predicted_rate": measured["mean_score"],
    }


def stored_predictions(rows: pd.DataFrame, score: str = "score") -> Any:
    """Multiclass prediction rows as read back from a predictions table, as :class:`assets.ml.evaluation.Predictions`:
    the classes are those of every row's ``class_probabilities`` in order of first appearance (rows of versions
    that know different classes give the others probability 0)."""
    import json

    import numpy as np

    from assets.ml.evaluation import Predictions, class_names
    from assets.ml.scorer import CLASS_PROBABILITIES_COLUMN, PREDICTED_CLASS_COLUMN

    missing = [c for c in (PREDICTED_CLASS_COLUMN, CLASS_PROBABILITIES_COLUMN) if c not in rows]
    if missing:
        raise KeyError(f"multiclass prediction rows need the column(s) {missing}")
    parsed = [json.loads(text) if isinstance(text, str) else {} for text in rows[CLASS_PROBABILITIES_COLUMN]]
    classes = list(dict.fromkeys(c for row in parsed for c in row))
    probabilities = np.asarray([[row.get(c, 0.0) for c in classes] for row in parsed], dtype="float64")
    return Predictions(
        rows[score].to_numpy(dtype="float64"),
        class_names(rows[PREDICTED_CLASS_COLUMN].to_numpy()),
        probabilities.reshape(len(rows), len(classes)),
        classes,
    )
