"""Per model spec: ``<model>/reviews`` (the landed reviews of each day recorded in ``reviews.<model>``) and
``<model>/final_decisions`` (``predictions.<model>_final_decisions``, each scored day's final decisions, with its
``override_rate`` check). Both are in the ``inference`` group, so the nightly run records the day's landed reviews
after scoring and writes the day's final decisions.

A review lands days after its case was scored, so recording a day's reviews also rewrites the final decisions of
the scored days its cases belong to, and records a materialization (and the check) of each such day of
``<model>/final_decisions``; the ``record_review`` job (``jobs/review.py``) does the same for one decision. The
partition mappings are the identity (a day's final decisions after its predictions and its reviews): the graph
shows the order a nightly run needs, and the cross-day refresh is explicit here rather than a mapping onto every
earlier day.
"""

# No `from __future__ import annotations` here: Dagster reads the asset functions' annotations as real types.
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from assets.ml.spec import ModelSpec, SpecError
from assets.partitions import record_per_day, single_run, window_dates
from assets.review.final_decisions import (
    OVERRIDE_RATE_CHECK,
    final_decisions_table,
    override_figures,
    per_day,
    write_final_decisions,
)
from assets.review.store import (
    LANDING_SOURCE,
    REVIEW_DATE,
    REVIEW_FIELDS,
    check_reviews,
    record_reviews,
    refuse_outside,
    reviews_table,
    scored_days,
)
from assets.step_cost import with_cost
from resources.failures import not_retried
from resources.source.schema import RawTable
from resources.warehouse import WAREHOUSE_POOL, NotInWarehouse, Warehouse
from resources.warehouse.sql import day_window

if TYPE_CHECKING:
    import pandas as pd


def reviews_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "reviews"])


def final_decisions_key(spec: ModelSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "final_decisions"])


def build_review_assets(
    specs: list[ModelSpec], raw_tables: dict[str, RawTable], partitions: dg.PartitionsDefinition, kind: str
) -> list[dg.AssetsDefinition]:
    """Each spec's final decisions, and its landed reviews where its ``review.landing_table`` names a declared raw
    table (checked here: a wrong name or a missing column fails the load naming the spec and the field)."""
    names = [s.name for s in specs]
    built = []
    for spec in specs:
        landing = _landing_table(spec, raw_tables)
        if landing is not None:
            built.append(_reviews_asset(spec, landing, names, partitions, kind))
        built.append(_final_decisions_asset(spec, landing is not None, partitions, kind))
    return built


def _landing_table(spec: ModelSpec, raw_tables: dict[str, RawTable]) -> RawTable | None:
    name = spec.review.landing_table
    if name is None:
        return None
    table = raw_tables.get(name)
    if table is None:
        raise SpecError(
            f"model spec '{spec.name}': field 'review.landing_table': '{name}' is not a declared raw table "
            f"({', '.join(sorted(raw_tables)) or 'none'})"
        )
    missing = [c for c in (spec.entity_id, *REVIEW_FIELDS) if c not in table.column_names]
    if missing:
        raise SpecError(
            f"model spec '{spec.name}': field 'review.landing_table': {name} ({table.declared_in}) lacks the "
            f"column(s) {missing} a review needs ({spec.entity_id}, {', '.join(REVIEW_FIELDS)})"
        )
    return table


def _daily(spec: ModelSpec, partitions: dg.PartitionsDefinition, kind: str) -> dict:
    """What both assets are: daily, one run for a range, warehouse steps of the inference group (nightly runs them)."""
    return {
        "partitions_def": partitions,
        "backfill_policy": single_run,
        "pool": WAREHOUSE_POOL,
        "group_name": "inference",
        "kinds": {"python", kind},
        "owners": [spec.owner],
    }


