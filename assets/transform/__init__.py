"""dbt transforms (staging, intermediate, marts) as Dagster assets, with dbt tests as asset checks."""

from assets.transform.dbt_assets import build_dbt_assets

__all__ = ["build_dbt_assets"]
