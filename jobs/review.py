"""``record_review``: one reviewer's decision on one case, recorded from the Dagster UI (Jobs > record_review >
Launchpad: the model, the case, who, the decision and why; the time is the run's).

It goes to the same store as the landed review files (``reviews.<model>``, source ``ui run <run id>``), checked the
same way: a case the model never scored or a decision it does not make fails the run naming the field, and nothing
is stored. A second review of a case that decides otherwise is stored as an amendment of the first (``amends``);
the latest counts. The final decisions of the case's scored day are rewritten at once, and recorded as a
materialization of that day of ``<model>/final_decisions`` with its override figures and check.
"""

# No `from __future__ import annotations` here: Dagster reads the op function's annotations (context, config,
# resources) as real types.
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from assets.ml.spec import ModelSpec
from assets.review.review_assets import refresh_final_decisions
from assets.review.store import UI_SOURCE, ReviewRefused, record_reviews
from resources.warehouse import WAREHOUSE_POOL, Warehouse

RECORD_REVIEW_JOB = "record_review"


class ReviewDecision(dg.Config):
    model: str = Field(description="The model whose decision is reviewed (its spec's name, e.g. loan_default_risk)")
    case_id: str = Field(description="The reviewed case: its id as in predictions.<model> (the spec's entity_id)")
    reviewer: str = Field(description="Who decides (a name or an id your team uses)")
    decision: str = Field(
        description="The decision: one the model makes other than its review band (loan example: approve, decline)"
    )
    reason: str = Field(description="Why, in a sentence: kept with the decision and shown in the final decisions")


def build_review_job(specs: list[ModelSpec]) -> dg.JobDefinition:
    by_name = {spec.name: spec for spec in specs}

    @dg.op(name="record_review_decision", pool=WAREHOUSE_POOL)
    def record_review_decision(
        context: dg.OpExecutionContext, config: ReviewDecision, warehouse: Warehouse
    ) -> dg.Output:
        import pandas as pd

        spec = by_name.get(config.model)
        if spec is None:
            raise ReviewRefused(
                description=f"record_review: field 'model' is {config.model!r}, not one of the models {sorted(by_name)}"
            )
        now = datetime.now(UTC).replace(tzinfo=None)
        review = pd.DataFrame(
            [
                {
                    spec.entity_id: config.case_id,
                    "model_name": spec.name,
                    "reviewer": config.reviewer,
                    "decision": config.decision,
                    "reason": config.reason,
                    "reviewed_at": pd.Timestamp(now),
                }
            ]
        )
        run = context.run.run_id
        with warehouse.session():
            recorded = record_reviews(
                warehouse, spec, review, source=f"{UI_SOURCE} run {run}", where=f"record_review run {run}"
            )
            refresh_final_decisions(context, warehouse, spec, recorded.scored_days)
        row = recorded.rows.iloc[0]
        amends = row["amends"]
        what = f"amends review {amends} (the latest counts)" if amends else f"review {int(row['sequence'])} of the case"
        context.log.info(
            f"{spec.name} {spec.entity_id}={config.case_id}: {config.decision} by {config.reviewer}, {what}"
        )
        return dg.Output(
            None,
            metadata={
                "review_id": str(row["review_id"]),
                "sequence": int(row["sequence"]),
                "amends": str(amends) if amends else "none",
                "scored_day": recorded.scored_days[0].isoformat(),
            },
        )

    @dg.job(
        name=RECORD_REVIEW_JOB,
        description="Record one reviewer's decision on one case (model, case, reviewer, decision, reason; the time is "
        "now) in reviews.<model>, then rewrite that case's final decision. An unknown case or a decision the model "
        "does not make fails and stores nothing; a later review that decides otherwise is an amendment.",
        tags={"nightjar/kind": "review"},
    )
    def record_review() -> None:
        record_review_decision()

    return record_review
