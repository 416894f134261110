"""A model version's files, checked before they serve: the content hash recorded at registration must match.

The hash (:func:`folder_sha256`) is a manifest digest of the model folder: SHA-256 over each file's relative path
and the SHA-256 of its bytes, in path order, so a changed byte, a renamed, added or removed file all change it. It
is computed from the local files before they are uploaded (:func:`assets.ml.mlflow_model.log_model`, as a tag of
the logged model) and copied onto the version at registration (:meth:`resources.registry.ModelRegistry.register`,
tag :data:`ARTIFACT_SHA256_TAG`). Every load of a version (scoring, the gate) recomputes it over the downloaded copy
before MLflow reads a byte of it (:func:`check_folder`): unpickling a changed file is itself the danger, so the check
comes first, and a changed artifact is refused with :class:`ModelIntegrityError`, never retried.

A version registered before the hash was recorded has no tag: it loads with a warning that it cannot be verified,
so stores made by earlier releases keep serving.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from resources.failures import DataFailure

ARTIFACT_SHA256_TAG = "nightjar.artifact_sha256"
# Written by MLflow itself into a version's stored folder whenever anyone loads it by a `models:/` URI from a local
# store (the model's name and version, as YAML; no loader reads it): not part of what was registered, so not hashed.
MLFLOW_BOOKKEEPING = frozenset({"registered_model_meta"})
_CHUNK_BYTES = 1 << 20
_SHOWN_HEX = 12  # enough of a digest to tell two apart in a message; the metadata holds both in full


class ModelIntegrityError(DataFailure):
    """A version's files are not the files registered: the model is refused, and the step is not retried (the
    files will not change back by asking again). The run fails, so ``alert_on_run_failure`` alerts (severity
    error) with this message."""


def folder_sha256(folder: str | Path) -> str:
    """The manifest digest of every file under ``folder``: SHA-256 over ``<relative posix path>\\0<sha256 of its
    bytes>\\n`` per file, in sorted path order (hex)."""
    root = Path(folder)
    files = sorted(
        (relative, p)
        for p in root.rglob("*")
        if p.is_file() and (relative := p.relative_to(root).as_posix()) not in MLFLOW_BOOKKEEPING
    )
    manifest = hashlib.sha256()
    for relative, path in files:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                digest.update(chunk)
        manifest.update(f"{relative}\0{digest.hexdigest()}\n".encode())
    return manifest.hexdigest()


def check_folder(folder: str | Path, recorded: str | None, *, model: str, version: int, where: str) -> None:
    """Refuse the files of version ``version`` of ``model`` (downloaded from ``where`` into ``folder``) unless
    their digest is ``recorded``, the one registered; with nothing recorded, log that they cannot be verified."""
    if recorded is None:
        dg.get_dagster_logger("nightjar.registry").warning(
            f"version {version} of '{model}' has no '{ARTIFACT_SHA256_TAG}' tag (registered before nightjar "
            f"recorded artifact hashes): its files at {where} cannot be verified and are loaded as found"
        )
        return
    found = folder_sha256(folder)
    if found != recorded:
        raise ModelIntegrityError(
            f"version {version} of '{model}': the files at {where} do not match the hash recorded at registration "
            f"(sha256 {found[:_SHOWN_HEX]}... found vs {recorded[:_SHOWN_HEX]}... recorded in tag "
            f"'{ARTIFACT_SHA256_TAG}'); refusing to serve it. Find out what changed them, then restore the files or "
            f"train and promote a new version.",
            metadata={"model": model, "version": version, "files": where, "found": found, "recorded": recorded},
        )
