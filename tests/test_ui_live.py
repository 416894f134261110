"""What a user sees in the running Dagster UI, asked through its GraphQL API as the UI asks it.

One `make run`-like bootstrap and one `dagster dev` for the module (tests/live_ui.py); each test reads one page's
worth: asset and check descriptions, dbt column types, the drift check's report link (fetched over HTTP from the
reports server `make dev` starts), the promote job's launchpad, and a promotion launched from the UI whose run
says who promoted which version. Run alone with `pytest -k ui_live`.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from tests.live_ui import LAST_DAY, MODEL, SCORED_DAYS, LiveStack, live_stack

pytestmark = pytest.mark.slow

DBT_GROUPS = ("staging", "intermediate", "marts")
NO_DESCRIPTION = "No description provided"  # what the UI shows for a check without one
# What the runs list shows of a promotion (README: "Serving"); literal, as a user reads and filters them.
REQUESTED_BY_TAG, VERSION_TAG, ACTION_TAG = "nightjar/requested_by", "nightjar/version", "nightjar/action"

ASSET_NODES = """
query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) {
  assetKey { path } groupName description
  metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type } } } }
  assetChecksOrError { __typename ... on AssetChecks { checks { name description } } }
} }
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with live_stack(tmp_path_factory.mktemp("ui_live")) as running:
        yield running


def _key(path: str) -> dict:
    return {"path": path.split("/")}


def _nodes(stack: LiveStack, *paths: str) -> dict[str, dict]:
    keys = [_key(p) for p in paths] or None
    nodes = stack.ui.query(ASSET_NODES, keys=keys)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def _metadata(entries: list[dict]) -> dict[str, dict]:
    return {e["label"]: e for e in entries}


def test_ui_live_asset_pages_describe_raw_dbt_and_model_assets(stack):
    paths = ("raw/applications", "staging/stg_applications", "marts/fct_labeled_applications", f"{MODEL}/model")
    nodes = _nodes(stack, *paths)
    assert set(nodes) == set(paths), f"the UI lacks assets: {set(paths) - set(nodes)}"
    # dagster-dbt appends the model's SQL under "#### Raw SQL": the prose before it is the dbt YAML description.
    prose = {p: (n["description"] or "").split("#### Raw SQL")[0].strip() for p, n in nodes.items()}
    assert [p for p, text in prose.items() if not text] == [], f"asset pages with no description: {prose}"
    assert prose["raw/applications"].startswith("One row per loan application")
    assert prose["staging/stg_applications"].startswith("Loan applications, one row per application")


def test_ui_live_every_check_has_a_description(stack):
    nodes = _nodes(stack)
    checks = {
        (path, check["name"]): (check["description"] or "").strip()
        for path, node in nodes.items()
        if node["assetChecksOrError"]["__typename"] == "AssetChecks"
        for check in node["assetChecksOrError"]["checks"]
    }
    dbt = [key for key in checks if nodes[key[0]]["groupName"] in DBT_GROUPS]
    assert len(dbt) >= 30, f"the UI shows {len(dbt)} dbt checks, expected the project's dbt tests (30+)"
    undescribed = sorted(key for key, text in checks.items() if not text or text == NO_DESCRIPTION)
    assert undescribed == [], f"checks the UI shows as '{NO_DESCRIPTION}': {undescribed}"


def test_ui_live_dbt_models_show_column_types(stack):
    nodes = {p: n for p, n in _nodes(stack).items() if n["groupName"] in DBT_GROUPS}
    assert len(nodes) >= 5, f"dbt assets in the UI: {sorted(nodes)}"
    columns = {}
    for path, node in nodes.items():
        schema = _metadata(node["metadataEntries"]).get("dagster/column_schema", {}).get("schema")
        columns[path] = {c["name"]: c["type"] for c in schema["columns"]} if schema else {}
    assert [p for p, cols in columns.items() if not cols] == [], "dbt assets whose Columns section is missing"
    untyped = {p: [c for c, t in cols.items() if not t or t == "?"] for p, cols in columns.items()}
    assert {p: cs for p, cs in untyped.items() if cs} == {}, "columns with an empty Type in the UI"
    labeled = columns["marts/fct_labeled_applications"]
    assert (labeled["application_date"], labeled["defaulted"]) == ("date", "integer")


