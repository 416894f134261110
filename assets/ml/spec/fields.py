"""What every section of a model spec shares: strict models, plain identifiers, names, metrics, the error type."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Column and mart names are written into SQL: plain identifiers only.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# What a spec's model predicts (its ``task``): a 0/1 label by its probability, a number, or one of several classes.
TASKS = ("binary", "regression", "multiclass")
# The metrics a version of each task is measured by on its holdout, the spec's default list first to last.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "brier"),
    "regression": ("rmse", "mae", "r2", "median_abs_error", "abs_error_p90"),
    "multiclass": ("macro_f1", "weighted_f1", "accuracy", "log_loss"),
}
DEFAULT_PRIMARY = {"binary": "roc_auc", "regression": "rmse", "multiclass": "macro_f1"}
LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae", "median_abs_error", "abs_error_p90"}
METRICS = {metric for metrics in TASK_METRICS.values() for metric in metrics}


class SpecError(ValueError):
    """A model spec that cannot be used; the message names the file and the field."""


class StrictModel(BaseModel):
    """A spec section: an unknown key is an error (a typo must not be ignored), and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"'{value}' is not a plain column or model name (letters, digits, underscores)")
    return value


def snake_case_name(value: str) -> str:
    """``value`` if it is a lower_snake_case name starting with a letter (model and decision band names)."""
    if not NAME_PATTERN.match(value):
        raise ValueError(f"'{value}' must be lower_snake_case (letters, digits, underscores), starting with a letter")
    return value
