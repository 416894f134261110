"""Scoring days on the lab (tests/ml_lab.py): a day of the scoring mart written straight into the warehouse, the real
predictions asset materialized for it as the nightly job does, and what it wrote."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from tests.ml_lab import MODEL, Lab

PREDICTIONS_KEY = dg.AssetKey([MODEL, "predictions"])
SCORING_MART = "marts.fct_application_features"
DAY = date(2026, 1, 5)  # a partition of the test deployment (conftest: NIGHTJAR_START_DATE 2026-01-01)


def write_scoring_day(lab: Lab, day: date, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (applications of the labeled mart) as the scoring mart's applications of ``day``."""
    frame = rows.assign(application_date=pd.Timestamp(day)).reset_index(drop=True)
    lab.warehouse.replace_window(SCORING_MART, "application_date", day, day + timedelta(days=1), [frame])
    return frame


def score_day(lab: Lab, day: date, *, rescore: bool = False) -> dg.ExecuteInProcessResult:
    """The real predictions asset for ``day``, as the nightly job materializes it."""
    config = {"ops": {f"{MODEL}__predictions": {"config": {"rescore": rescore}}}}
    result = (
        lab.defs()
        .resolve_job_def("nightly")
        .execute_in_process(
            partition_key=day.isoformat(),
            asset_selection=[PREDICTIONS_KEY],
            instance=lab.instance,
            run_config=config,
            raise_on_error=False,
        )
    )
    assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure]
    return result


def predictions(lab: Lab, day: date, table: str = f"predictions.{MODEL}") -> pd.DataFrame:
    return lab.warehouse.query(
        f"SELECT * FROM {table} WHERE application_date = DATE '{day.isoformat()}' ORDER BY application_id"
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialized] = result.asset_materializations_for_node(f"{MODEL}__predictions")
    return {k: v.value for k, v in materialized.metadata.items()}
