"""Every asset records what its step cost (assets/step_cost.py) as numeric metadata Dagster plots over days."""

# No `from __future__ import annotations`: Dagster reads the asset functions' annotations as real types.
from datetime import date

import dagster as dg

from assets.step_cost import with_cost
from tests.chain import run_days

COST_KEYS = {"wall_seconds", "cpu_seconds", "peak_memory_mb"}


def _busy(seconds: float) -> int:
    import time

    end, n = time.process_time() + seconds, 0
    while time.process_time() < end:
        n += 1
    return n


@dg.asset
@with_cost
def returns_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    _busy(0.2)
    return dg.MaterializeResult(metadata={"dagster/row_count": 1000, "kept": "yes"})


@dg.asset
@with_cost
def yields_rows(context: dg.AssetExecutionContext):
    _busy(0.1)
    yield dg.MaterializeResult(metadata={"note": "no row count"})


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (event,) = result.asset_materializations_for_node(key)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_a_steps_cost_is_numeric_metadata_beside_its_own():
    result = dg.materialize([returns_rows, yields_rows])
    returned, yielded = _metadata(result, "returns_rows"), _metadata(result, "yields_rows")
    assert COST_KEYS | {"rows_per_second", "dagster/row_count", "kept"} <= set(returned)
    assert returned["cpu_seconds"] >= 0.2 and returned["wall_seconds"] >= returned["cpu_seconds"] * 0.5
    assert abs(returned["rows_per_second"] - 1000 / returned["wall_seconds"]) <= 0.01 * returned["rows_per_second"]
    assert returned["peak_memory_mb"] > 10
    assert COST_KEYS | {"note"} <= set(yielded) and "rows_per_second" not in yielded  # no row count: no rate


def test_raw_assets_record_their_cost_per_run(defs, nightjar_env):
    raw = [dg.AssetKey(["raw", "applications"]), dg.AssetKey(["raw", "outcomes"])]
    day = date(2026, 1, 1)
    result = run_days(defs, "ingest", day, day, asset_selection=raw)
    assert result.success
    metadata = _metadata(result, "raw__applications")
    assert COST_KEYS | {"rows_per_second"} <= set(metadata)
    assert metadata["rows_per_second"] > 0 and metadata["wall_seconds"] > 0
