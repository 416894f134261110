"""What a person types into promote_<model> and rollback_<model>, on a real MLflow store (SQLite under tmp_path)
and a real warehouse: an unknown version, an empty requested_by, a forced promotion without a reason are refused
with a message that says why (and are not retried); an accepted one materializes <model>/champion and leaves an
audit row naming its actor; a step retried after a server error completes its move instead of making it twice. MLflow
shows the present in a fixed set of registered-model tags (who serves, since when, by whom, why); the history is the
warehouse's audit table.

Each test builds its own state (tests/ml_lab.py): the labeled mart is written straight into the warehouse (the
train job needs no more: training set -> model -> gate -> champion), and versions are trained and registered by
the real ``train_<model>`` job, as in test_model_lifecycle.py. Training twice on the same data registers nothing
(no churn): the tests that need several versions ask for them with ``retrain=True``.
"""

from __future__ import annotations

import re
import shutil

import pytest

from assets.ml.alias_audit import alias_moves
from assets.ml.champion_assets import REQUESTED_BY_TAG, VERSION_TAG
from assets.ml.promotion import (
    AUDIT_TABLE,
    CHAMPION_BY_TAG,
    CHAMPION_SINCE_TAG,
    CHAMPION_UNTIL_TAG,
    CHAMPION_VERSION_TAG,
    CHAMPION_WHY_TAG,
    HISTORY_TAG,
)
from resources.registry import CHALLENGER, CHAMPION, ModelRegistry, ModelVersionNotFound, RegistryError
from tests.ml_lab import MODEL, champion_metadata, refusal

# --- refusals ------------------------------------------------------------------------------------------------------


def test_an_unknown_version_is_refused_naming_the_model_and_the_versions_that_exist(lab):
    first = lab.train()
    second = lab.train({"policy": "manual"}, retrain=True)  # passes the gate, waits for a person as challenger
    assert (first, second, lab.champion()) == (1, 2, 1)

    message = refusal(lab.promote(version=7, requested_by="ana", reason="typo"))
    assert f"model '{MODEL}' has no version 7" in message
    assert f"versions that exist: 1 ({CHAMPION}), 2 ({CHALLENGER})" in message
    assert lab.champion() == 1 and lab.audit("promote").empty


def test_an_empty_requested_by_is_refused_for_promotion_and_rollback(lab):
    lab.train({"policy": "manual"})  # version 1, champion: the first version to clear the floor
    for nobody in ("", "   "):
        # Who asks is checked first: the refusal is about requested_by, not about version 1 being champion already.
        message = refusal(lab.promote(version=1, requested_by=nobody))
        assert "refused: requested_by is empty" in message and "audit" in message
        message = refusal(lab.rollback(requested_by=nobody, reason="bad release"))
        assert "rollback" in message and "requested_by is empty" in message
    message = refusal(lab.rollback(requested_by="bo", reason="  "))
    assert "a rollback needs a written reason" in message
    assert lab.champion() == 1 and lab.audit("promote", "rollback").empty


def test_a_forced_promotion_without_a_reason_is_refused_and_so_is_one_past_a_failed_gate(lab):
    lab.train()
    refused_by_gate = lab.train({"min_primary": 0.99}, retrain=True)  # no model clears this floor
    assert lab.champion() == 1

    message = refusal(lab.promote(version=refused_by_gate, requested_by="ana"))
    assert f"version {refused_by_gate} of '{MODEL}' cannot be promoted" in message
    assert "does not clear the floor 0.99" in message and "force: true" in message
    for blank in ("", "  "):
        message = refusal(lab.promote(version=refused_by_gate, requested_by="ana", force=True, reason=blank))
        assert "force: true needs a written reason" in message

    message = refusal(lab.promote(version=1, requested_by="ana"))
    assert "already the champion" in message
    assert lab.champion() == 1 and lab.audit("promote").empty


# --- what an accepted change records --------------------------------------------------------------------------------


