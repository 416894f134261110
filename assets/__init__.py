"""Software-defined assets: raw ingestion, dbt transforms, and (per model spec) training, inference, monitoring."""
