"""The Definitions as a run worker loads them, and module-level job functions that ``dagster.reconstructable`` can
hand to the multiprocess executor's step processes (they import this module and call the function again)."""

from __future__ import annotations

import os
from functools import lru_cache

MODEL_ENV = "NIGHTJAR_BENCH_MODEL"  # the model whose monitor job the chain runs


@lru_cache(maxsize=1)
def definitions():
    """``definitions.defs`` when the module builds them on import (as `dagster dev` and run workers load them), so
    they are not built twice; otherwise ``build_definitions(Settings.from_env())``."""
    import definitions as module
    from resources.settings import Settings

    defs = getattr(module, "defs", None)
    return defs if defs is not None else module.build_definitions(Settings.from_env())


def nightly_job():
    return definitions().resolve_job_def("nightly")


def monitor_job():
    return definitions().resolve_job_def(f"monitor_{os.environ[MODEL_ENV]}")
