"""The reviews store of one model, ``reviews.<model>``: every reviewer's decision, from landed review files and from
the ``record_review`` job, each row saying where it came from (``source``).

A review names the case (the spec's ``entity_id``), the reviewer, the decision, the reason and the time. Before
anything is stored, every review of a batch is checked: its case must be one the model scored (a row of
``predictions.<model>``) and its decision one the model makes, other than the review band (a review settles a
case); a batch with one bad review stores nothing and fails naming the file or run, the case and the field. A
later review of a case that decides otherwise is an **amendment**: stored beside the first with ``amends`` (the id
of the review it changes) and ``sequence`` (1 for a case's first review); the latest by ``reviewed_at`` is the one
that counts (:mod:`assets.review.final_decisions`). Nothing is overwritten.

The store is partitioned by ``review_date``: a landed day is replaced as a whole (its earlier landed rows, never the
UI's), so landing a day again gives the same rows, no duplicates.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from resources.failures import DataFailure
from resources.source.schema import Column
from resources.warehouse import Warehouse
from resources.warehouse.sql import text_literal

if TYPE_CHECKING:
    import pandas as pd

REVIEWS_SCHEMA = "reviews"
REVIEW_DATE = "review_date"
LANDING_SOURCE = "landing"  # source of a landed row: "landing <table> <day of its file>"
UI_SOURCE = "ui"  # source of a row the record_review job wrote: "ui run <run id>"
# What a review carries, whatever its origin (the landing table declares these columns too, the case by its
# model's entity_id).
REVIEW_FIELDS = ("model_name", "reviewer", "decision", "reason", "reviewed_at")


class ReviewRefused(DataFailure):
    """A review that cannot be recorded (unknown case, a decision the model does not make, a model without
    decisions): nothing of its batch was stored, and asking again gets the same answer (never retried)."""


def reviews_table(spec: ModelSpec) -> str:
    return f"{REVIEWS_SCHEMA}.{spec.name}"


def review_columns(spec: ModelSpec) -> list[Column]:
    return [
        Column("review_id", "VARCHAR"),  # <case>@<reviewed_at, ISO>: the same review lands with the same id
        Column(spec.entity_id, "VARCHAR"),
        Column("model_name", "VARCHAR"),
        Column("reviewer", "VARCHAR"),
        Column("decision", "VARCHAR"),
        Column("reason", "VARCHAR"),
        Column("reviewed_at", "TIMESTAMP"),
        Column(REVIEW_DATE, "DATE"),
        Column("source", "VARCHAR"),
        Column("sequence", "BIGINT"),  # 1: the case's first review; n: its n-th, by reviewed_at
        Column("amends", "VARCHAR"),  # the review_id this one changes the decision of; NULL: first or same decision
        Column("recorded_at", "TIMESTAMP"),
    ]


def allowed_decisions(warehouse: Warehouse, spec: ModelSpec) -> list[str]:
    """The decisions a reviewer may give: the model's (its bands; multiclass: the decisions it has written),
    without the review band, which settles nothing."""
    decisions = spec.decisions
    if decisions is None and spec.task == "multiclass" and warehouse.table_exists(predictions_table(spec)):
        frame = warehouse.query(f"SELECT DISTINCT decision FROM {predictions_table(spec)} WHERE decision IS NOT NULL")
        decisions = sorted(str(d) for d in frame["decision"])
    if not decisions:
        raise ReviewRefused(
            description=f"model '{spec.name}' makes no decision a reviewer could change (task {spec.task} without "
            "decision_bands, or nothing scored yet): reviews of it cannot be recorded"
        )
    return [d for d in decisions if d != spec.review_band]


@dataclass(frozen=True)
class Recorded:
    """What a batch stored: its rows (as stored) and the scored days of the cases it reviewed."""

    rows: pd.DataFrame
    scored_days: list[date]

    @property
    def amendments(self) -> int:
        return int(self.rows["amends"].notna().sum()) if not self.rows.empty else 0


def check_reviews(warehouse: Warehouse, spec: ModelSpec, reviews: pd.DataFrame, where: str) -> dict[str, date]:
    """Refuse the batch (``ReviewRefused`` naming ``where``, the case and the field) unless every review has a
    decision the model makes and a case it scored; returns each case's scored day."""
    if reviews.empty:  # a day without reviews is fine, whatever the model decides
        return {}
    allowed = allowed_decisions(warehouse, spec)
    refuse_outside(
        reviews, "decision", allowed, where, f"with a decision model '{spec.name}' does not make", spec.entity_id
    )
    scored = scored_days(warehouse, spec, reviews[spec.entity_id].astype(str).unique().tolist())
    unknown = sorted(set(reviews[spec.entity_id].astype(str)) - set(scored))
    if unknown:
        raise ReviewRefused(
            description=f"{where}: {len(unknown)} review(s) of a case model '{spec.name}' never scored (no row of "
            f"{predictions_table(spec)}); field '{spec.entity_id}': {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}. Nothing of it was stored."
        )
    return scored


def refuse_outside(
    reviews: pd.DataFrame, column: str, allowed: list[str], where: str, what: str, case: str | None = None
) -> None:
    """``ReviewRefused`` naming ``where``, the field, the first bad value (and its case) unless every review's
    ``column`` is one of ``allowed``."""
    bad = reviews[~reviews[column].isin(allowed)]
    if bad.empty:
        return
    first = bad.iloc[0]
    of_case = f" of case {case}={first[case]!s}" if case else ""
    raise ReviewRefused(
        description=f"{where}: {len(bad)} review(s) {what}; field '{column}'{of_case} is {first[column]!r}, not one "
        f"of {allowed}. Nothing of it was stored."
    )


