"""Replaying one decision: the stored model input of a case re-scored by the version its prediction row names.

Scoring keeps each day's model input as scored (``predictions.<model>_inputs``, :class:`assets.ml.scorer.InputRows`),
so the replay never reads the mart, whose row may have been rebuilt since. The version is the one on the
prediction row (``model_version``: the champion's, or the challenger's for a canary row), loaded through
:meth:`resources.registry.ModelRegistry.load`, which checks its files against the hash recorded at registration;
the row is scored by the same code as the nightly scoring (:func:`assets.ml.scorer.score_chunks`, reason codes
included) and what it gives is compared with what was stored, field by field: the decision, the reasons and the
predicted class exactly, the score (and class probabilities) exactly or up to the last digits a batch's rounding
moves (:data:`SCORE_REL_TOL`; a case scored alone and in a batch of thousands are not summed in the same order).

The decision rules (the spec's ``decision_bands``, ``class_decisions``, ``review_band`` and ``reason_codes``) are the
current spec's: a spec changed since the day was scored shows as a mismatch of the decision or the reasons while the
score still matches.

Nothing here returns or prints the input's values (a column may be declared sensitive): only the case, the stored and
the replayed outputs. pandas is imported inside the functions, like the scorer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from assets.ml.canary import DECIDED_BY_COLUMN
from assets.ml.inference import inputs_table, predictions_table
from assets.ml.reasons import REASONS_COLUMN
from assets.ml.scorer import (
    CLASS_PROBABILITIES_COLUMN,
    PREDICTED_CLASS_COLUMN,
    SHADOW,
    Scorer,
    make_scorer,
    score_chunks,
)
from assets.ml.spec import ModelSpec
from resources.failures import DataFailure
from resources.registry import CHAMPION, ModelRegistry, ModelVersionNotFound
from resources.source.base import as_day
from resources.warehouse import Warehouse
from resources.warehouse.sql import date_literal, text_literal

if TYPE_CHECKING:
    import pandas as pd


class ReplayError(Exception):
    """A case that cannot be replayed; the message says which case, table or version, and why."""


class CaseNotFound(ReplayError):
    """No prediction row of the case (on the day asked for)."""


class AmbiguousCase(ReplayError):
    """The case was scored on more than one day (or twice on one): the day must be named."""


class InputNotStored(ReplayError):
    """The day's model input of the case is not kept (scored before inputs were kept, or a column is missing)."""


class InputOutOfDate(ReplayError):
    """The stored input is of another scoring of the day than the prediction row (a write left half done)."""


class VersionUnavailable(ReplayError):
    """The version that decided the case is no longer in the registry."""


# A score computed for one row may differ from the same row's score computed in a batch in its last bits: the
# matrix products underneath add up in an order that depends on the batch (BLAS blocking, threads). Two such scores
# agree to about 1e-16 relative; 1e-12 leaves room and still tells any real change of input or version apart.
SCORE_REL_TOL = 1e-12
SCORE_ABS_TOL = 1e-15
EXACT, ROUNDING, DIFFERS = "yes", "yes (last digits: rounding)", "NO"


def same(name: str, stored: Any, replayed: Any) -> str:
    """How a replayed output compares with the stored one: :data:`EXACT`, equal up to the rounding of a batch
    (:data:`ROUNDING`: scores and class probabilities only) or :data:`DIFFERS`."""
    import json

    if stored == replayed:
        return EXACT
    if name == "score" and isinstance(stored, float) and isinstance(replayed, float):
        close = math.isclose(stored, replayed, rel_tol=SCORE_REL_TOL, abs_tol=SCORE_ABS_TOL)
        return ROUNDING if close else DIFFERS
    if name == CLASS_PROBABILITIES_COLUMN and isinstance(stored, str) and isinstance(replayed, str):
        before, after = json.loads(stored), json.loads(replayed)
        if list(before) == list(after) and all(
            math.isclose(before[c], after[c], rel_tol=SCORE_REL_TOL, abs_tol=SCORE_ABS_TOL) for c in before
        ):
            return ROUNDING
    return DIFFERS


@dataclass(frozen=True)
class Replay:
    """A replayed case: where it was scored, by what, and each compared output (stored, replayed)."""

    model: str
    case: str
    day: date
    version: int
    decided_by: str
    run_id: str
    compared: dict[str, tuple[Any, Any]]

    @property
    def verdicts(self) -> dict[str, str]:
        return {name: same(name, *values) for name, values in self.compared.items()}

    @property
    def matches(self) -> bool:
        """The decision, the reasons (and the predicted class) exactly, the score up to a batch's rounding."""
        return DIFFERS not in self.verdicts.values()

    @property
    def exact(self) -> bool:
        return all(verdict == EXACT for verdict in self.verdicts.values())

    @property
    def differing(self) -> list[str]:
        return [name for name, verdict in self.verdicts.items() if verdict == DIFFERS]


