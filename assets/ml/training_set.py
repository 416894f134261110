"""The training set of a model spec: the labeled window of its mart that a version learns from.

The newest ``evaluation.window_days`` days with labels (up to an ``as_of`` day, when given), written to the
warehouse table :func:`training_table` for the model asset and the gate to read. A retraining launched by the
monitoring sensor also needs labels the champion never saw: :func:`labels_against_champion` refuses it otherwise,
naming the champion's last label day and when the next labels are due.

With the spec's ``review.labels_from_reviews`` on, reviewed cases whose real label never arrived join the rows that
are trained on (:func:`review_labeled_rows`); the column :data:`LABEL_SOURCE` then says which rows are which.

pandas is imported inside the functions: this module is imported when Dagster loads its definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from assets.ml.provenance import LABEL_LAST_DAY_TAG, tagged_day
from assets.ml.spec import ModelSpec, check_mart_columns
from resources.failures import DataFailure
from resources.registry import CHAMPION, ModelRegistry
from resources.warehouse import Warehouse
from resources.warehouse.sql import date_literal, day_window, text_literal

if TYPE_CHECKING:
    import pandas as pd

MARTS_SCHEMA = "marts"
ALL_TIME = (date(1900, 1, 1), date(9999, 12, 31))
# With labels_from_reviews on, the training set's column saying where each row's label came from.
LABEL_SOURCE, REAL, REVIEW = "label_source", "real", "review"


def training_table(spec: ModelSpec) -> str:
    return f"ml.{spec.name}_training_set"


def read_training_set(warehouse: Warehouse, spec: ModelSpec) -> pd.DataFrame:
    return warehouse.read_window(training_table(spec), spec.timestamp, *ALL_TIME)


def label_days(frame: pd.DataFrame, spec: ModelSpec) -> tuple[date, date]:
    """(first, last) label date (``spec.label_date``) of the rows."""
    import pandas as pd

    labelled = pd.to_datetime(frame[spec.label_date])
    return labelled.min().date(), labelled.max().date()


def training_window(warehouse: Warehouse, spec: ModelSpec, as_of: str | None) -> tuple[date, date]:
    """[start, end) on the spec's timestamp: the newest ``window_days`` days with labels, up to ``as_of``."""
    import pandas as pd

    mart = f"{MARTS_SCHEMA}.{spec.training_mart}"
    if as_of:
        last = date.fromisoformat(as_of)
    else:
        newest = warehouse.query(f"SELECT max({spec.timestamp}) AS d FROM {mart}")["d"].iloc[0]
        if pd.isna(newest):
            raise DataFailure(f"{mart} has no labeled rows yet: materialize more history (labels arrive late)")
        last = pd.Timestamp(newest).date()
    return last - timedelta(days=spec.evaluation.window_days - 1), last + timedelta(days=1)


@dataclass(frozen=True)
class WrittenTrainingSet:
    rows: int
    start: date  # the window on spec.timestamp, [start, end)
    end: date
    first_label: date
    last_label: date
    labels_used: str  # how many rows were labeled after the champion's last label day, in words
    labels_newer: int
    target_figures: dict[str, float]  # what the target looks like: see target_figures()
    review_labeled: int | None = None  # rows labeled from reviews; None: labels_from_reviews is off


def write_training_set(
    warehouse: Warehouse,
    registry: ModelRegistry,
    spec: ModelSpec,
    spec_source: str,
    as_of: str | None,
    retrain_reason: str | None,
) -> WrittenTrainingSet:
    """Read the window from the mart, check it, and replace the training-set table with it.

    ``retrain_reason``: the failed check that launched this retraining (monitoring sensor), if any; such a
    retraining is refused (:class:`DataFailure`) when no row was labeled after the champion's last label day.
    """
    import pandas as pd

    start, end = training_window(warehouse, spec, as_of)
    frame = read_training_window(warehouse, spec, start, end)
    if as_of and not frame.empty:
        check_mart_columns(spec, set(frame.columns), spec.training_mart, spec_source)
        frame = frame[pd.to_datetime(frame[spec.label_date]) <= pd.Timestamp(as_of)]
    if frame.empty:
        raise DataFailure(f"{spec.training_mart} has no rows between {start} and {end}")
    check_mart_columns(spec, set(frame.columns), spec.training_mart, spec_source)
    first_label, last_label = label_days(frame, spec)
    labels = labels_against_champion(registry, spec, frame, last_label, retrain_reason)
    review_labeled = None
    if spec.review.review_labels is not None:
        reviewed = review_labeled_rows(warehouse, spec, frame, start, as_of, last_label)
        review_labeled = len(reviewed)
        frame = frame.assign(**{LABEL_SOURCE: REAL})
        if review_labeled:
            frame = pd.concat([frame, reviewed], ignore_index=True)
            first_label = min(first_label, label_days(frame, spec)[0])
    rows = warehouse.replace_window(training_table(spec), spec.timestamp, *ALL_TIME, [frame])
    return WrittenTrainingSet(
        rows=rows,
        start=start,
        end=end,
        first_label=first_label,
        last_label=last_label,
        labels_used=labels["used"],
        labels_newer=labels["newer"],
        target_figures=target_figures(frame, spec),
        review_labeled=review_labeled,
    )