def scored_days(warehouse: Warehouse, spec: ModelSpec, cases: list[str]) -> dict[str, date]:
    """The scored day of each of ``cases`` found in the model's predictions."""
    import pandas as pd

    if not cases or not warehouse.table_exists(predictions_table(spec)):
        return {}
    found: dict[str, date] = {}
    for start in range(0, len(cases), 1000):
        listed = ", ".join(text_literal(c) for c in cases[start : start + 1000])
        frame = warehouse.query(
            f"SELECT {spec.entity_id} AS case_id, min({spec.timestamp}) AS scored_day FROM {predictions_table(spec)} "
            f"WHERE {spec.entity_id} IN ({listed}) GROUP BY {spec.entity_id}"
        )
        found |= {str(c): pd.Timestamp(d).date() for c, d in zip(frame["case_id"], frame["scored_day"], strict=True)}
    return found


def record_reviews(
    warehouse: Warehouse,
    spec: ModelSpec,
    reviews: pd.DataFrame,
    source: str,
    where: str,
    replace_days: tuple[date, date] | None = None,
) -> Recorded:
    """Check ``reviews`` (columns: the entity id and REVIEW_FIELDS), number them against the stored reviews of
    their cases and store them with ``source`` (``{day}`` in it: each row's day). ``replace_days``: a landed window [start, end) whose earlier landed
    rows these replace (the UI's rows of those days are kept); None: appended."""
    import pandas as pd

    reviews = reviews.reset_index(drop=True)
    scored = check_reviews(warehouse, spec, reviews, where)
    table = reviews_table(spec)
    warehouse.ensure_table(table, review_columns(spec), REVIEW_DATE)
    earlier = _stored_reviews(warehouse, spec, reviews[spec.entity_id].astype(str).unique().tolist())
    if replace_days is not None:  # this window's landed rows are the ones being replaced
        days = pd.to_datetime(earlier[REVIEW_DATE]).dt.date
        landed_here = (days >= replace_days[0]) & (days < replace_days[1])
        landed_here &= earlier["source"].astype(str).str.startswith(LANDING_SOURCE)
        earlier = earlier[~landed_here]
    rows = _numbered(spec, reviews, earlier, source)
    if replace_days is None:
        if not rows.empty:
            warehouse.append(table, rows)
    else:  # the window's rows the record_review job stored stay (kept inside the write); its landed rows are these
        start, end = replace_days
        kept = f"source NOT LIKE '{LANDING_SOURCE}%'"
        warehouse.replace_window(table, REVIEW_DATE, start, end, [rows], review_columns(spec), keep=kept)
    days = sorted({scored[str(c)] for c in rows[spec.entity_id]})
    return Recorded(rows=rows, scored_days=days)


def _stored_reviews(warehouse: Warehouse, spec: ModelSpec, cases: list[str]) -> pd.DataFrame:
    import pandas as pd

    names = ", ".join(c.name for c in review_columns(spec))
    frames = [
        warehouse.query(
            f"SELECT {names} FROM {reviews_table(spec)} WHERE {spec.entity_id} IN "
            f"({', '.join(text_literal(c) for c in cases[start : start + 1000])})"
        )
        for start in range(0, len(cases), 1000)
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c.name: pd.Series(dtype="object") for c in review_columns(spec)})
    return pd.concat(frames, ignore_index=True)


def _numbered(spec: ModelSpec, reviews: pd.DataFrame, earlier: pd.DataFrame, source: str) -> pd.DataFrame:
    """The new rows with their id, day, source, ``sequence`` and ``amends`` (the latest earlier review of the case,
    stored or in this batch, when its decision differs)."""
    import pandas as pd

    entity = spec.entity_id
    new = reviews[[entity, *REVIEW_FIELDS]].copy()
    new[entity] = new[entity].astype(str)
    new["reviewed_at"] = pd.to_datetime(new["reviewed_at"])
    new["review_id"] = new[entity] + "@" + new["reviewed_at"].map(lambda t: t.isoformat())
    # a landed row's day is its file's; a row from the UI is of the day it was decided
    new[REVIEW_DATE] = pd.to_datetime(
        reviews[REVIEW_DATE] if REVIEW_DATE in reviews else new["reviewed_at"]
    ).dt.normalize()
    new["source"] = [source.format(day=d.date().isoformat()) for d in new[REVIEW_DATE]]  # {day}: the row's day
    new["recorded_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    history = earlier[["review_id", entity, "decision", "reviewed_at"]].assign(new=False)
    history["reviewed_at"] = pd.to_datetime(history["reviewed_at"])
    batch = new[["review_id", entity, "decision", "reviewed_at"]].assign(new=True)
    every = pd.concat([history, batch]) if not history.empty else batch
    every = every.sort_values([entity, "reviewed_at", "review_id"], kind="stable").reset_index(drop=True)
    every["sequence"] = every.groupby(entity).cumcount() + 1
    before = every.groupby(entity)[["review_id", "decision"]].shift(1)
    every["amends"] = before["review_id"].where(before["decision"].notna() & (before["decision"] != every["decision"]))
    numbered = every[every["new"]].set_index("review_id")[["sequence", "amends"]]
    new = new.join(numbered, on="review_id")
    new["sequence"] = new["sequence"].astype("int64")
    new["amends"] = new["amends"].astype(object).where(new["amends"].notna(), None)
    return new[[c.name for c in review_columns(spec)]]
