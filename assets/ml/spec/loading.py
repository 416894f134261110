"""Reading model specs from YAML: every error names the spec file and the field that is wrong."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from assets.ml.spec.fields import SpecError
from assets.ml.spec.model_spec import ModelSpec


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"invalid model spec {path}:"]
    for err in error.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  field '{field}': {message}")
    return "\n".join(lines)


def load_spec(path: Path) -> ModelSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid model spec {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"invalid model spec {path}: expected a mapping of fields at the top level")
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe(exc, path)) from None


def load_specs(directory: Path) -> dict[str, ModelSpec]:
    """Every ``*.yaml`` spec in ``directory``, keyed by its file; model names must be unique."""
    specs: dict[str, ModelSpec] = {}
    owners: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = load_spec(path)
        if spec.name in owners:
            raise SpecError(f"{path}: field 'name': '{spec.name}' is already used by {owners[spec.name]}")
        owners[spec.name] = str(path)
        specs[str(path)] = spec
    return specs