def test_ui_live_drift_check_links_a_report_that_opens(stack):
    query = """
    query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
      assetMaterializations(limit: 1) { partition metadataEntries { label ... on UrlMetadataEntry { url } } }
      assetCheckOrError(checkName: "data_drift") { ... on AssetCheck { description
        executionForLatestMaterialization { evaluation { description
          metadataEntries { label ... on UrlMetadataEntry { url } ... on TextMetadataEntry { text } } } } } }
    } } }
    """
    node = stack.ui.query(query, key=_key(f"{MODEL}/drift"))["assetNodeOrError"]
    materialization = node["assetMaterializations"][0]
    day = materialization["partition"]
    evaluation = node["assetCheckOrError"]["executionForLatestMaterialization"]["evaluation"]
    metadata = _metadata(evaluation["metadataEntries"])
    assert metadata["day"]["text"] == day, "the drift check does not name the day it judged"
    assert "/#/experiments/" in metadata["mlflow_run"]["url"], "the drift check does not link the version's MLflow run"
    served = metadata.get("report", {}).get("url")
    assert served == f"{stack.reports_url}/{MODEL}/drift/{day}.html", f"report link of the check: {served}"
    assert served in evaluation["description"], "the check's description does not link the report"
    assert _metadata(materialization["metadataEntries"])["report"]["url"] == served
    with urllib.request.urlopen(served, timeout=60) as response:
        page = response.read().decode(errors="replace")
        assert response.status == 200 and response.headers.get_content_type() == "text/html"
    assert MODEL in page and day in page, "the report page does not say which model and day it covers"


def test_ui_live_a_failed_drift_check_shows_on_the_asset(stack):
    """The last day drifted (live_ui.stack_env): the catalog's check status, the check evaluated on the asset's
    latest materialization, is failed, at a severity, naming that day."""
    query = """
    query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
      assetMaterializations(limit: 1) { partition }
      assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status evaluation { severity description } } } } } } } }
    """
    node = stack.ui.query(query, key=_key(f"{MODEL}/drift"))["assetNodeOrError"]
    assert node["assetMaterializations"][0]["partition"] == LAST_DAY
    shown = {c["name"]: c["executionForLatestMaterialization"] for c in node["assetChecksOrError"]["checks"]}
    data_drift = shown["data_drift"]
    assert data_drift is not None, "the asset shows no result of data_drift for its latest materialization"
    assert data_drift["status"] == "FAILED", data_drift
    assert data_drift["evaluation"]["severity"] in ("WARN", "ERROR")
    assert data_drift["evaluation"]["description"].startswith(LAST_DAY)


def _config_fields(stack: LiveStack, job: str) -> dict[str, str | None]:
    query = """
    query($selector: PipelineSelector!) { runConfigSchemaOrError(selector: $selector) { __typename
      ... on RunConfigSchema { rootConfigType { ... on CompositeConfigType { fields { name description } } } } } }
    """
    schema = stack.ui.query(query, selector=stack.ui.job_selector(job))["runConfigSchemaOrError"]
    assert schema["__typename"] == "RunConfigSchema", schema
    return {f["name"]: f["description"] for f in schema["rootConfigType"]["fields"]}


def test_ui_live_promotion_launchpads_describe_their_fields(stack):
    promote, rollback = _config_fields(stack, f"promote_{MODEL}"), _config_fields(stack, f"rollback_{MODEL}")
    assert {"version", "requested_by", "reason", "force"} <= set(promote), promote
    assert {"requested_by", "reason"} <= set(rollback), rollback
    undescribed = [f"promote.{k}" for k, v in promote.items() if not v] + [
        f"rollback.{k}" for k, v in rollback.items() if not v
    ]
    assert undescribed == [], f"launchpad fields without a description: {undescribed}"


