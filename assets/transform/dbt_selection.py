"""The default dbt selection (everything) read from the manifest while ``@dbt_assets`` is built, instead of by
dbt-core's selection engine (see :func:`manifest_select_all`)."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster_dbt import asset_utils


def _is_select_all(select: str, exclude: str, selector: str) -> bool:
    return select in ("", "fqn:*") and not exclude and not selector


@contextmanager
def manifest_select_all() -> Iterator[None]:
    """While building ``@dbt_assets``: the default selection (everything) is read from the manifest.

    Whenever dbt-core is installed, dagster-dbt evaluates every selection with dbt-core's selection engine, even
    select-everything, and importing that engine (``dbt.graph``, networkx) is about 0.3 s of every definitions load.
    For select-everything the answer is every node of the manifest: what dagster-dbt itself answers when dbt-core
    is not installed (dbt tests are nodes, so they still become checks; unit tests and sources never become
    assets). Any other selection goes to dbt-core as before. ``tests/test_dbt_selection.py`` checks that both give
    the same assets and checks; a dagster-dbt without ``asset_utils.select_unique_ids`` is left alone.
    """
    original = getattr(asset_utils, "select_unique_ids", None)
    if original is None:
        yield
        return

    def select_unique_ids(select, exclude, selector, project, manifest_json):
        if _is_select_all(select, exclude, selector):
            return set(manifest_json["nodes"])
        return original(select=select, exclude=exclude, selector=selector, project=project, manifest_json=manifest_json)

    asset_utils.select_unique_ids = select_unique_ids
    try:
        yield
    finally:
        asset_utils.select_unique_ids = original
