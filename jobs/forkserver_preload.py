"""What the prod path's step processes find ready (``NIGHTJAR_EXECUTOR=multiprocess``).

The multiprocess executor's forkserver (``definitions.FORKSERVER_EXECUTOR``) imports this module after
``definitions``, and every step process is forked from it. Importing ``definitions`` builds the Definitions; each
step process then still resolved them into a repository and its jobs, and opened the Dagster instance, whose
storage imports SQLAlchemy and Alembic: about 0.5 s of the 0.65 s every step paid before it started
(``python -m bench.chain``, "step process start-up"). Done once here, each step inherits the result.

Nothing here may stop the server: the forkserver skips a module that raises ImportError but dies on any other
error, so every failure is swallowed (each step process then does the same work itself, and reports what fails).
"""

from __future__ import annotations

import contextlib
import os


def _prepare() -> None:
    import dagster as dg

    import definitions

    definitions.defs.get_repository_def().get_all_jobs()
    if os.environ.get("DAGSTER_HOME"):
        # Opening the instance imports the storage its step processes open again (from the run's instance ref);
        # the context manager disposes it, so no connection or file handle is inherited by a fork.
        with dg.DagsterInstance.get():
            pass


with contextlib.suppress(Exception):  # see the module's docstring
    _prepare()
