"""What a scored day's drift is compared with, as the spec's ``monitoring.reference`` says, and when a day's labels
are due.

``training`` is the serving version's reference sample, logged with it at training (see
``assets.ml.run_artifacts.reference_sample``); its sensitive features, which that sample leaves out, are read from
the training mart's rows of the version's holdout window (:func:`holdout_rows`). ``trailing_days`` and ``same_weekday`` are served days: the scoring
mart's rows of days that have predictions, with the score they got. They are read here, in one query, sampled in
the warehouse (a fixed hash of the entity id, the same share of every day) so the cost stays flat whatever the
number of days.

The SQL is plain enough for both warehouses (DuckDB and Postgres): ``md5``, ``row_number()``, ``CAST(... AS DATE)``
and ``DATE 'yyyy-mm-dd'`` literals. Column and table names come from a validated spec (plain identifiers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from assets.ml.inference import predictions_table
from resources.warehouse.sql import date_literal

if TYPE_CHECKING:
    import pandas as pd

    from assets.ml.spec import ModelSpec
    from resources.warehouse import Warehouse

SCORE_COLUMN = "score"  # as in the training reference and the predictions table


@dataclass(frozen=True)
class ServedReference:
    """Rows of served days: the checked features and the prediction columns (``score``, and ``predicted_class`` for
    multiclass); they are missing on rows another version than ``version`` scored, so that a promotion does not read
    as score drift."""

    frame: pd.DataFrame
    days: list[date]
    version: int
    versions: list[int]  # versions that scored the reference days
    scored_by_version: int  # rows with a score of ``version``

    def describe(self, spec: ModelSpec) -> str:
        shown = ", ".join(d.isoformat() for d in self.days[:3]) + (" ..." if len(self.days) > 3 else "")
        return f"{spec.monitoring.reference.describe()}: {len(self.days)} days ({shown}), {len(self.frame)} rows"


def served_days(warehouse: Warehouse, spec: ModelSpec, day: date) -> list[date]:
    """The served days before ``day`` the spec's reference takes, newest first (fewer when fewer were served)."""
    import pandas as pd

    rule = spec.monitoring.reference
    ts = spec.timestamp
    if rule.kind == "trailing_days":
        sql = (
            f"SELECT DISTINCT CAST({ts} AS DATE) AS day FROM {predictions_table(spec)} "
            f"WHERE {ts} < {date_literal(day)} ORDER BY day DESC LIMIT {int(rule.days)}"
        )
    elif rule.kind == "same_weekday":
        weeks = ", ".join(date_literal(day - timedelta(weeks=k)) for k in range(1, int(rule.days) + 1))
        sql = (
            f"SELECT DISTINCT CAST({ts} AS DATE) AS day FROM {predictions_table(spec)} "
            f"WHERE CAST({ts} AS DATE) IN ({weeks}) ORDER BY day DESC"
        )
    else:
        raise ValueError(f"reference '{rule.kind}' is not read from served days")
    return [pd.Timestamp(d).date() for d in warehouse.query(sql)["day"]]


def served_reference(
    warehouse: Warehouse, spec: ModelSpec, days: list[date], version: int, columns: list[str]
) -> ServedReference:
    """Up to ``monitoring.reference_rows`` rows of ``days`` (the same number from each day), with ``columns`` of
    the scoring mart and the score from the predictions."""
    import numpy as np

    if not days:
        raise ValueError("a served-days reference needs at least one served day")
    from assets.monitoring.scored_day import predicted_columns

    per_day = math.ceil(spec.monitoring.reference_rows / len(days))
    entity, ts = spec.entity_id, spec.timestamp
    listed = ", ".join(date_literal(d) for d in days)
    features = ", ".join(f"m.{c} AS {c}" for c in columns)
    scored = predicted_columns(spec)
    sql = f"""
        SELECT {", ".join([*columns, *scored])}, model_version, reference_day FROM (
            SELECT {features}, {", ".join(f"p.{c} AS {c}" for c in scored)}, p.model_version AS model_version,
                   CAST(p.{ts} AS DATE) AS reference_day,
                   row_number() OVER (
                       PARTITION BY CAST(p.{ts} AS DATE) ORDER BY md5({warehouse.as_text(f"p.{entity}")})
                   ) AS reference_rank
            FROM marts.{spec.scoring_mart} m
            JOIN {predictions_table(spec)} p ON m.{entity} = p.{entity}
            WHERE CAST(p.{ts} AS DATE) IN ({listed}) AND CAST(m.{ts} AS DATE) IN ({listed})
        ) ranked
        WHERE reference_rank <= {per_day}
        ORDER BY reference_day, reference_rank
    """
    frame = warehouse.query(sql)
    versions = sorted(int(v) for v in frame["model_version"].dropna().unique())
    same = (frame["model_version"] == version).to_numpy()
    scores = frame[SCORE_COLUMN].to_numpy(dtype=float, na_value=np.nan)
    frame[SCORE_COLUMN] = np.where(same, scores, np.nan)
    for column in scored[1:]:  # the predicted class: None where another version predicted it
        frame[column] = frame[column].astype(object).where(same, None)
    return ServedReference(
        frame=frame.drop(columns=["model_version", "reference_day"]).reset_index(drop=True),
        days=sorted(days, reverse=True),
        version=version,
        versions=versions,
        scored_by_version=int(np.isfinite(frame[SCORE_COLUMN].to_numpy(dtype=float)).sum()),
    )


