"""The training set of a model spec: the labeled window of its mart that a version learns from.

The newest ``evaluation.window_days`` days with labels (up to an ``as_of`` day, when given), written to the
warehouse table :func:`training_table` for the model asset and the gate to read. A retraining launched by the
monitoring sensor also needs labels the champion never saw: :func:`labels_against_champion` refuses it otherwise,
naming the champion's last label day and when the next labels are due.

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

if TYPE_CHECKING:
    import pandas as pd

MARTS_SCHEMA = "marts"
ALL_TIME = (date(1900, 1, 1), date(9999, 12, 31))


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
    )


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
        f"SELECT * FROM {mart} WHERE {spec.timestamp} >= DATE '{start.isoformat()}' "
        f"AND {spec.timestamp} < DATE '{end.isoformat()}' "
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
