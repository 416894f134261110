"""Every dbt test over all history, as its own job on its own (weekly) schedule.

A partition run's dbt tests check only that run's window of each model (dbt_project/macros/test_window.sql), so
one bad stored day fails the build of that day and not of every later day. This job is the other half: one
``dbt test`` with no window vars, so every test reads every stored row (and rows whose date is null). It fails
with the failing tests named; tests of severity ``warn`` are reported but do not fail it. It writes nothing but
dbt's own artifacts, in a temporary folder.

Settings are injected by the caller (``definitions.py``): nothing here reads the environment.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from resources.dbt import NightjarDbtCli
from resources.warehouse import WAREHOUSE_POOL, Warehouse

DBT_FULL_TESTS_JOB_NAME = "dbt_full_tests"
DEFAULT_DBT_FULL_TESTS_CRON = "0 5 * * 0"  # Sundays 05:00, after the nightly run (02:30) and training (Mon 04:00)

# dbt's statuses for a test: "pass", "warn", "fail" (rows returned at severity error), "error" (the test itself
# could not run: SQL error, missing relation), "skipped" (an upstream failed in build; not in plain `dbt test`).
_FAILED = ("fail", "error")


@dataclass(frozen=True)
class DbtTestOutcome:
    name: str  # the test's name in dbt (e.g. unique_stg_applications_application_id)
    unique_id: str
    status: str
    failures: int | None  # rows the test returned
    message: str
    tested: str | None  # the model or source it tests, when dbt knows it

    def describe(self) -> str:
        on = f" on {self.tested}" if self.tested else ""
        if self.status == "error":
            return f"{self.name}{on}: could not run: {self.message}"
        rows = f"{self.failures} failing row(s)" if self.failures is not None else self.message
        return f"{self.name}{on}: {rows}"


def read_test_outcomes(run_results: dict[str, Any], manifest: dict[str, Any] | None) -> list[DbtTestOutcome]:
    """One outcome per data test and unit test in dbt's run_results.json (names and tested nodes from the manifest)."""
    nodes = (manifest or {}).get("nodes", {}) | (manifest or {}).get("unit_tests", {})
    outcomes = []
    for result in run_results.get("results", []):
        unique_id = result["unique_id"]
        if not unique_id.startswith(("test.", "unit_test.")):
            continue
        node = nodes.get(unique_id, {})
        # A generic test on a model names it (attached_node), a unit test its model; a singular test or a test on
        # a source: the nodes it reads.
        tested_ids = (
            [node["attached_node"]] if node.get("attached_node") else node.get("depends_on", {}).get("nodes", [])
        )
        tested = (
            node.get("model")
            if unique_id.startswith("unit_test.")
            else ", ".join(i.split(".", 2)[-1] for i in tested_ids)
        )
        outcomes.append(
            DbtTestOutcome(
                name=node.get("name") or unique_id.split(".")[2],
                unique_id=unique_id,
                status=result.get("status", "error"),
                failures=result.get("failures"),
                message=(result.get("message") or "").strip(),
                tested=tested or None,
            )
        )
    return outcomes


def failure_message(outcomes: list[DbtTestOutcome]) -> str:
    failed = [o for o in outcomes if o.status in _FAILED]
    lines = [f"{len(failed)} of {len(outcomes)} dbt tests failed over all history:"]
    lines += [f"- {o.describe()}" for o in failed]
    return "\n".join(lines)


@dg.op(
    name="dbt_test_all_history",
    pool=WAREHOUSE_POOL,  # load only: the writer lock keeps DuckDB's one writer (resources/warehouse/writer_lock.py)
    out=dg.Out(dg.Nothing),  # a verdict with metadata, no value to store
    description="`dbt test` over all history (no window vars); fails naming every failing test.",
)
def dbt_test_all_history(context: dg.OpExecutionContext, dbt: NightjarDbtCli, warehouse: Warehouse) -> None:
    # `warehouse` is not called: requiring it makes this op hold the warehouse's writer lock while dbt runs.
    with tempfile.TemporaryDirectory(prefix="nightjar-dbt-full-tests-") as target:
        # No window vars: min_date / max_date keep their all-history defaults (only the warehouse path is passed).
        invocation = dbt.cli_in_window(["test"], None, Path(target), raise_on_error=False).wait()
        dbt.save_parse_state(Path(target))
        succeeded = invocation.is_successful()
        run_results_path = Path(target) / "run_results.json"
        if not run_results_path.exists():
            # dbt stopped before running any test (a parse or connection error, a warehouse lock): say so.
            error = invocation.get_error()
            raise dg.Failure(
                description=f"dbt test did not run: {error.description if error else 'no run_results.json'}"
            )
        run_results = invocation.get_artifact("run_results.json")
        manifest = invocation.get_artifact("manifest.json") if (Path(target) / "manifest.json").exists() else None

    outcomes = read_test_outcomes(run_results, manifest)
    failed = [o for o in outcomes if o.status in _FAILED]
    warned = [o for o in outcomes if o.status == "warn"]
    for outcome in warned:
        context.log.warning(f"dbt test warned over all history: {outcome.describe()}")
    metadata = {
        "tests": len(outcomes),
        "passed": sum(o.status == "pass" for o in outcomes),
        "warned": len(warned),
        "failed": len(failed),
        "failing_tests": dg.MetadataValue.md("\n".join(f"- `{o.describe()}`" for o in failed) or "none"),
        "warning_tests": dg.MetadataValue.md("\n".join(f"- `{o.describe()}`" for o in warned) or "none"),
    }
    if failed:
        raise dg.Failure(description=failure_message(outcomes), metadata=metadata)
    if not succeeded:
        # Every test passed or warned, yet dbt exited non-zero (e.g. an error outside the tests).
        error = invocation.get_error()
        raise dg.Failure(
            description=f"dbt test failed: {error.description if error else 'non-zero exit'}", metadata=metadata
        )
    context.log.info(f"All {len(outcomes)} dbt tests passed over all history ({len(warned)} warned).")
    context.add_output_metadata(metadata)


def build_dbt_full_tests_job(cron: str, timezone: str) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The full-history dbt test job and its schedule (stopped until turned on), on ``cron`` in ``timezone``."""

    @dg.job(
        name=DBT_FULL_TESTS_JOB_NAME,
        description="Every dbt test over all stored history, not just one run's window: finds bad rows in days "
        "already stored. Fails naming the failing tests; writes nothing to the warehouse.",
    )
    def dbt_full_tests_job():
        dbt_test_all_history()

    schedule = dg.ScheduleDefinition(
        name=f"{DBT_FULL_TESTS_JOB_NAME}_schedule",
        description="Weekly: every dbt test over all stored history (not one run's window); fails naming the failing "
        "tests.",
        job=dbt_full_tests_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return dbt_full_tests_job, schedule
