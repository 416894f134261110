"""The prepared dbt manifest (``dbt parse`` at setup), read once per process and file version: the raw table
declarations and the marts' documented columns both come from it, so definitions never parse dbt."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def load_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"dbt manifest {path} is missing: run `make setup` (or `dbt parse` in {path.parent.parent})"
        )
    return _read(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read(path: str, _mtime_ns: int) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def model_columns(manifest: dict[str, Any], model: str) -> set[str] | None:
    """The columns a dbt model documents in its YAML, or None if it documents none (then nothing is known)."""
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "model" and node.get("name") == model:
            return set(node.get("columns") or {}) or None
    return None