def test_promote_and_rollback_materialize_the_champion_and_the_audit_names_the_actor(lab):
    lab.train()
    refused_by_gate = lab.train({"min_primary": 0.99}, retrain=True)

    forced = lab.promote(
        version=refused_by_gate, requested_by="  ana@example.com ", force=True, reason="incident drill"
    )
    assert forced.success and lab.champion() == refused_by_gate
    back = lab.rollback(requested_by="bo", reason="drill over")
    assert back.success and lab.champion() == 1

    # Each job materialized <model>/champion (and nothing else); its metadata says which version serves and why.
    for result in (forced, back):
        materialized = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
        assert materialized == [f"{MODEL}/champion"]
    assert {
        k: v
        for k, v in champion_metadata(forced).items()
        if k in ("champion_version", "previous_version", "decision", "action", "requested_by", "forced", "reason")
    } == {
        "champion_version": refused_by_gate,
        "previous_version": 1,
        "decision": "promoted",
        "action": "promote",
        "requested_by": "ana@example.com",
        "forced": True,
        "reason": "incident drill",
    }
    rolled = champion_metadata(back)
    assert (rolled["champion_version"], rolled["decision"], rolled["reason"]) == (
        1,
        "rolled back",
        "rollback: drill over",
    )
    # The runs list answers who made which version champion.
    assert {k: forced.dagster_run.tags.get(k) for k in (REQUESTED_BY_TAG, VERSION_TAG)} == {
        REQUESTED_BY_TAG: "ana@example.com",
        VERSION_TAG: str(refused_by_gate),
    }
    run = lab.instance.get_run_by_id(back.run_id)
    assert (run.tags[REQUESTED_BY_TAG], run.tags[VERSION_TAG]) == ("bo", "1")

    audit = lab.audit("promote", "rollback")
    assert audit[["action", "from_version", "to_version", "actor", "forced"]].values.tolist() == [
        ["promote", 1, refused_by_gate, "ana@example.com", True],
        ["rollback", refused_by_gate, 1, "bo", False],
    ]
    assert audit["reason"].tolist() == ["incident drill", "rollback: drill over"]
    assert audit["dagster_run_id"].tolist() == [forced.run_id, back.run_id]
    # MLflow shows the present in plain words: the registered model's tags say who put version 1 back, and why.
    state = lab.registry.client().get_registered_model(MODEL).tags
    assert (state[CHAMPION_VERSION_TAG], state[CHAMPION_BY_TAG]) == ("1", "bo")
    assert state[CHAMPION_WHY_TAG] == f"rolled back from version {refused_by_gate}: drill over"


# --- retries --------------------------------------------------------------------------------------------------------


def test_a_step_retried_after_a_warehouse_error_moves_the_alias_once(lab, monkeypatch):
    """Champions 1 -> 2 -> 3; the warehouse fails once on each audit row, after the registry moved the alias. The
    retried rollback must land on 2 (not decide again and go back to 1), and every move is recorded once."""
    from resources.warehouse import DuckDBWarehouse

    assert lab.train() == 1
    for version in (2, 3):
        # The same data and model: a tie, which keeps the champion; a person makes it champion.
        assert lab.train(retrain=True) == version and lab.champion() == version - 1
        assert lab.promote(version=version, requested_by="cy").success
    assert lab.champion() == 3

    original = DuckDBWarehouse.append
    audit_appends: list[str] = []

    def append_failing_every_other_audit_row(self, table, frame):
        if table == AUDIT_TABLE:
            audit_appends.append(table)
            if len(audit_appends) % 2 == 1:  # the first attempt of each step fails, its retry goes through
                raise ConnectionResetError("warehouse connection reset (test)")
        return original(self, table, frame)

    monkeypatch.setattr(DuckDBWarehouse, "append", append_failing_every_other_audit_row)

    back = lab.rollback(requested_by="ana", reason="bad release")
    assert back.success and lab.champion() == 2
    promoted = lab.promote(version=3, requested_by="bo", reason="fixed")
    assert promoted.success and lab.champion() == 3
    assert len(audit_appends) == 4
    for result in (back, promoted):
        assert [e.event_type_value for e in result.all_events].count("STEP_UP_FOR_RETRY") == 1

    audit = lab.audit("rollback", "promote")
    assert audit[["action", "from_version", "to_version", "actor"]].values.tolist() == [
        ["promote", 1, 2, "cy"],
        ["promote", 2, 3, "cy"],
        ["rollback", 3, 2, "ana"],
        ["promote", 2, 3, "bo"],
    ]
    assert alias_moves(lab.warehouse, MODEL, CHAMPION) == [
        ("gate", 1),
        ("promote", 2),
        ("promote", 3),
        ("rollback", 2),
        ("promote", 3),
    ]
    state = lab.registry.client().get_registered_model(MODEL).tags
    assert (state[CHAMPION_VERSION_TAG], state[CHAMPION_BY_TAG]) == ("3", "bo")


