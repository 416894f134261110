"""Cost and latency of serving (assets/ml/serving_cost.py): CPU per 1,000 predictions, its price against the spec's
budget (an alert when crossed), and the chain's end-to-end latency with its p50 / p95."""

from __future__ import annotations

from datetime import timedelta

from assets.ml.serving_cost import latency_percentiles, scoring_cost
from assets.ml.spec import Cost as CostSection
from assets.step_cost import Cost
from tests.ml_lab import Lab
from tests.scoring_lab import DAY, metadata, score_day, write_scoring_day


def _spec(lab: Lab, budget: float | None):
    from assets.ml.spec import load_spec

    spec = load_spec(next(lab.specs.glob("*.yaml")))
    return spec.model_copy(update={"cost": CostSection(budget_per_day=budget)})


def _values(metadata: dict) -> dict:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def test_a_days_price_is_checked_against_the_budget(lab):
    cost = Cost(wall_seconds=10.0, cpu_seconds=36.0, peak_memory_mb=500.0)  # 0.01 CPU-hour
    within, none = scoring_cost(cost, 4000, 10.0, _spec(lab, 0.2), days=1)  # 0.1 a day
    within = _values(within)
    assert none == "" and within["cost_per_day"] == 0.1 and within["over_budget"] is False
    assert within["cpu_seconds_per_1000_predictions"] == 9.0 and within["rows_per_second"] == 400.0
    over, message = scoring_cost(cost, 4000, 10.0, _spec(lab, 0.05), days=1)
    assert _values(over)["over_budget"] is True and "above the spec's budget_per_day 0.05" in message
    two_days, _ = scoring_cost(cost, 4000, 10.0, _spec(lab, 0.05), days=2)  # a 2-day run: the cost per day
    assert _values(two_days)["cost_per_day"] == 0.05 and _values(two_days)["over_budget"] is False
    unpriced, _ = scoring_cost(cost, 4000, None, _spec(lab, 0.05), days=1)
    assert "cost_per_day" not in unpriced and _values(unpriced)["budget"].startswith("not checked")


def test_scoring_over_budget_alerts_and_records_its_cost(lab, webhook, monkeypatch):
    monkeypatch.setenv("NIGHTJAR_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("NIGHTJAR_CPU_HOUR_PRICE", "1000000")  # any CPU second is over the budget below
    lab.settings = lab.settings.__class__.from_env()
    assert lab.train(cost={"budget_per_day": 0.01}) == 1
    mart = lab.write_mart(2)
    write_scoring_day(lab, DAY, mart[mart["application_date"] == mart["application_date"].max()])
    scored = metadata(score_day(lab, DAY))
    assert scored["cpu_seconds"] > 0 and scored["cpu_seconds_per_1000_predictions"] > 0
    assert scored["over_budget"] is True and scored["cost_per_day"] > 0.01
    assert scored["latency"].startswith("unknown")  # the lab writes its marts directly: no raw day was published
    (alert,) = [p for p in webhook.posts if "over budget" in p["title"]]
    assert "budget_per_day 0.01" in alert["text"]


def _loan_spec():
    from pathlib import Path

    from assets.ml.spec import load_spec

    return load_spec(Path(__file__).resolve().parents[1] / "model_specs" / "loan_default.yaml")


def test_latency_percentiles_read_the_last_30_days(tmp_path):
    import pandas as pd

    from assets.ml.serving_cost import latency_table
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    spec = _loan_spec()
    days = [DAY - timedelta(days=i) for i in range(40)]
    frame = pd.DataFrame(
        {"day": [pd.Timestamp(d) for d in days], "latency_seconds": [float(i) for i in range(40)]}
    )  # 0 s today, 1 s yesterday, ...; days 30-39 lie outside the window
    warehouse.replace_window(latency_table(spec), "day", days[-1], DAY + timedelta(days=1), [frame])
    got = {k: getattr(v, "value", v) for k, v in latency_percentiles(warehouse, spec, DAY).items()}
    assert got == {"latency_p50_seconds": 14.5, "latency_p95_seconds": 27.5, "latency_days": 30}  # 27.55, rounded
