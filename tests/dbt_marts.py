"""The loan example's labeled mart as dbt builds it, for tests that start from the marts (training, the model lab).

dbt owns the derived features (``int_applications_featurized``: loan-to-income, the annuity, installment-to-income)
and their null and zero-rate branches, tested by its ``unit_tests:``; a test never re-implements them. The mart is
built once per test process by the real ``ingest`` job (raw days, then ``dbt build`` over the window, in DuckDB) in a
temporary folder that is deleted at once, and every caller gets its own copy of the rows.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from tests.chain import run_days
from tests.stores import TEST_LABEL_DELAY_DAYS, TEST_ROWS_PER_DAY, point_stores_at

LABELED_MART = "marts.fct_labeled_applications"
FIRST_DAY = date(2024, 1, 1)  # far from today: the partitions of the build are its own
ROWS_PER_DAY = TEST_ROWS_PER_DAY
MART_DAYS = 40  # application days whose labels are all in the mart (the most any test asks for)


def labeled_applications(days: int = MART_DAYS) -> pd.DataFrame:
    """``fct_labeled_applications`` for the applications of the ``days`` days from FIRST_DAY, every one labeled
    (its outcome arrived TEST_LABEL_DELAY_DAYS later), in the column types the warehouse hands to training."""
    if not 1 <= days <= MART_DAYS:
        raise ValueError(f"the dbt-built mart holds {MART_DAYS} application days from {FIRST_DAY}; asked for {days}")
    mart = _built_labeled_applications()
    last = pd.Timestamp(FIRST_DAY + timedelta(days=days - 1))
    return mart[mart["application_date"] <= last].reset_index(drop=True)


@lru_cache(maxsize=1)
def _built_labeled_applications() -> pd.DataFrame:
    """Ingest FIRST_DAY .. the day the last application's outcome arrives, as one run of the ingest job; read the
    labeled mart. About 20 s, once per process."""
    from definitions import build_definitions
    from resources.build import open_warehouse

    last_day = FIRST_DAY + timedelta(days=MART_DAYS - 1 + TEST_LABEL_DELAY_DAYS)
    with tempfile.TemporaryDirectory(prefix="nightjar-dbt-mart-") as root, pytest.MonkeyPatch.context() as env:
        settings = point_stores_at(
            Path(root), env, NIGHTJAR_START_DATE=FIRST_DAY.isoformat(), NIGHTJAR_END_DATE=last_day.isoformat()
        )
        result = run_days(build_definitions(settings), "ingest", FIRST_DAY, last_day, raise_on_error=False)
        if not result.success:
            failures = [str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure]
            raise RuntimeError(f"building {LABELED_MART} with dbt failed:\n" + "\n".join(failures))
        mart = open_warehouse(settings).query(f"SELECT * FROM {LABELED_MART} ORDER BY application_id")
    expected = MART_DAYS * ROWS_PER_DAY
    if len(mart) != expected:
        raise RuntimeError(f"{LABELED_MART} holds {len(mart)} rows after the build, expected {expected}")
    return mart
