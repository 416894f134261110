"""A served model is the one registered: the hash of its files is recorded with the version, and a version whose
stored files changed since is refused before MLflow reads them, with a named error, nothing scored, and an alert.

Real MLflow (SQLite store, files under the test's artifact root), real scikit-learn, the real training and nightly
jobs of the lab (tests/ml_lab.py); the artifact is changed on disk as someone with access to the store would."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg
import numpy as np

from assets.ml.evaluation import score
from assets.ml.spec import load_spec
from jobs.run_failure_sensor import build_run_failure_sensor
from resources.model_integrity import ARTIFACT_SHA256_TAG, ModelIntegrityError, folder_sha256
from resources.registry import CHAMPION
from tests.ml_lab import MODEL
from tests.scoring_lab import DAY, PREDICTIONS_KEY, predictions, score_day, write_scoring_day

SCORING_STEP = f"{MODEL}__predictions"


def stored_files(lab, version: int) -> Path:
    """The folder of the store where the registry says the version's files are (a local file store)."""
    uri = lab.registry.client().get_model_version_download_uri(MODEL, str(version))
    assert uri.startswith("file:"), uri
    return Path(url2pathname(urlsplit(uri).path))


def tamper(folder: Path, name: str = "model.skops") -> None:
    """Flip one byte in the middle of ``name`` under ``folder``."""
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_version_records_the_hash_of_its_files_and_the_stored_files_match_it(lab):
    version = lab.train()
    info = lab.registry.version(MODEL, version)
    recorded = info.tags[ARTIFACT_SHA256_TAG]
    assert recorded == folder_sha256(stored_files(lab, version))
    logged = lab.registry.client().get_logged_model(
        lab.registry.client().get_model_version(MODEL, str(version)).source.removeprefix("models:/")
    )
    assert logged.tags[ARTIFACT_SHA256_TAG] == recorded  # on the logged model's page too


def test_the_digest_changes_with_a_byte_a_name_or_a_file(tmp_path):
    (tmp_path / "a").write_bytes(b"model")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("x")
    first = folder_sha256(tmp_path)
    assert folder_sha256(tmp_path) == first
    (tmp_path / "a").write_bytes(b"mode1")
    assert folder_sha256(tmp_path) != first
    (tmp_path / "a").write_bytes(b"model")
    (tmp_path / "sub" / "b.txt").rename(tmp_path / "sub" / "c.txt")
    assert folder_sha256(tmp_path) != first
    (tmp_path / "sub" / "c.txt").rename(tmp_path / "sub" / "b.txt")
    assert folder_sha256(tmp_path) == first
    (tmp_path / "extra").write_text("")
    assert folder_sha256(tmp_path) != first


def test_mlflows_own_bookkeeping_file_does_not_count_as_a_change(tmp_path):
    """MLflow writes registered_model_meta into a version's stored folder when anyone loads it by a models:/ URI
    from a local store (a peer script, a notebook): that is not tampering."""
    (tmp_path / "model.skops").write_bytes(b"model")
    first = folder_sha256(tmp_path)
    (tmp_path / "registered_model_meta").write_text("model_name: loan_default_risk\nmodel_version: '1'\n")
    assert folder_sha256(tmp_path) == first
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "registered_model_meta").write_text("x")  # only MLflow's own file, where MLflow puts it
    assert folder_sha256(tmp_path) != first


def test_scoring_refuses_a_tampered_champion_alerts_and_writes_nothing_for_the_day(lab, webhook):
    changed = lab.train()
    trusted = lab.train(retrain=True)  # the same model again: the challenger, the champion stays
    assert (lab.champion(), lab.challenger()) == (changed, trusted)
    rows = lab.write_mart(3).head(40)
    before = DAY - timedelta(days=1)
    write_scoring_day(lab, before, rows)
    write_scoring_day(lab, DAY, rows)
    score_day(lab, before)
    scored_before = predictions(lab, before)
    folder = stored_files(lab, changed)
    tamper(folder)

    nightly = lab.defs().resolve_job_def("nightly")  # its predictions step for the day, as the schedule runs it
    the_day = {"partition_key": DAY.isoformat(), "asset_selection": [PREDICTIONS_KEY], "instance": lab.instance}
    result = nightly.execute_in_process(**the_day, raise_on_error=False)

    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in result.all_events], "a refusal is not retried"
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.event_specific_data.error
    raised = error.cause or error
    assert raised.cls_name == ModelIntegrityError.__name__
    message = raised.message
    assert f"version {changed} of '{MODEL}'" in message
    assert folder.as_posix() in message and "refusing to serve it" in message
    assert "do not match the hash recorded at registration" in message
    assert predictions(lab, DAY).empty  # not one row of the day
    assert predictions(lab, before).equals(scored_before)  # the day scored before is as it was

    # The run failed, so the run-failure sensor alerts, severity error, with the refusal.
    sensor = build_run_failure_sensor()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=lab.instance,
        dagster_run=result.dagster_run,
        resources={"alerts": webhook.alerts()},
    )
    sensor(context)
    [alert] = webhook.posts
    assert alert["severity"] == "error" and alert["title"] == "Run failed: nightly"
    assert f"version {changed} of '{MODEL}'" in alert["details"]["failed_steps"][SCORING_STEP]

    # An untampered version still serves: champion back on it, the day scores.
    lab.registry.client().set_registered_model_alias(MODEL, CHAMPION, str(trusted))
    score_day(lab, DAY)  # asserts the run succeeded
    written = predictions(lab, DAY)
    assert len(written) == len(rows) and set(written["model_version"]) == {trusted}


def test_a_version_registered_without_a_hash_loads_with_a_warning(lab, caplog):
    version = lab.train()
    client = lab.registry.client()
    source = client.get_model_version(MODEL, str(version))
    # As a version of an earlier release: the same files, no hash recorded.
    bare = int(client.create_model_version(MODEL, source.source, run_id=source.run_id).version)
    info = lab.registry.version(MODEL, bare)
    assert ARTIFACT_SHA256_TAG not in info.tags

    with caplog.at_level(logging.WARNING):
        model = lab.registry.load(info)

    spec = load_spec(lab.specs / "loan_default.yaml")
    rows = lab.write_mart(3).head(5)
    registered = lab.registry.load(lab.registry.version(MODEL, version))
    assert np.array_equal(score(model, rows, spec), score(registered, rows, spec))
    [warning] = [r.getMessage() for r in caplog.records if ARTIFACT_SHA256_TAG in r.getMessage()]
    assert f"version {bare} of '{MODEL}'" in warning and "cannot be verified" in warning


def test_a_version_someone_loaded_by_its_models_uri_still_serves(lab, monkeypatch):
    """A notebook or a script loading ``models:/<name>/<version>`` with MLflow's own API on the same local store
    makes MLflow write its bookkeeping into the stored folder: the version is still the one registered."""
    import mlflow.pyfunc

    version = lab.train()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab.registry.connect_uri)
    mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    info = lab.registry.version(MODEL, version)
    assert lab.registry.load(info) is not None