def holdout_rows(
    warehouse: Warehouse, spec: ModelSpec, tags: dict[str, str], columns: list[str]
) -> pd.DataFrame | None:
    """Up to ``monitoring.reference_rows`` rows of ``columns`` of the training mart in a version's holdout window
    (its tags ``holdout_first_day`` / ``holdout_last_day``), sampled by a fixed hash of the entity id: the
    population its reference sample was drawn from, for the sensitive features that sample leaves out
    (``assets.ml.run_artifacts.reference_sample``). None when the version does not record its holdout window."""
    first, last = tags.get("holdout_first_day"), tags.get("holdout_last_day")
    if not first or not last:
        return None
    entity, ts = spec.entity_id, spec.timestamp
    listed = ", ".join(columns)
    return warehouse.query(
        f"""
        SELECT {listed} FROM (
            SELECT {listed}, row_number() OVER (ORDER BY md5({warehouse.as_text(entity)})) AS reference_rank
            FROM marts.{spec.training_mart}
            WHERE CAST({ts} AS DATE) BETWEEN {date_literal(date.fromisoformat(first))} AND {date_literal(date.fromisoformat(last))}
        ) ranked
        WHERE reference_rank <= {int(spec.monitoring.reference_rows)}
        """
    )


@dataclass(frozen=True)
class LabelsDue:
    """When a day's labels are expected: the day plus the label lag of the newest labels in the labeled mart."""

    due: date | None  # None: the labeled mart has no labels to infer the lag from
    lag_days: int | None
    newest_label_day: date | None

    @property
    def overdue(self) -> bool:
        """Labels of later days than the due date are in, but not this day's."""
        return self.due is not None and self.newest_label_day is not None and self.due <= self.newest_label_day

    def status(self) -> str:
        if self.due is None:
            return "labels not in yet (no labels in the labeled mart to infer when they arrive)"
        text = f"labels due on {self.due.isoformat()}"
        if self.overdue:
            text += f" (overdue: the labeled mart has labels up to {self.newest_label_day.isoformat()})"
        return text


def labels_due(warehouse: Warehouse, spec: ModelSpec, day: date) -> LabelsDue:
    """The label lag of the newest labels: their label day (``label_date``) minus the newest application day
    (``timestamp``) among them, the shortest lag labels arrive with lately."""
    import pandas as pd

    table = f"marts.{spec.training_mart}"
    label_day, ts = f"CAST({spec.label_date} AS DATE)", f"CAST({spec.timestamp} AS DATE)"
    frame = warehouse.query(
        f"SELECT {label_day} AS label_day, max({ts}) AS applied FROM {table} "
        f"WHERE {label_day} = (SELECT max({label_day}) FROM {table}) GROUP BY 1"
    )
    if frame.empty or pd.isna(frame["label_day"].iloc[0]) or pd.isna(frame["applied"].iloc[0]):
        return LabelsDue(due=None, lag_days=None, newest_label_day=None)
    newest = pd.Timestamp(frame["label_day"].iloc[0]).date()
    lag = (newest - pd.Timestamp(frame["applied"].iloc[0]).date()).days
    return LabelsDue(due=day + timedelta(days=lag), lag_days=lag, newest_label_day=newest)
