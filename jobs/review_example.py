"""The loan example's reviews, for `make run` (jobs/bootstrap.py): a small review file written into the landing
folder for cases of a scored day, as a review tool would drop it, and one decision recorded through the
``record_review`` job, so the final decisions and their override figures show reviews after the bootstrap.

The file is the same on every run (the same cases, times and decisions: landing it again replaces it), and the UI
decision is recorded once (not again when a run of that job already recorded one for the case).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from typing import TextIO

import dagster as dg

from assets.ml.inference import predictions_table
from assets.ml.spec import ModelSpec
from assets.review import reviews_key
from assets.review.final_decisions import final_decisions_table
from assets.review.store import UI_SOURCE, allowed_decisions, reviews_table
from jobs.backfill import QUIET, run_job
from jobs.review import RECORD_REVIEW_JOB
from resources.settings import Settings
from resources.warehouse.sql import date_literal, text_literal

QUEUE_CASES = 6  # review-queue cases settled by a reviewer
APPEALS = 5  # cases of the model's last decision reviewed on appeal; the first is changed (1 of 5: the warn limit)


def land_and_record_reviews(
    out: TextIO,
    settings: Settings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    specs: list,
    scored: date,
    day: date,
) -> None:
    """Writes ``day``'s review file (reviews of cases scored on ``scored``), records it with one nightly run of the
    landing table and each model's reviews, then records one decision from the UI job; prints what it did."""
    from resources.build import open_warehouse
    from resources.source.declarations import load_raw_tables

    warehouse = open_warehouse(settings)
    tables = load_raw_tables(settings.manifest_path)
    landed: dict[str, list[dict]] = {}
    for spec in specs:
        if spec.review.landing_table is None or spec.decisions is None:
            continue
        landed.setdefault(spec.review.landing_table, []).extend(_reviews_of(warehouse, spec, scored, day))
    for name, rows in landed.items():
        table = tables[name]
        path = _write(settings, table, rows, day)
        keys = [dg.AssetKey([table.source, table.name])] + [
            reviews_key(s) for s in specs if s.review.landing_table == name and s.decisions is not None
        ]
        run_job(
            out,
            defs,
            "nightly",
            instance,
            what=f" (reviews landed in {path})",
            partition_key=day.isoformat(),
            asset_selection=keys,
        )
    for spec in specs:
        if spec.review.landing_table in landed:
            _record_one_from_the_ui(out, warehouse, defs, instance, spec, scored)
            _summary(out, warehouse, spec, scored)


def _reviews_of(warehouse, spec: ModelSpec, scored: date, day: date) -> list[dict]:
    allowed = allowed_decisions(warehouse, spec)
    rows = warehouse.query(
        f"SELECT {spec.entity_id} AS case_id, score, decision FROM {predictions_table(spec)} "
        f"WHERE {spec.timestamp} = {date_literal(scored)} ORDER BY {spec.entity_id}"
    )
    queue = rows[rows["decision"] == spec.review_band].head(QUEUE_CASES).sort_values("score")
    appeals = rows[rows["decision"] == allowed[-1]].head(APPEALS)
    at = datetime.combine(day, time(9, 0))
    reviews = []
    for n, case in enumerate(queue["case_id"]):  # the lower scores approved, the higher declined
        decision = allowed[0] if n < len(queue) / 2 else allowed[-1]
        reason = "income and employment verified" if decision == allowed[0] else "repayment capacity not shown"
        reviews.append(_row(spec, case, "reviewer.a", decision, reason, at + timedelta(minutes=5 * n)))
    for n, case in enumerate(appeals["case_id"]):
        decision = allowed[0] if n == 0 else allowed[-1]
        reason = "appeal upheld: new payslips" if n == 0 else "appeal refused: nothing new"
        reviews.append(_row(spec, case, "reviewer.b", decision, reason, at + timedelta(hours=2, minutes=5 * n)))
    return reviews


def _row(spec: ModelSpec, case: str, reviewer: str, decision: str, reason: str, at: datetime) -> dict:
    return {
        spec.entity_id: case,
        "model_name": spec.name,
        "reviewer": reviewer,
        "decision": decision,
        "reason": reason,
        "reviewed_at": at.isoformat(sep=" "),
    }


def _write(settings: Settings, table, rows: list[dict], day: date):
    """The day's file, written under a temporary name and renamed whole (the table's ``complete_when``)."""
    import pandas as pd

    folder = settings.landing_dir / table.source / table.name
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if table.partition_from == "column":
        frame[table.partition_column] = day.isoformat()
    path = folder / f"{table.file_name.format(day=day.isoformat())}.csv"
    part = path.with_name(path.name + ".part")
    frame[[c.name for c in table.file_columns]].to_csv(part, index=False)
    os.replace(part, path)
    return path


def _record_one_from_the_ui(out, warehouse, defs, instance, spec: ModelSpec, scored: date) -> None:
    """The first queue case reviewed again from the UI job, deciding otherwise: an amendment (once)."""
    done = warehouse.query(f"SELECT count(*) AS n FROM {reviews_table(spec)} WHERE source LIKE '{UI_SOURCE} %'")[
        "n"
    ].iloc[0]
    if done:
        return
    first = warehouse.query(
        f"SELECT r.{spec.entity_id} AS case_id, r.decision FROM {reviews_table(spec)} r JOIN "
        f"{predictions_table(spec)} p ON p.{spec.entity_id} = r.{spec.entity_id} WHERE p.{spec.timestamp} = "
        f"{date_literal(scored)} AND p.decision = {text_literal(spec.review_band)} ORDER BY r.reviewed_at LIMIT 1"
    )
    if first.empty:
        return
    allowed = allowed_decisions(warehouse, spec)
    other = next(d for d in allowed if d != first["decision"].iloc[0])
    config = {
        "model": spec.name,
        "case_id": str(first["case_id"].iloc[0]),
        "reviewer": "reviewer.lead",
        "decision": other,
        "reason": "second look: amended after the bureau's update",
    }
    run_job(
        out,
        defs,
        RECORD_REVIEW_JOB,
        instance,
        run_config={**QUIET, "ops": {"record_review_decision": {"config": config}}},
        what=f" ({spec.name} {config['case_id']}: {other}, an amendment)",
    )


def _summary(out: TextIO, warehouse, spec: ModelSpec, scored: date) -> None:
    frame = warehouse.query(
        f"SELECT count(*) AS cases, sum(CASE WHEN final_by = 'reviewer' THEN 1 ELSE 0 END) AS by_reviewer, "
        f"sum(CASE WHEN overridden THEN 1 ELSE 0 END) AS overridden FROM {final_decisions_table(spec)} "
        f"WHERE {spec.timestamp} = {date_literal(scored)}"
    )
    row = frame.iloc[0]
    print(
        f"    {final_decisions_table(spec)} {scored}: {int(row['cases'])} cases, {int(row['by_reviewer'] or 0)} "
        f"decided by a reviewer, {int(row['overridden'] or 0)} model decision(s) overridden",
        file=out,
    )
