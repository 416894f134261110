"""Raw ingestion: one asset per raw table, filled from the configured data source one day at a time."""

from assets.raw.ingest import raw_applications, raw_outcomes

raw_assets = [raw_applications, raw_outcomes]
