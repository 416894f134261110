"""Batch inference for one model spec: a window of the scoring mart, scored by the registry's champion.

The champion is resolved once per run to a version number, so a run never mixes versions even if the alias
moves while it runs, and a hand-set alias in the MLflow UI is what the next run uses. Rows stream through in
bounded chunks, read once for every version that scores them (the champion, the challenger in shadow) and
written in one transaction; the scoring of a chunk overlaps the read of the next and the write of the previous
(``Warehouse.replace_windows_mapped``). What a row holds follows the spec's ``task`` (:mod:`assets.ml.scorer`): a
probability and its decision band (binary), a predicted value and its band if the spec has ``decision_bands``
(regression), or the predicted class with its probability, every class's probability and the class's decision
(multiclass, ``class_decisions``). Rows of the spec's ``review_band`` also land in a review queue table for people
to look at (the table is written either way, empty when the spec names no review band, so readers find it and a
re-run clears rows an earlier review band put there). A challenger, when there is one, scores the same rows in shadow (stored apart, never used
for decisions). The daily asset that calls this is :mod:`assets.ml.inference_assets`.

With the spec's ``canary`` on, the challenger also decides a stable slice of entities (:mod:`assets.ml.canary`):
each row's ``decided_by`` says which role decided it and ``model_version`` which version (the version whose score
and decision the row holds). Rows outside the lowest (approve) band carry their ``reasons`` (the spec's
``reason_codes``, :mod:`assets.ml.reasons`; without bands, the review band's rows, else every row), computed with
the model that decided them. The rows themselves are
computed in :mod:`assets.ml.scorer`.

The model input of every scored row is kept in ``predictions.<model>_inputs`` (:func:`input_columns`): the feature
columns the run's versions read, as they read them, written with the predictions (one transaction on DuckDB and
Postgres; on Spark one table after the other, tied by ``scored_at``), so a decision replays from what was scored
(:mod:`assets.ml.replay`) even after the mart row is rebuilt.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from assets.ml.canary import DECIDED_BY_COLUMN, CanaryPlan, plan_canary, slice_metadata
from assets.ml.reasons import REASONS_COLUMN
from assets.ml.scorer import (
    CLASS_PROBABILITIES_COLUMN,
    PREDICTED_CLASS_COLUMN,
    SHADOW,
    InputRows,
    Scorer,
    ScoreRows,
    explained_rows_described,
    make_scorer,
    read_columns,
    reasons_off,
)
from assets.ml.spec import ModelSpec, check_mart_columns
from resources.failures import DataFailure
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry
from resources.source.schema import Column
from resources.warehouse import Warehouse
from resources.warehouse.mapped import MappedTable
from resources.warehouse.sql import day_window, text_literal

SCORE_CHUNK_ROWS = 200_000


def predictions_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}"


def shadow_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_shadow"


def review_queue_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_review_queue"


def inputs_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_inputs"


def input_columns(spec: ModelSpec, inputs: InputRows) -> list[Column]:
    """The inputs table's columns (:class:`~assets.ml.scorer.InputRows`): a version reading a new feature adds its
    column (NULL in earlier rows); a column no version reads any more stays, NULL in new rows."""
    return [
        Column(spec.entity_id, "VARCHAR"),
        Column(spec.timestamp, "DATE"),
        *(Column(c, "DOUBLE") for c in inputs.numeric if c not in (spec.entity_id, spec.timestamp)),
        *(Column(c, "VARCHAR") for c in inputs.categorical if c not in (spec.entity_id, spec.timestamp)),
        Column("scored_at", "TIMESTAMP"),  # the scored_at of the prediction rows scored from this input
    ]


def review_queue_where(spec: ModelSpec) -> str:
    """SQL filter of the prediction rows that go to the review queue: the spec's ``review_band``, or none. For
    multiclass the review band may name a decision or a predicted class (a class name can be any text: quoted)."""
    if spec.review_band is None:
        return "FALSE"
    literal = text_literal(spec.review_band)
    if spec.task == "multiclass":
        return f"(decision = {literal} OR {PREDICTED_CLASS_COLUMN} = {literal})"
    return f"decision = {literal}"


class NoChampionError(DataFailure):
    """The registry has no champion to score with: never retried (a version must be trained or promoted first)."""


def prediction_columns(spec: ModelSpec) -> list[Column]:
    """Declared up front, so the table (and the review queue copied from it) exists even if a day is empty; a table
    made before a column was declared gets it added (NULL in its earlier rows). Multiclass adds the predicted
    class and every class's probability (a JSON object as text, which every engine stores and reads alike)."""
    columns = [
        Column(spec.entity_id, "VARCHAR"),
        Column(spec.timestamp, "DATE"),
        Column("score", "DOUBLE"),
        Column("decision", "VARCHAR"),
        Column("model_name", "VARCHAR"),
        Column("model_version", "BIGINT"),  # the version whose score and decision the row holds
        Column("dagster_run_id", "VARCHAR"),
        Column("scored_at", "TIMESTAMP"),
        Column(DECIDED_BY_COLUMN, "VARCHAR"),  # champion | challenger (the canary); shadow table: shadow
        Column(REASONS_COLUMN, "VARCHAR"),  # "f1, f2, f3": what pushed the score up; NULL in the lowest band
    ]
    if spec.task == "multiclass":
        columns += [
            Column(PREDICTED_CLASS_COLUMN, "VARCHAR"),
            Column(CLASS_PROBABILITIES_COLUMN, "VARCHAR"),  # {"<class>": probability, ...}, the model's class order
        ]
    return columns