def review_labeled_rows(
    warehouse: Warehouse, spec: ModelSpec, frame: pd.DataFrame, start: date, as_of: str | None, last_label: date
) -> pd.DataFrame:
    """Reviewed cases learned from as if labeled (``review.labels_from_reviews``), in ``frame``'s columns.

    A case qualifies when (1) the training mart holds no real label for it (as of ``as_of``, when given): a review
    never overrides a real label; (2) its case day (``spec.timestamp``) is at least ``after_days`` before the
    reference day (``as_of``, else the window's last label day ``last_label``): its label had time to arrive; (3) its
    case day is in the window and before the holdout's first day (the newest ``holdout_days`` days of ``frame``), so
    the holdout the gate judges on stays real labels only; (4) its latest review (by ``reviewed_at``, up to the
    reference day) is a decision the mapping lists. Its target is that decision's value, its ``label_date`` the
    review's day, its other columns the scoring mart's row as stored: the scoring mart is built by the same dbt
    code from the same intermediate model as the training mart, so its columns have the training mart's names and
    types on every engine (``predictions.<model>_inputs`` holds what one version read, as float64, and only
    columns some version used).
    """
    import pandas as pd

    from assets.review.store import reviews_table

    mapping = spec.review.review_labels
    if not warehouse.table_exists(reviews_table(spec)):
        return frame.iloc[0:0].assign(**{LABEL_SOURCE: REVIEW})
    reference = date.fromisoformat(as_of) if as_of else last_label
    days = sorted(pd.to_datetime(frame[spec.timestamp]).dt.date.unique())
    holdout_start = days[-spec.evaluation.holdout_days] if len(days) > spec.evaluation.holdout_days else start
    last_case_day = min(reference - timedelta(days=mapping.after_days), holdout_start - timedelta(days=1))
    entity, day = spec.entity_id, spec.timestamp
    decisions = ", ".join(text_literal(d) for d in mapping.labels)
    known = f" WHERE {spec.label_date} < {date_literal(reference + timedelta(days=1))}" if as_of else ""
    latest = (
        f"SELECT {entity}, decision, reviewed_at, "
        f"row_number() OVER (PARTITION BY {entity} ORDER BY reviewed_at DESC, review_id DESC) AS newest "
        f"FROM {reviews_table(spec)} WHERE reviewed_at < TIMESTAMP '{reference + timedelta(days=1)} 00:00:00'"
    )
    found = warehouse.query(
        f"SELECT s.*, r.decision AS nightjar_review_decision, r.reviewed_at AS nightjar_reviewed_at "
        f"FROM {MARTS_SCHEMA}.{spec.scoring_mart} s JOIN ({latest}) r ON r.{entity} = s.{entity} AND r.newest = 1 "
        f"LEFT JOIN (SELECT DISTINCT {entity} FROM {MARTS_SCHEMA}.{spec.training_mart}{known}) t "
        f"ON t.{entity} = s.{entity} "
        f"WHERE t.{entity} IS NULL AND r.decision IN ({decisions}) "
        f"AND {day_window(f's.{day}', start, last_case_day + timedelta(days=1))} "
        f"ORDER BY s.{day}, s.{entity}"
    )
    found = found.drop_duplicates(entity, keep="last")  # a case the scoring mart holds on two days: its last
    labels = found["nightjar_review_decision"].map(mapping.labels)
    reviewed_day = pd.to_datetime(found["nightjar_reviewed_at"]).dt.normalize()
    rows = found[[c for c in frame.columns if c in found.columns and c not in (spec.target, spec.label_date)]]
    try:
        rows = rows.assign(
            **{
                spec.target: labels.astype(frame[spec.target].dtype),
                spec.label_date: _like(reviewed_day, frame[spec.label_date]),
                LABEL_SOURCE: REVIEW,
            }
        )
    except (TypeError, ValueError) as error:
        raise DataFailure(
            f"review.labels_from_reviews.labels: the values {sorted(set(mapping.labels.values()), key=str)} do not "
            f"fit {spec.training_mart}.{spec.target} ({frame[spec.target].dtype}): {error}"
        ) from error
    return rows.reset_index(drop=True)