def _reviews_asset(
    spec: ModelSpec, landing: RawTable, models: list[str], partitions: dg.PartitionsDefinition, kind: str
) -> dg.AssetsDefinition:
    @dg.asset(
        key=reviews_key(spec),
        deps=[dg.AssetKey([landing.source, landing.name]), dg.AssetKey([spec.name, "predictions"])],
        **_daily(spec, partitions, kind),
        description=f"The reviews of '{spec.name}' that landed each day in {landing.qualified}, checked (a known "
        "case, a decision the model makes) and recorded in reviews.<model> beside those of the record_review job; "
        "a later review that decides otherwise is an amendment (amends, sequence). Rewrites the final decisions "
        "of the scored days its cases belong to.",
        metadata={"dagster/table_name": f"reviews.{spec.name}", "landing_table": landing.qualified},
    )
    @with_cost
    def reviews(context: dg.AssetExecutionContext, warehouse: Warehouse) -> Iterator:
        start, end = window_dates(context)
        with warehouse.session(), not_retried(NotInWarehouse):
            landed = _landed(warehouse, landing, start, end)
            _check_models(landed, landing, models)
            mine = landed[landed["model_name"] == spec.name]
            for day, group in mine.groupby(REVIEW_DATE):  # a bad review is named with its file's day
                where = f"{landing.qualified} {day.date()} (its landing file)"
                check_reviews(warehouse, spec, group, where)
            replaced = _landed_cases(warehouse, spec, start, end)
            recorded = record_reviews(
                warehouse,
                spec,
                mine,
                source=f"{LANDING_SOURCE} {landing.qualified} {{day}}",
                where=f"{landing.qualified} {start}..{end - timedelta(days=1)}",
                replace_days=(start, end),
            )
            days = sorted(set(recorded.scored_days) | _scored(warehouse, spec, replaced))
            refreshed = refresh_final_decisions(context, warehouse, spec, days)
        context.log.info(
            f"{spec.name}: {len(recorded.rows)} landed review(s) recorded for {start}..{end - timedelta(days=1)} "
            f"({recorded.amendments} amendment(s)); final decisions rewritten for {len(refreshed)} scored day(s)"
        )
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(recorded.rows),
                "amendments": recorded.amendments,
                "scored_days_refreshed": dg.MetadataValue.text(", ".join(d.isoformat() for d in refreshed) or "none"),
            }
        )

    return reviews


def _landed(warehouse: Warehouse, landing: RawTable, start: date, end: date) -> "pd.DataFrame":
    import pandas as pd

    if not warehouse.table_exists(landing.qualified):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in landing.column_names})
    frame = warehouse.query(
        f"SELECT * FROM {landing.qualified} WHERE {day_window(landing.partition_column, start, end)}"
    )
    frame[REVIEW_DATE] = pd.to_datetime(frame[landing.partition_column])
    return frame


def _check_models(landed: "pd.DataFrame", landing: RawTable, models: list[str]) -> None:
    """A landed review of a model no spec defines is refused, not skipped: it would be lost without a word."""
    if not landed.empty:
        day = landed[REVIEW_DATE].min().date()
        where = f"{landing.qualified} {day}..{landed[REVIEW_DATE].max().date()} (its landing files)"
        refuse_outside(landed, "model_name", models, where, "of a model no spec defines")


