"""Raw ingestion: one daily-partitioned asset per raw table declared in the dbt sources (see raw_assets.py)."""

from assets.raw.raw_assets import CONTRACT_CHECK, build_raw_assets
from assets.raw.wap import REJECTED_FILES

__all__ = ["CONTRACT_CHECK", "REJECTED_FILES", "build_raw_assets"]
