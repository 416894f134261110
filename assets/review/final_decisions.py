"""The final decision of every scored case of one model, ``predictions.<model>_final_decisions``: the model's
decision, or the reviewer's latest where the case was reviewed, with who decided, when and why, and the version
that scored it.

Overrides are measured where the model decided by itself: a review of a case in the review band settles it (the
model made no decision there to override), a review of any other case that decides otherwise overrides the model.
The override rate of a set of cases is overridden / reviewed among those decided outside the review band; each day
records it in all, per band and per model version, and the ``override_rate`` check bounds it by the spec's
``review.override_rate``.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from assets.review.store import review_columns, reviews_table
from resources.source.base import as_day
from resources.source.schema import Column
from resources.warehouse import NotInWarehouse, Warehouse
from resources.warehouse.sql import day_window, text_literal

if TYPE_CHECKING:
    import pandas as pd

MODEL, REVIEWER = "model", "reviewer"  # final_by
OVERRIDE_RATE_CHECK = "override_rate"


def final_decisions_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_final_decisions"


def final_columns(spec: ModelSpec) -> list[Column]:
    return [
        Column(spec.entity_id, "VARCHAR"),
        Column(spec.timestamp, "DATE"),
        Column("score", "DOUBLE"),
        Column("model_decision", "VARCHAR"),
        Column("model_version", "BIGINT"),
        Column("final_decision", "VARCHAR"),
        Column("final_by", "VARCHAR"),  # model | reviewer
        Column("reviewer", "VARCHAR"),
        Column("reviewed_at", "TIMESTAMP"),
        Column("reason", "VARCHAR"),
        Column("review_id", "VARCHAR"),
        Column("review_source", "VARCHAR"),
        Column("reviews", "BIGINT"),  # how many reviews the case has (more than 1: amended or confirmed again)
        Column("overridden", "BOOLEAN"),  # a reviewer changed a decision the model made outside the review band
    ]


@dataclass(frozen=True)
class FinalDecisions:
    """What a write of final decisions left: the rows of each scored day, and the rows of the reviewed cases (the
    override figures are theirs; the model's own decisions stay in the warehouse)."""

    day_rows: dict[date, int]
    reviewed: pd.DataFrame

    @property
    def rows(self) -> int:
        return sum(self.day_rows.values())


def write_final_decisions(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> FinalDecisions:
    """Replace the days [start, end) of the final-decision table from the predictions and every stored review, in
    the warehouse (a day's rows never come through this process: a million-row day is a join, not a frame)."""
    if not warehouse.table_exists(predictions_table(spec)):
        raise NotInWarehouse(f"{predictions_table(spec)} does not exist yet: score a day of '{spec.name}' first")
    warehouse.ensure_table(reviews_table(spec), review_columns(spec), "review_date")
    table, day = final_decisions_table(spec), spec.timestamp
    written = warehouse.replace_window_query(
        table, day, start, end, _final_select(spec, start, end), final_columns(spec)
    )
    window = day_window(day, start, end)
    if end - start == timedelta(days=1):  # the nightly run's one day: the write's own count is the day's
        day_rows = {start: written} if written else {}
    else:
        counted = warehouse.query(
            f"SELECT {day} AS scored_day, count(*) AS n FROM {table} WHERE {window} GROUP BY {day}"
        )
        day_rows = {as_day(d): int(n) for d, n in zip(counted["scored_day"], counted["n"], strict=True)}
    reviewed = warehouse.query(f"SELECT * FROM {table} WHERE {window} AND reviews > 0")
    reviewed = reviewed.astype({"reviews": "int64", "overridden": "bool", "model_version": "int64"})
    return FinalDecisions(day_rows, reviewed)


def _final_select(spec: ModelSpec, start: date, end: date) -> str:
    entity, day = spec.entity_id, spec.timestamp
    review_band = "NULL" if spec.review_band is None else text_literal(spec.review_band)
    latest = (
        f"SELECT {entity}, decision, reviewer, reviewed_at, reason, review_id, source, "
        f"row_number() OVER (PARTITION BY {entity} ORDER BY reviewed_at DESC, review_id DESC) AS newest, "
        f"count(*) OVER (PARTITION BY {entity}) AS reviews FROM {reviews_table(spec)}"
    )
    return (
        f"SELECT p.{entity}, p.{day}, p.score, p.decision AS model_decision, p.model_version, "
        f"coalesce(r.decision, p.decision) AS final_decision, "
        f"CASE WHEN r.decision IS NULL THEN '{MODEL}' ELSE '{REVIEWER}' END AS final_by, "
        f"r.reviewer, r.reviewed_at, r.reason, r.review_id, r.source AS review_source, "
        f"coalesce(r.reviews, 0) AS reviews, "
        f"(r.decision IS NOT NULL AND r.decision <> p.decision AND NOT coalesce(p.decision = {review_band}, FALSE)) "
        f"AS overridden "
        f"FROM {predictions_table(spec)} p LEFT JOIN ({latest}) r ON r.{entity} = p.{entity} AND r.newest = 1 "
        f"WHERE {day_window(f'p.{day}', start, end)}"
    )


def override_figures(spec: ModelSpec, rows: pd.DataFrame) -> dict[str, float | int]:
    """Reviewed and overridden counts and the override rates of ``rows`` (final-decision rows; those of cases
    never reviewed count for nothing, so the reviewed ones are enough): in all, per band
    of the model's decision and per model version; ``override_rate`` is absent when no model decision was
    reviewed. The review band's rows count as ``reviewed_<band>`` and its reviewers' decisions as
    ``settled_<decision>``."""
    figures: dict[str, float | int] = {"reviewed": int((rows["reviews"] > 0).sum())}
    reviewed = rows[rows["reviews"] > 0]
    in_band = reviewed["model_decision"] == spec.review_band
    decided = reviewed[~in_band]
    figures["reviewed_model_decisions"] = len(decided)
    figures["overridden"] = int(decided["overridden"].sum())
    if len(decided):
        figures["override_rate"] = round(float(decided["overridden"].mean()), 4)
    for band, group in reviewed.groupby("model_decision"):
        figures[f"reviewed_{band}"] = len(group)
        if band != spec.review_band:
            figures[f"override_rate_{band}"] = round(float(group["overridden"].mean()), 4)
    for version, group in decided.groupby("model_version"):
        figures[f"override_rate_v{int(version)}"] = round(float(group["overridden"].mean()), 4)
    for decision, group in reviewed[in_band].groupby("final_decision"):
        figures[f"settled_{decision}"] = len(group)
    return figures


def per_day(spec: ModelSpec, written: FinalDecisions) -> dict[date, dict[str, float | int]]:
    """Each scored day's own figures (row count, final decisions by reviewers, override rates)."""
    import pandas as pd

    reviewed = written.reviewed
    days = pd.to_datetime(reviewed[spec.timestamp]).dt.date
    return {
        day: {"dagster/row_count": rows, **override_figures(spec, reviewed[days == day])}
        for day, rows in sorted(written.day_rows.items())
    }
