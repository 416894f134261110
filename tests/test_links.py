"""Links recorded in Dagster and MLflow open their page on whatever host and port the UIs answer: the MLflow UI's
address is the setting (NIGHTJAR_MLFLOW_UI_URL, or the tracking server itself), the Dagster UI's too
(NIGHTJAR_DAGSTER_URL), and every MLflow page opens on the model-training view (``workflowType=machine_learning``,
which the MLflow 3 UI reads; without it a fresh browser lands on the GenAI view)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from resources.registry import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, ModelRegistry, as_link
from tests.ml_lab import MODEL, MODEL_STEP, Lab
from tests.scoring_lab import DAY, score_day, write_scoring_day
from tests.stores import point_stores_at

MLFLOW_UI = "http://mlflow.example:5123"  # not `make mlflow-ui`'s default
DAGSTER_UI = "http://dagster.example:3123"  # not `make dev`'s default
ML_VIEW = "?workflowType=machine_learning"


def test_mlflow_pages_are_under_the_configured_ui_on_the_model_training_view():
    local = ModelRegistry(tracking_uri="sqlite:///m.db", ui_url=f"{MLFLOW_UI}/")
    assert local.ui_link("abc", "3") == f"{MLFLOW_UI}/#/experiments/3/runs/abc{ML_VIEW}"
    assert (
        local.version_page("loan default/risk", 2) == f"{MLFLOW_UI}/#/models/loan%20default%2Frisk/versions/2{ML_VIEW}"
    )
    # A tracking server is its own UI.
    server = ModelRegistry(tracking_uri="https://mlflow.internal/prefix", ui_url=MLFLOW_UI)
    assert server.version_page("m", 1) == f"https://mlflow.internal/prefix/#/models/m/versions/1{ML_VIEW}"
    # No UI known: words, shown as text, never a dead link.
    bare = ModelRegistry(tracking_uri="sqlite:///m.db")
    assert bare.version_page("m", 1) == "models:/m/1"
    assert isinstance(as_link(bare.ui_link("abc", "3")), dg.TextMetadataValue)


def test_the_installed_mlflow_ui_has_the_pages_the_view_and_the_experiment_kind_nightjar_uses():
    """What the links and the experiment kind rely on (ARCHITECTURE register: MLflow has no public helper for UI
    addresses nor a Python API for an experiment's kind): the UI shipped with the installed MLflow is a hash router
    with a run's and a registered version's page at the routes ModelRegistry.ui_page builds, reads the view from
    ``workflowType`` (``machine_learning``), and reads the experiment kind tag with nightjar's value. An MLflow
    upgrade that changes any of them fails here."""
    import mlflow

    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    ui = "".join(path.read_text(errors="replace") for path in sorted(bundle.glob("*.js")))
    assert ui, f"no MLflow UI scripts under {bundle}"
    for needed in (
        "createHashRouter",  # addresses are /#/<route>
        '"/experiments/:experimentId/runs/:runUuid"',
        '"/models/:modelName/versions/:version"',
        '"workflowType"',
        '"machine_learning"',
        f'"{EXPERIMENT_KIND_TAG}"',
        f'"{EXPERIMENT_KIND}"',
    ):
        assert needed in ui, f"the MLflow {mlflow.__version__} UI under {bundle} no longer has {needed}"


@pytest.fixture
def linked_lab(tmp_path, monkeypatch, empty_mlflow_db) -> Lab:
    """The lab with both UIs on addresses of their own."""
    lab = Lab(tmp_path, monkeypatch, empty_mlflow_db)
    lab.settings = point_stores_at(
        tmp_path,
        monkeypatch,
        NIGHTJAR_MODEL_SPECS_DIR=str(lab.specs),
        NIGHTJAR_MLFLOW_UI_URL=MLFLOW_UI,
        NIGHTJAR_DAGSTER_URL=DAGSTER_UI,
    )
    return lab


def _links(metadata: dict[str, dg.MetadataValue]) -> dict[str, str]:
    """The entries the Dagster UI shows as links."""
    return {k: v.value for k, v in metadata.items() if isinstance(v, dg.UrlMetadataValue)}


def test_model_champion_and_predictions_link_their_version_in_the_configured_uis(linked_lab):
    lab = linked_lab
    trained = lab.run_training()
    assert trained.success
    version = lab.registry.version(MODEL, 1)
    run = lab.registry.client().get_run(version.run_id)
    run_page = f"{MLFLOW_UI}/#/experiments/{run.info.experiment_id}/runs/{version.run_id}{ML_VIEW}"
    version_page = f"{MLFLOW_UI}/#/models/{MODEL}/versions/1{ML_VIEW}"

    # The model asset: the version's MLflow run and its registry page, as links to the configured UI.
    [model] = trained.asset_materializations_for_node(MODEL_STEP)
    assert _links(model.metadata) == {"mlflow_run": run_page, "mlflow_model_version": version_page}

    # MLflow links back: the run's description to the Dagster run at NIGHTJAR_DAGSTER_URL, and to the version's page.
    description = run.data.tags["mlflow.note.content"]
    assert f"[{trained.run_id}]({DAGSTER_UI}/runs/{trained.run_id})" in description
    assert f"[`models:/{MODEL}/1`]({version_page})" in description
    assert f"({DAGSTER_UI}/runs/{trained.run_id})" in lab.registry.client().get_model_version(MODEL, "1").description

    # The predictions of a day link the champion version that scored them.
    mart = lab.write_mart(2)
    write_scoring_day(lab, DAY, mart[mart["application_date"] == pd.Timestamp(mart["application_date"].max())])
    [scored] = score_day(lab, DAY).asset_materializations_for_node(f"{MODEL}__predictions")
    assert scored.metadata["model_version"].value == 1
    assert _links(scored.metadata) == {"mlflow_run": run_page, "mlflow_model_version": version_page}

    # The champion asset links the version that serves.
    [champion] = trained.asset_materializations_for_node(f"{MODEL}__champion")
    assert champion.metadata["champion_version"].value == 1
    assert _links(champion.metadata) == {"mlflow_run": run_page, "mlflow_model_version": version_page}

    # A retraining on the same data registers nothing, and still links the version it found.
    [unchanged] = lab.run_training().asset_materializations_for_node(MODEL_STEP)
    assert unchanged.metadata["new_version"].value is False
    assert _links(unchanged.metadata) == {"mlflow_run": run_page, "mlflow_model_version": version_page}