def test_ui_live_a_promotion_from_the_ui_says_who_promoted_what(stack):
    ui = stack.ui
    # What a user reads before promoting: the version the model asset last registered (the waiting challenger).
    query = """
    query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
      assetMaterializations(limit: 1) { metadataEntries { label ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text } } } } } }
    """
    latest = ui.query(query, key=_key(f"{MODEL}/model"))["assetNodeOrError"]["assetMaterializations"][0]
    version = _metadata(latest["metadataEntries"])["model_version"]["intValue"]
    assert version >= 2, "the bootstrap and the retraining should leave a challenger to promote"

    who = "ui-live-test@example.com"
    run_id = ui.launch(f"promote_{MODEL}", {"version": version, "requested_by": who, "reason": "live UI test"})
    run = ui.wait_for_run(run_id)
    assert run["status"] == "SUCCESS", f"the promotion run failed: {ui.failure_messages(run_id)}"
    tags = run["tags"]
    assert (tags.get(REQUESTED_BY_TAG), tags.get(VERSION_TAG), tags.get(ACTION_TAG)) == (who, str(version), "promote")

    # The runs list, filtered by the tag, answers "who promoted what".
    runs = ui.query(
        "query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId } } } }",
        tags=[{"key": REQUESTED_BY_TAG, "value": who}],
    )["runsOrError"]["results"]
    assert [r["runId"] for r in runs] == [run_id]

    champion = ui.query(query, key=_key(f"{MODEL}/champion"))["assetNodeOrError"]["assetMaterializations"][0]
    shown = _metadata(champion["metadataEntries"])
    assert shown["champion_version"]["intValue"] == version and shown["requested_by"]["text"] == who


MATERIALIZATIONS = """
query($key: AssetKeyInput!, $partitions: [String!]) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetMaterializations(partitions: $partitions) { partition runId metadataEntries { label
    ... on IntMetadataEntry { intValue } ... on UrlMetadataEntry { url } } } } } }
"""


def _warehouse_counts(stack: LiveStack, table: str, day_column: str) -> dict[str, int]:
    """Rows per day of a warehouse table, as a user counts them (DuckDB, read-only: no run writes now)."""
    import duckdb

    with duckdb.connect(stack.env["NIGHTJAR_WAREHOUSE_PATH"], read_only=True) as con:
        rows = con.execute(f"SELECT CAST({day_column} AS VARCHAR), count(*) FROM {table} GROUP BY 1").fetchall()
    return {day: n for day, n in rows}


def _latest_per_partition(stack: LiveStack, path: str) -> dict[str, dict]:
    """Each partition's latest materialization, as the asset's Partitions tab shows it."""
    events = stack.ui.query(MATERIALIZATIONS, key=_key(path))["assetNodeOrError"]["assetMaterializations"]
    latest: dict[str, dict] = {}
    for event in events:  # newest first
        latest.setdefault(event["partition"], _metadata(event["metadataEntries"]))
    return latest


@pytest.mark.parametrize(
    ("path", "table", "day_column"),
    [
        ("raw/applications", "raw.applications", "application_date"),  # the history: one ingest over a range
        (f"{MODEL}/predictions", f"predictions.{MODEL}", "application_date"),  # the scored days: one range run
    ],
)
def test_ui_live_every_partitions_row_count_is_that_days_own(stack, path, table, day_column):
    shown = {day: meta["dagster/row_count"]["intValue"] for day, meta in _latest_per_partition(stack, path).items()}
    counted = _warehouse_counts(stack, table, day_column)
    assert len(shown) >= SCORED_DAYS, f"{path}: partitions materialized {sorted(shown)}"
    assert shown == {day: counted.get(day, 0) for day in shown}, f"{path}: Row count per partition vs the table"


