"""dbt transforms (staging, intermediate, marts) as Dagster assets, with dbt tests as asset checks."""

from assets.transform.dbt_models import nightjar_dbt_models

transform_assets = [nightjar_dbt_models]
