"""``make setup``: dbt's parse state ready for the first run (:meth:`resources.dbt.NightjarDbtCli.seed_parse_state`).

    python -m resources.dbt_parse_state

Parses the project once with the settings of this environment (``NIGHTJAR_*``: engine, warehouse, target), as its
runs will, unless a parse state is kept already. A project dbt cannot parse with them (a profile whose variables are
not set yet, say) is reported and skipped: the first run then parses for itself, and says what is wrong.
"""

from __future__ import annotations

import logging
import sys

LOG = logging.getLogger("nightjar.dbt")


def main() -> int:
    from dagster_dbt import DagsterDbtError

    from resources.dbt import dbt_resource
    from resources.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    try:
        parsed = dbt_resource(settings).seed_parse_state()
    except DagsterDbtError as error:
        LOG.warning(
            "dbt could not parse %s for the first run (it will parse then): %s", settings.dbt_project_dir, error
        )
        return 0
    LOG.info(
        "dbt parse state for the first run: %s (%s)",
        "parsed" if parsed else "already kept",
        settings.dbt_state_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