def _open(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status


def _mlflow_api(stack: LiveStack, route: str, **params) -> dict:
    import json
    from urllib.parse import urlencode

    with urllib.request.urlopen(f"{stack.mlflow_url}/api/2.0/mlflow/{route}?{urlencode(params)}", timeout=60) as r:
        return json.loads(r.read())


def test_ui_live_mlflow_links_open_their_run_and_version_on_the_ports_in_use(stack):
    """Model, champion and predictions link the MLflow run and registered version of the version they name; each
    link is under the MLflow UI actually serving (not port 5000), on its model-training view, and what it names
    exists there."""
    for path in (f"{MODEL}/model", f"{MODEL}/champion", f"{MODEL}/predictions"):
        events = stack.ui.query(MATERIALIZATIONS, key=_key(path))["assetNodeOrError"]["assetMaterializations"]
        links = {k: v["url"] for k, v in _metadata(events[0]["metadataEntries"]).items() if v.get("url")}
        run_link, version_link = links.get("mlflow_run"), links.get("mlflow_model_version")
        assert run_link and version_link, f"{path} does not link its MLflow run and version: {links}"
        for link in (run_link, version_link):
            assert link.startswith(f"{stack.mlflow_url}/#/"), f"{path}: {link} is not under {stack.mlflow_url}"
            assert link.endswith("?workflowType=machine_learning"), f"{path}: {link} opens MLflow's GenAI view"
            assert _open(link.split("#")[0]) == 200
        run_route = run_link.split("#/")[1].split("?")[0].split("/")  # experiments/<id>/runs/<run>
        run = _mlflow_api(stack, "runs/get", run_id=run_route[3])["run"]
        assert run["info"]["experiment_id"] == run_route[1], f"{path}: the run link names the wrong experiment"
        model, version = version_link.split("#/models/")[1].split("?")[0].split("/versions/")
        registered = _mlflow_api(stack, "model-versions/get", name=model, version=version)["model_version"]
        assert registered["run_id"] == run_route[3], f"{path}: the version link and the run link disagree"


def test_ui_live_an_mlflow_run_links_back_to_its_dagster_run(stack):
    """The served version's MLflow run names the Dagster run that trained it, by a link under the Dagster UI in use,
    and that run is there: a training run of the model. (The link, not the model's latest materialization: under
    `dg dev` the checks sensor may have retrained since, keeping the version.)"""
    import re

    events = stack.ui.query(MATERIALIZATIONS, key=_key(f"{MODEL}/model"))["assetNodeOrError"]["assetMaterializations"]
    run_link = _metadata(events[0]["metadataEntries"])["mlflow_run"]["url"]
    run_id = run_link.split("/runs/")[1].split("?")[0]
    note = {t["key"]: t["value"] for t in _mlflow_api(stack, "runs/get", run_id=run_id)["run"]["data"]["tags"]}
    description = note.get("mlflow.note.content", "")
    found = re.search(re.escape(stack.ui.url) + r"/runs/([0-9a-f-]{36})", description)
    assert found, f"the MLflow run's description links no run of the Dagster UI at {stack.ui.url}: {description}"
    assert _open(found.group(0)) == 200
    run = stack.ui.query(
        "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { jobName } } }", id=found.group(1)
    )["runOrError"]
    assert run == {"__typename": "Run", "jobName": f"train_{MODEL}"}


PARTITION_STATS = """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions numFailed } } } }
"""


def test_ui_live_the_ml_assets_empty_days_fill_with_the_command_the_run_printed(stack):
    """After the bootstrap, the ML assets' days before the scored ones are empty; the bootstrap names the one
    command that fills them, and after it every day of predictions and drift is materialized, and quality every day
    whose labels have arrived. (Last in the module: it adds runs the other tests do not expect.)"""
    import re
    import subprocess
    import sys

    from resources.settings import PROJECT_ROOT

    printed = (stack.root / "logs" / "bootstrap.log").read_text()
    command = re.search(r'make run ARGS="(--score-from \S+ --score-to \S+)"', printed)
    assert command, f"the bootstrap does not say how to fill the empty days:\n{printed[-2000:]}"
    done = subprocess.run(
        [sys.executable, "-m", "jobs.bootstrap", *command.group(1).split()],
        cwd=PROJECT_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stats = {
        name: stack.ui.query(PARTITION_STATS, key=_key(f"{MODEL}/{name}"))["assetNodeOrError"]["partitionStats"]
        for name in ("predictions", "drift", "quality")
    }
    for name in ("predictions", "drift"):
        assert stats[name]["numMaterialized"] == stats[name]["numPartitions"], f"{name}: {stats[name]}"
    label_delay = int(stack.env["NIGHTJAR_LABEL_DELAY_DAYS"])
    assert stats["quality"]["numMaterialized"] >= stats["quality"]["numPartitions"] - label_delay - 1, stats
