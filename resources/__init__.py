"""Resources: configuration, warehouse, data source, dbt, model registry, alerts."""