def _check_not_scored_by_another_version(
    warehouse: Warehouse, spec: ModelSpec, start: date, end: date, champion: int, canary: int | None, rescore: bool
) -> None:
    """Refuse to replace decisions another version made: rows the champion decided must be of ``champion``, rows
    the canary decided of the ``canary`` version taking the slice now (None: no canary now)."""
    if rescore or not warehouse.table_exists(predictions_table(spec)):
        return
    # a table from before decided_by
    warehouse.ensure_table(predictions_table(spec), prediction_columns(spec), spec.timestamp)
    same = f"(coalesce({DECIDED_BY_COLUMN}, '{CHAMPION}') = '{CHAMPION}' AND model_version = {int(champion)})"
    if canary is not None:
        same += f" OR ({DECIDED_BY_COLUMN} = '{CHALLENGER}' AND model_version = {int(canary)})"
    others = warehouse.query(
        f"SELECT DISTINCT model_version FROM {predictions_table(spec)} "
        f"WHERE {day_window(spec.timestamp, start, end)} AND NOT ({same})"
    )
    if not others.empty:
        now = f"version {champion}" + ("" if canary is None else f" (the canary: version {canary})")
        raise DataFailure(
            description=f"{start}..{end} of '{spec.name}' was already scored by version(s) "
            f"{sorted(int(v) for v in others['model_version'])}, and the champion is now {now}. "
            "Those decisions were acted on: launch with config `rescore: true` to replace them."
        )