def compared_columns(spec: ModelSpec) -> list[str]:
    """The outputs a replay must reproduce: the score, the decision and the reasons (multiclass: also the predicted
    class and every class's probability)."""
    columns = ["score", "decision", REASONS_COLUMN]
    if spec.task == "multiclass":
        columns += [PREDICTED_CLASS_COLUMN, CLASS_PROBABILITIES_COLUMN]
    return columns


def _plain(value: Any) -> Any:
    """A stored or computed value as plain Python: NULL (None, NaN, pandas NA) as None, numpy scalars unwrapped."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if pd.isna(value) is True:
            return None
    except (TypeError, ValueError):
        pass
    return value


def _prediction_row(warehouse: Warehouse, spec: ModelSpec, case: str, day: date | None) -> pd.Series:
    table = predictions_table(spec)
    on_day = "" if day is None else f" on {day.isoformat()}"
    if not warehouse.table_exists(table):
        raise CaseNotFound(f"case '{case}' of model '{spec.name}': {table} does not exist (nothing scored yet)")
    where = f"{spec.entity_id} = {text_literal(case)}"
    if day is not None:
        where += f" AND {spec.timestamp} = {date_literal(day)}"
    rows = warehouse.query(f"SELECT * FROM {table} WHERE {where}")
    if rows.empty:
        raise CaseNotFound(f"case '{case}' of model '{spec.name}': no row in {table}{on_day} ({spec.entity_id})")
    if len(rows) > 1:
        days = sorted({as_day(d).isoformat() for d in rows[spec.timestamp]})
        raise AmbiguousCase(
            f"case '{case}' of model '{spec.name}' has {len(rows)} rows in {table}{on_day} (days {', '.join(days)})"
            + (": name the day" if day is None else ": the scoring mart held the id twice that day")
        )
    return rows.iloc[0]


def _input_row(warehouse: Warehouse, spec: ModelSpec, case: str, day: date, scored_at: Any) -> pd.DataFrame:
    table = inputs_table(spec)
    lost = f"case '{case}' of model '{spec.name}' on {day.isoformat()}"
    if not warehouse.table_exists(table):
        raise InputNotStored(f"{lost}: {table} does not exist (the day was scored before model inputs were kept)")
    rows = warehouse.query(
        f"SELECT * FROM {table} WHERE {spec.entity_id} = {text_literal(case)} "
        f"AND {spec.timestamp} = {date_literal(day)}"
    )
    if rows.empty:
        raise InputNotStored(f"{lost}: no row in {table} (the day was scored before model inputs were kept)")
    import pandas as pd

    stored_at = pd.Timestamp(scored_at)
    if len(rows) > 1 or any(pd.Timestamp(t) != stored_at for t in rows["scored_at"]):
        kept = ", ".join(sorted({str(pd.Timestamp(t)) for t in rows["scored_at"]}))
        raise InputOutOfDate(
            f"{lost}: the prediction row was scored at {stored_at}, the input in {table} at {kept}: re-score the "
            "day to write both again"
        )
    return rows.reset_index(drop=True)


def replay_case(
    warehouse: Warehouse, registry: ModelRegistry, spec: ModelSpec, case: str, day: date | None = None
) -> Replay:
    """Re-score the stored input of ``case`` (of ``day``; any day if it was scored on one only) with the version
    its prediction row names, and compare. Raises a :class:`ReplayError` when it cannot, or
    :class:`~resources.model_integrity.ModelIntegrityError` when the version's files are not those registered."""
    row = _prediction_row(warehouse, spec, case, day)
    day = as_day(row[spec.timestamp])
    inputs = _input_row(warehouse, spec, case, day, row["scored_at"])
    version = int(row["model_version"])
    try:
        info = registry.version(spec.name, version)
    except ModelVersionNotFound as error:
        raise VersionUnavailable(
            f"case '{case}' of model '{spec.name}' on {day.isoformat()} was decided by version {version}: "
            f"{error.description}"
        ) from None
    role = _plain(row.get(DECIDED_BY_COLUMN)) or CHAMPION  # rows from before decided_by: the champion's
    scorer = make_scorer(spec, role, info, registry.load(info), reasons=role != SHADOW)
    try:
        compared = rescored(spec, scorer, row, inputs)
    except DataFailure as error:  # e.g. a column the version reads is not in the stored input
        raise InputNotStored(
            f"case '{case}' of model '{spec.name}' on {day.isoformat()}: {error.description}"
        ) from None
    return Replay(spec.name, case, day, version, role, str(row["dagster_run_id"]), compared)


def rescored(spec: ModelSpec, scorer: Scorer, row: pd.Series, inputs: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    """Each compared output of a stored prediction ``row`` (:func:`compared_columns`): (stored, what ``scorer``
    computes from the stored ``inputs`` of the row, through the nightly scoring's own code)."""
    [replayed] = list(score_chunks(spec, scorer, iter([inputs]), str(row["dagster_run_id"]), None, row["scored_at"]))
    return {c: (_plain(row.get(c)), _plain(replayed[c].iloc[0])) for c in compared_columns(spec)}
