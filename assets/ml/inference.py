"""Batch inference for one model spec: a window of the scoring mart, scored by the registry's champion.

The champion is resolved once per run to a version number, so a run never mixes versions even if the alias
moves while it runs, and a hand-set alias in the MLflow UI is what the next run uses. Rows stream through in
bounded chunks: read, score, write. Each score gets the name of its decision band (the spec's ``decision_bands``);
rows of the spec's ``review_band`` also land in a review queue table for people to look at (the table is written
either way, empty when the spec names no review band, so readers find it and a re-run clears rows an earlier
review band put there). A challenger, when there is one, scores the same rows in shadow (stored apart, never used
for decisions). The daily asset that calls this is :mod:`assets.ml.inference_assets`.

pandas is imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from assets.ml.spec import ModelSpec, check_mart_columns
from resources.failures import DataFailure, not_retried
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionInfo
from resources.source.schema import Column
from resources.warehouse import Warehouse

if TYPE_CHECKING:
    import pandas as pd

SCORE_CHUNK_ROWS = 200_000


def predictions_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}"


def shadow_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_shadow"


def review_queue_table(spec: ModelSpec) -> str:
    return f"predictions.{spec.name}_review_queue"


def review_queue_where(spec: ModelSpec) -> str:
    """SQL filter of the prediction rows that go to the review queue: the spec's ``review_band``, or none.

    Band names are validated lower_snake_case on load, so the name is safe to put in the SQL literal.
    """
    return "FALSE" if spec.review_band is None else f"decision = '{spec.review_band}'"


class NoChampionError(DataFailure):
    """The registry has no champion to score with: never retried (a version must be trained or promoted first)."""


def prediction_columns(spec: ModelSpec) -> list[Column]:
    """Declared up front, so the table (and the review queue copied from it) exists even if a day is empty."""
    return [
        Column(spec.entity_id, "VARCHAR"),
        Column(spec.timestamp, "DATE"),
        Column("score", "DOUBLE"),
        Column("decision", "VARCHAR"),
        Column("model_name", "VARCHAR"),
        Column("model_version", "BIGINT"),
        Column("dagster_run_id", "VARCHAR"),
        Column("scored_at", "TIMESTAMP"),
    ]


def _check_not_scored_by_another_version(
    warehouse: Warehouse, spec: ModelSpec, start: date, end: date, version: int, rescore: bool
) -> None:
    if rescore or not warehouse.table_exists(predictions_table(spec)):
        return
    others = warehouse.query(
        f"SELECT DISTINCT model_version FROM {predictions_table(spec)} WHERE {spec.timestamp} >= DATE "
        f"'{start.isoformat()}' AND {spec.timestamp} < DATE '{end.isoformat()}' AND model_version <> {int(version)}"
    )
    if not others.empty:
        raise DataFailure(
            description=f"{start}..{end} of '{spec.name}' was already scored by version(s) "
            f"{sorted(int(v) for v in others['model_version'])}, and the champion is now version {version}. "
            "Those decisions were acted on: launch with config `rescore: true` to replace them."
        )


def score_chunks(
    spec: ModelSpec,
    model,
    version: VersionInfo,
    chunks: Iterator[pd.DataFrame],
    run_id: str,
) -> Iterator[pd.DataFrame]:
    """Prediction rows for each chunk of scoring rows: id, day, score, decision band and provenance.

    Rows the model cannot score (a feature column missing, a value that is not a number, a NaN score) fail as a
    :class:`DataFailure`: scoring them again gives the same answer."""
    import pandas as pd

    from assets.ml.evaluation import decide, score

    scored_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    for chunk in chunks:
        with not_retried(ValueError, KeyError):
            probabilities = score(model, chunk, spec)
            decisions = decide(probabilities, spec.decision_bands)
        yield pd.DataFrame(
            {
                spec.entity_id: chunk[spec.entity_id].to_numpy(),
                spec.timestamp: pd.to_datetime(chunk[spec.timestamp]).to_numpy(),
                "score": probabilities.astype("float64"),
                "decision": decisions,
                "model_name": spec.name,
                "model_version": version.version,
                "dagster_run_id": run_id,
                "scored_at": scored_at,
            }
        )


def _agreement(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> float:
    window = f"p.{spec.timestamp} >= DATE '{start.isoformat()}' AND p.{spec.timestamp} < DATE '{end.isoformat()}'"
    frame = warehouse.query(
        f"SELECT avg(CASE WHEN p.decision = s.decision THEN 1.0 ELSE 0.0 END) AS agreement "
        f"FROM {predictions_table(spec)} p JOIN {shadow_table(spec)} s ON p.{spec.entity_id} = s.{spec.entity_id} "
        f"WHERE {window}"
    )
    return float(frame["agreement"].iloc[0])


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
    """Score [start, end) of the scoring mart with the champion (and the challenger in shadow) and write the
    predictions and the review queue; (the materialization's metadata, a one-line summary)."""
    champion = registry.by_alias(spec.name, CHAMPION)
    if champion is None:
        raise NoChampionError(
            description=f"model '{spec.name}' has no '{CHAMPION}' version in the registry "
            f"({registry.tracking_uri}): run the train_{spec.name} job, or promote a version with promote_{spec.name}."
        )
    _check_not_scored_by_another_version(warehouse, spec, start, end, champion.version, rescore)
    mart = f"marts.{spec.scoring_mart}"

    def scored(version: VersionInfo) -> Iterator[pd.DataFrame]:
        rows = warehouse.iter_window(mart, spec.timestamp, start, end, chunk_rows=SCORE_CHUNK_ROWS)
        return score_chunks(spec, registry.load(version), version, _with_columns(rows), run_id)

    def _with_columns(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            check_mart_columns(spec, set(chunk.columns), spec.scoring_mart, f"model spec '{spec.name}'")
            yield chunk

    columns = prediction_columns(spec)
    written = warehouse.replace_window(predictions_table(spec), spec.timestamp, start, end, scored(champion), columns)
    in_review = warehouse.replace_window_from(
        review_queue_table(spec),
        spec.timestamp,
        start,
        end,
        predictions_table(spec),
        where=review_queue_where(spec),
    )
    decisions = warehouse.query(
        f"SELECT decision, count(*) AS n FROM {predictions_table(spec)} WHERE {spec.timestamp} >= DATE "
        f"'{start.isoformat()}' AND {spec.timestamp} < DATE '{end.isoformat()}' GROUP BY decision"
    )
    counts = {str(row.decision): int(row.n) for row in decisions.itertuples()}
    metadata: dict[str, Any] = {
        "dagster/row_count": written,
        "model_version": champion.version,
        "model_uri": champion.uri,
        "review_queue_rows": in_review,
        # Every band of the spec, in its order, zero included: the decision mix plots as one series per band.
        **{f"decisions_{name}": counts.get(name, 0) for name in spec.decision_bands.names},
    }
    challenger = registry.by_alias(spec.name, CHALLENGER)
    if challenger is not None and challenger.version != champion.version:
        warehouse.replace_window(shadow_table(spec), spec.timestamp, start, end, scored(challenger), columns)
        metadata["shadow_version"] = challenger.version
        metadata["champion_challenger_agreement"] = _agreement(warehouse, spec, start, end)
    else:
        # No challenger now: clear the window so a re-run leaves no shadow rows of an earlier challenger.
        warehouse.replace_window(shadow_table(spec), spec.timestamp, start, end, [], columns)
    return metadata, f"scored {written} rows of {mart} {start}..{end} with {champion.uri}"