def _landed_cases(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> list[str]:
    """The cases of the landed reviews a re-landing of [start, end) replaces (their final decisions change too)."""
    if not warehouse.table_exists(reviews_table(spec)):
        return []
    frame = warehouse.query(
        f"SELECT DISTINCT {spec.entity_id} AS case_id FROM {reviews_table(spec)} "
        f"WHERE {day_window(REVIEW_DATE, start, end)} AND source LIKE '{LANDING_SOURCE}%'"
    )
    return [str(c) for c in frame["case_id"]]


def _scored(warehouse: Warehouse, spec: ModelSpec, cases: list[str]) -> set[date]:
    return set(scored_days(warehouse, spec, cases).values())


def refresh_final_decisions(
    context: dg.OpExecutionContext, warehouse: Warehouse, spec: ModelSpec, days: list[date]
) -> list[date]:
    """Rewrite the final decisions of ``days`` (scored days whose cases got a review) and record each as a
    materialization of its ``<model>/final_decisions`` partition, with its override figures and check."""
    for day in days:
        written = write_final_decisions(warehouse, spec, day, day + timedelta(days=1))
        figures = override_figures(spec, written.reviewed)
        context.log_event(
            dg.AssetMaterialization(
                asset_key=final_decisions_key(spec),
                partition=day.isoformat(),
                description="Rewritten after a review of one of its cases was recorded.",
                metadata={"dagster/row_count": written.rows, **figures, "refreshed_by_run": context.run.run_id},
            )
        )
        context.log_event(dg.AssetCheckEvaluation(asset_key=final_decisions_key(spec), **override_check(spec, figures)))
    return days


def override_check(spec: ModelSpec, figures: dict) -> dict:
    """The ``override_rate`` check's outcome (keyword arguments of an AssetCheckResult or AssetCheckEvaluation):
    failed above the spec's error threshold (ERROR), above its warn threshold (WARN); passed when no model decision
    was reviewed."""
    limits = spec.review.override_rate
    rate = figures.get("override_rate")
    metadata = {
        "override_rate": rate if rate is not None else dg.MetadataValue.text("no model decision reviewed"),
        "reviewed_model_decisions": figures.get("reviewed_model_decisions", 0),
        "overridden": figures.get("overridden", 0),
        "warn_above": limits.warn,
        "error_above": limits.error,
    }
    if rate is not None and rate > limits.error:
        severity, passed, text = dg.AssetCheckSeverity.ERROR, False, f"above the error threshold {limits.error}"
    elif rate is not None and rate > limits.warn:
        severity, passed, text = dg.AssetCheckSeverity.WARN, False, f"above the warn threshold {limits.warn}"
    else:
        severity, passed, text = dg.AssetCheckSeverity.ERROR, True, "within thresholds"
    description = (
        f"reviewers changed {figures.get('overridden', 0)} of {figures.get('reviewed_model_decisions', 0)} reviewed "
        f"model decisions ({rate:.0%}): {text}"
        if rate is not None
        else "no decision the model made (outside the review band) was reviewed"
    )
    return {
        "check_name": OVERRIDE_RATE_CHECK,
        "passed": passed,
        "severity": severity,
        "description": description,
        "metadata": metadata,
    }


def _final_decisions_asset(
    spec: ModelSpec, has_landing: bool, partitions: dg.PartitionsDefinition, kind: str
) -> dg.AssetsDefinition:
    key = final_decisions_key(spec)
    deps = [dg.AssetKey([spec.name, "predictions"])] + ([reviews_key(spec)] if has_landing else [])
    limits = spec.review.override_rate

    @dg.asset(
        key=key,
        deps=deps,
        **_daily(spec, partitions, kind),
        description=f"Each case '{spec.name}' scored that day with its final decision: the model's, or the latest "
        "reviewer's where it was reviewed (who, when, why, the source of the review), with the version that "
        "scored it. Metadata: reviews, overrides and override rates in all, per band and per version.",
        metadata={"dagster/table_name": final_decisions_table(spec)},
        check_specs=[
            dg.AssetCheckSpec(
                OVERRIDE_RATE_CHECK,
                asset=key,
                description=f"Share of reviewed model decisions (outside the review band) a reviewer changed: warns "
                f"above {limits.warn}, fails above {limits.error} (the spec's review.override_rate).",
            )
        ],
    )
    @with_cost
    def final_decisions(context: dg.AssetExecutionContext, warehouse: Warehouse) -> Iterator:
        start, end = window_dates(context)
        with warehouse.session(), not_retried(NotInWarehouse):
            written = write_final_decisions(warehouse, spec, start, end)
        figures = override_figures(spec, written.reviewed)
        if end - start > timedelta(days=1):
            record_per_day(context, per_day(spec, written))
        yield dg.MaterializeResult(metadata={"dagster/row_count": written.rows, **figures})
        yield dg.AssetCheckResult(**override_check(spec, figures))

    return final_decisions
