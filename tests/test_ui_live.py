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

from tests.live_ui import MODEL, LiveStack, live_stack

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