def _agreement(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> dict[str, float]:
    """How the shadow's rows compare with the decided ones: the share of equal decisions (where the spec makes
    decisions), of equal predicted classes (multiclass) and the mean absolute difference of the predicted values
    (regression)."""
    window = day_window(f"p.{spec.timestamp}", start, end)
    figures = {}
    if spec.task != "regression" or spec.decision_bands is not None:
        figures["champion_challenger_agreement"] = "avg(CASE WHEN p.decision = s.decision THEN 1.0 ELSE 0.0 END)"
    if spec.task == "multiclass":
        figures["champion_challenger_class_agreement"] = (
            f"avg(CASE WHEN p.{PREDICTED_CLASS_COLUMN} = s.{PREDICTED_CLASS_COLUMN} THEN 1.0 ELSE 0.0 END)"
        )
    if spec.task == "regression":
        figures["champion_challenger_mean_abs_difference"] = "avg(abs(p.score - s.score))"
    frame = warehouse.query(
        "SELECT " + ", ".join(f"{sql} AS {name}" for name, sql in figures.items()) + " "
        f"FROM {predictions_table(spec)} p JOIN {shadow_table(spec)} s ON p.{spec.entity_id} = s.{spec.entity_id} "
        f"WHERE {window}"
    )
    return {name: float(frame[name].iloc[0]) for name in figures}


def per_day_figures(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> dict[date, dict[str, int]]:
    """Each day of [start, end): its rows, decisions per band (or per decision written) and review queue rows; every
    day of the window is listed, an empty one with zeros. Counted where the rows are (two grouped queries)."""
    from datetime import timedelta

    window = day_window(spec.timestamp, start, end)
    decided = warehouse.query(
        f"SELECT {spec.timestamp} AS day, decision, count(*) AS n FROM {predictions_table(spec)} WHERE {window} "
        "GROUP BY 1, 2"
    )
    queued = warehouse.query(
        f"SELECT {spec.timestamp} AS day, count(*) AS n FROM {review_queue_table(spec)} WHERE {window} GROUP BY 1"
    )
    names = spec.decisions or sorted({str(d) for d in decided["decision"] if d is not None})
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    figures: dict[date, dict[str, int]] = {
        day: {"dagster/row_count": 0, **{f"decisions_{name}": 0 for name in names}, "review_queue_rows": 0}
        for day in days
    }
    for row in decided.itertuples():
        day = _as_date(row.day)
        if day in figures:
            figures[day]["dagster/row_count"] += int(row.n)
            if row.decision is not None:
                figures[day][f"decisions_{row.decision}"] = figures[day].get(f"decisions_{row.decision}", 0) + int(
                    row.n
                )
    for row in queued.itertuples():
        day = _as_date(row.day)
        if day in figures:
            figures[day]["review_queue_rows"] = int(row.n)
    return figures


def _as_date(value: Any) -> date:
    """A DATE as the engines hand it back (date, datetime, pandas Timestamp)."""
    return value.date() if hasattr(value, "date") and callable(value.date) else value


def _decision_metadata(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> dict[str, Any]:
    """The decision mix of the window, and for regression and multiclass a summary of what was predicted.

    Decisions: every band of the spec, in its order, zero included (one plotted series per band); for multiclass
    those written (its classes are the model's, not the spec's). Regression: the mean, lowest and highest
    predicted value; multiclass: the rows per predicted class and the mean probability of the predicted class."""
    table, window = predictions_table(spec), day_window(spec.timestamp, start, end)
    decisions = warehouse.query(f"SELECT decision, count(*) AS n FROM {table} WHERE {window} GROUP BY decision")
    counts = {str(r.decision): int(r.n) for r in decisions.itertuples() if r.decision is not None}
    names = spec.decisions or sorted(counts)
    metadata: dict[str, Any] = {f"decisions_{name}": counts.get(name, 0) for name in names}
    if spec.task == "binary":
        return metadata
    # Aggregates every engine computes where the rows are (no rows come back to this process).
    summary = warehouse.query(
        f"SELECT count(*) AS n, avg(score) AS mean, min(score) AS low, max(score) AS high FROM {table} WHERE {window}"
    ).iloc[0]
    if spec.task == "regression":
        if spec.decision_bands is None:
            metadata["decisions"] = "none: the spec has no decision_bands"
        if int(summary["n"]):
            metadata.update(
                {
                    name: float(summary[column])
                    for name, column in (
                        ("predicted_mean", "mean"),
                        ("predicted_min", "low"),
                        ("predicted_max", "high"),
                    )
                }
            )
        return metadata
    classes = warehouse.query(
        f"SELECT {PREDICTED_CLASS_COLUMN} AS c, count(*) AS n FROM {table} WHERE {window} GROUP BY 1 ORDER BY 1"
    )
    metadata.update({f"predicted_class_{r.c}": int(r.n) for r in classes.itertuples()})
    if int(summary["n"]):
        metadata["mean_predicted_class_probability"] = float(summary["mean"])
    return metadata


def _reason_metadata(
    warehouse: Warehouse, spec: ModelSpec, scorers: list[Scorer], start: date, end: date
) -> dict[str, Any]:
    """Which method wrote the reason codes, against what, and what they cost (rows, seconds). Where the scoring
    ran in this process its scorers counted both; where it ran on the engine's executors (Spark) the rows are
    counted in the table and the seconds, spent there, are not shown."""
    explained = [s for s in scorers if s.explainer is not None]
    if not explained:
        return {"reason_codes": reasons_off(spec, "occlusion") or reasons_off(spec, None) or "off"}
    methods = ", ".join(
        f"{s.role} version {s.version.version}: {s.explainer.method}, against {s.explainer.against}" for s in explained
    )
    which = (
        f"outside band '{spec.decision_bands.names[0]}'"
        if spec.decision_bands is not None
        else (explained_rows_described(spec) or "of every row")
    )
    metadata: dict[str, Any] = {
        "reason_codes": f"top {spec.reason_codes.top} features {which} ({methods})",
        "reason_code_rows": sum(s.reason_rows for s in explained),
    }
    if metadata["reason_code_rows"]:
        metadata["reason_code_seconds"] = round(sum(s.reason_seconds for s in explained), 3)
    else:
        counted = warehouse.query(
            f"SELECT count(*) AS n FROM {predictions_table(spec)} WHERE {REASONS_COLUMN} IS NOT NULL AND "
            f"{day_window(spec.timestamp, start, end)}"
        )
        metadata["reason_code_rows"] = int(counted["n"].iloc[0])
    return metadata


def score_window(
    warehouse: Warehouse,
    registry: ModelRegistry,
    spec: ModelSpec,
    start: date,
    end: date,
    *,
    rescore: bool,
    run_id: str,
) -> tuple[dict[str, Any], str]:
    """Score [start, end) of the scoring mart with the champion (the canary slice with the challenger, and every
    row with the challenger in shadow) and write the predictions, the model input they were scored from and the
    review queue; (the materialization's metadata, a one-line summary)."""
    champion = registry.by_alias(spec.name, CHAMPION)
    if champion is None:
        raise NoChampionError(
            description=f"model '{spec.name}' has no '{CHAMPION}' version in the registry "
            f"({registry.shown_uri}): run the train_{spec.name} job, or promote a version with promote_{spec.name}."
        )
    challenger = registry.by_alias(spec.name, CHALLENGER)  # resolved once too: the canary and the shadow agree
    plan: CanaryPlan = plan_canary(spec, registry, champion, challenger)
    canary_version = plan.challenger.version if plan.on else None
    _check_not_scored_by_another_version(warehouse, spec, start, end, champion.version, canary_version, rescore)
    mart = f"marts.{spec.scoring_mart}"
    check_mart_columns(spec, set(warehouse.column_names(mart)), spec.scoring_mart, f"model spec '{spec.name}'")
    scored_at = datetime.now(UTC).replace(tzinfo=None)

    deciding = make_scorer(spec, CHAMPION, champion, registry.load(champion), reasons=True)
    scorers = [deciding]
    canary = None
    if plan.on:
        scorers.append(make_scorer(spec, CHALLENGER, plan.challenger, registry.load(plan.challenger), reasons=True))
        canary = (plan.share, scorers[-1])
    columns = prediction_columns(spec)
    table = predictions_table(spec)
    targets = [MappedTable(table, ScoreRows(spec, deciding, run_id, canary, scored_at), columns)]
    shadow = None
    if challenger is not None and challenger.version != champion.version:
        # Loaded before the scoring starts: the challenger scores each chunk of the one read in shadow, beside the
        # champion, and both tables are written in one transaction (Spark: each on the executors).
        shadow = Scorer(SHADOW, challenger, scorers[-1].model if plan.on else registry.load(challenger))
        targets.append(MappedTable(shadow_table(spec), ScoreRows(spec, shadow, run_id, None, scored_at), columns))
    read = read_columns(spec, scorers + ([shadow] if shadow is not None else []))
    inputs = InputRows(spec.name, spec.entity_id, spec.timestamp, *map(tuple, read), scored_at)
    targets.append(MappedTable(inputs_table(spec), inputs, input_columns(spec, inputs)))
    written = warehouse.replace_windows_mapped(spec.timestamp, start, end, mart, targets, chunk_rows=SCORE_CHUNK_ROWS)[
        0
    ]
    # a queue from before a column was declared
    warehouse.ensure_table(review_queue_table(spec), columns, spec.timestamp)
    in_review = warehouse.replace_window_from(
        review_queue_table(spec),
        spec.timestamp,
        start,
        end,
        table,
        where=review_queue_where(spec),
        columns=[c.name for c in columns],
    )
    metadata: dict[str, Any] = {
        "dagster/row_count": written,
        "model_version": champion.version,
        "model_uri": champion.uri,
        "review_queue_rows": in_review,
        **_decision_metadata(warehouse, spec, start, end),
        "canary": plan.why,
        **({} if canary_version is None else {"canary_version": canary_version}),  # no -1 where a person reads
        **(slice_metadata(warehouse, table, spec, start, end) if plan.on else {}),
        **_reason_metadata(warehouse, spec, scorers, start, end),
    }
    if shadow is not None:
        metadata["shadow_version"] = shadow.version.version
        metadata.update(_agreement(warehouse, spec, start, end))
    else:
        # No challenger now: clear the window so a re-run leaves no shadow rows of an earlier challenger.
        warehouse.replace_window(shadow_table(spec), spec.timestamp, start, end, [], columns)
    return metadata, f"scored {written} rows of {mart} {start}..{end} with {champion.uri}"