# --- what MLflow shows ----------------------------------------------------------------------------------------------


def test_the_registered_model_keeps_a_fixed_set_of_tags_and_each_version_its_own_facts(lab):
    """Two promotions and a rollback: the registered model's tags say who serves now, since when, by whom and why,
    in the same few keys as after the first move (no pile of records); the history is the warehouse's."""
    assert lab.train() == 1  # the gate makes it champion
    client = lab.registry.client()
    first_keys = set(client.get_registered_model(MODEL).tags)
    assert first_keys == {
        CHAMPION_VERSION_TAG,
        CHAMPION_SINCE_TAG,
        CHAMPION_BY_TAG,
        CHAMPION_WHY_TAG,
        HISTORY_TAG,
    }
    # A store written by an earlier release: one JSON record per move on the registered model, cleared on the next.
    client.set_registered_model_tag(MODEL, "audit.champion.20260101T000000123456Z", '{"action": "gate"}')
    for version, person in ((2, "ana"), (3, "bo")):
        assert lab.train(retrain=True) == version  # a tie: waits as challenger
        assert lab.promote(version=version, requested_by=person, reason=f"release {version}").success
    assert lab.rollback(requested_by="cy", reason="bad release").success
    assert lab.champion() == 2

    state = client.get_registered_model(MODEL).tags
    assert set(state) == first_keys, "the registered model's tags must not grow with every move"
    assert all(len(value) < 200 and not value.startswith("{") for value in state.values()), state  # words, not JSON
    assert state[CHAMPION_VERSION_TAG] == "2" and state[CHAMPION_BY_TAG] == "cy"
    assert state[CHAMPION_WHY_TAG] == "rolled back from version 3: bad release"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", state[CHAMPION_SINCE_TAG])
    assert AUDIT_TABLE in state[HISTORY_TAG]

    # Per-version facts live on the versions: when each became champion, by whom and why, and when it stopped.
    tags = {v: lab.registry.version(MODEL, v).tags for v in (1, 2, 3)}
    assert (tags[2][CHAMPION_BY_TAG], tags[2][CHAMPION_WHY_TAG]) == ("cy", state[CHAMPION_WHY_TAG])
    assert tags[2][CHAMPION_SINCE_TAG] == state[CHAMPION_SINCE_TAG] and CHAMPION_UNTIL_TAG not in tags[2]
    assert tags[3][CHAMPION_BY_TAG] == "bo" and tags[3][CHAMPION_UNTIL_TAG] == state[CHAMPION_SINCE_TAG]
    assert tags[3][CHAMPION_WHY_TAG] == "promoted (was version 2): release 3"
    assert tags[1][CHAMPION_BY_TAG] == "gate" and CHAMPION_UNTIL_TAG in tags[1]
    # The whole history, in the warehouse.
    assert alias_moves(lab.warehouse, MODEL, CHAMPION) == [("gate", 1), ("promote", 2), ("promote", 3), ("rollback", 2)]


# --- the registry's errors ------------------------------------------------------------------------------------------


def test_registry_errors_name_model_and_version_and_retry_only_when_the_server_may_answer(
    tmp_path, monkeypatch, empty_mlflow_db
):
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    registry = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ModelVersionNotFound) as missing:
        registry.version(MODEL, 3)
    assert f"model '{MODEL}' has no version 3" in str(missing.value) and "no versions of" in str(missing.value)
    assert missing.value.allow_retries is False
    assert registry.by_alias(MODEL, CHAMPION) is None

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take a minute here
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = ModelRegistry(tracking_uri="http://someone:secret@127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(RegistryError) as unreachable:
        down.version(MODEL, 3)
    message = str(unreachable.value)
    assert f"could not read version 3 of model '{MODEL}'" in message and "http://127.0.0.1:9" in message
    assert "secret" not in message and unreachable.value.__cause__ is None
    assert unreachable.value.allow_retries is True