def _like(days: pd.Series, column: pd.Series) -> pd.Series:
    """``days`` (midnights) in the form ``column`` holds its dates: datetime64 as its dtype, else date objects."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        return days.astype(column.dtype)
    return days.dt.date


def review_labeled_count(frame: pd.DataFrame) -> int | None:
    """Rows of a training set labeled from reviews; None when it has no :data:`LABEL_SOURCE` column (off)."""
    if LABEL_SOURCE not in frame.columns:
        return None
    return int((frame[LABEL_SOURCE] == REVIEW).sum())


def target_figures(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """The target of the rows in a few numbers, by task: the positive rate (binary); the mean, 10th and 90th
    percentile (regression); the number of classes and the largest class's share (multiclass)."""
    import pandas as pd

    y = frame[spec.target]
    if spec.task == "regression":
        values = pd.to_numeric(y, errors="coerce")
        return {
            "target_mean": float(values.mean()),
            "target_p10": float(values.quantile(0.1)),
            "target_p90": float(values.quantile(0.9)),
        }
    if spec.task == "multiclass":
        shares = y.value_counts(normalize=True)
        return {"classes": len(shares), "largest_class_share": float(shares.max())}
    return {"positive_rate": float(y.mean())}


def read_training_window(warehouse: Warehouse, spec: ModelSpec, start: date, end: date) -> pd.DataFrame:
    """The mart's rows of [start, end); with ``evaluation.max_training_rows``, at most that many: those whose entity
    hashes lowest (the same rows on every run and engine, whatever their order), chosen in the warehouse."""
    mart = f"{MARTS_SCHEMA}.{spec.training_mart}"
    limit = spec.evaluation.max_training_rows
    if limit is None:
        return warehouse.read_window(mart, spec.timestamp, start, end)
    frame = warehouse.query(
        f"SELECT * FROM {mart} WHERE {day_window(spec.timestamp, start, end)} "
        f"ORDER BY md5({warehouse.as_text(spec.entity_id)}), {spec.entity_id} LIMIT {int(limit)}"
    )
    return frame.sort_values([spec.timestamp, spec.entity_id], kind="stable", ignore_index=True)


def labels_against_champion(
    registry: ModelRegistry, spec: ModelSpec, frame: pd.DataFrame, last_label: date, retrain_reason: str | None
) -> dict[str, Any]:
    """How many of the rows were labeled after the champion's last label day; refuses (DataFailure) a retraining
    the monitoring sensor launched (``retrain_reason``) when there are none: the champion already learned from every
    label."""
    import pandas as pd

    champion = registry.by_alias(spec.name, CHAMPION)
    seen = tagged_day(champion, LABEL_LAST_DAY_TAG)
    if champion is None or seen is None:
        known = "no champion yet" if champion is None else f"champion version {champion.version} records no label days"
        return {"used": f"every label is new ({known})", "newer": len(frame)}
    newer = int((pd.to_datetime(frame[spec.label_date]).dt.date > seen).sum())
    if retrain_reason and newer == 0:
        raise DataFailure(
            f"retraining of '{spec.name}' (launched by the failed check {retrain_reason}) refused: no labels newer "
            f"than the champion's (version {champion.version}, last label day {seen}); next labels due on "
            f"{seen + timedelta(days=1)}. The newest label in {spec.training_mart} is from {last_label}: retrain "
            "once later labels are ingested.",
            metadata={
                "champion_version": champion.version,
                "champion_label_last_day": seen.isoformat(),
                "label_last_day": last_label.isoformat(),
            },
        )
    used = f"{newer} of {len(frame)} rows labeled after champion version {champion.version}'s last label day {seen}"
    return {"used": used, "newer": newer}
