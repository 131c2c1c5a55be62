"""Jobs the sensor and the CLI launch: one per partitioning of the ingestion layer."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from assets.ingestion import artworks, raw_interactions, users

daily_ingestion_job = define_asset_job(
    "daily_ingestion",
    selection=AssetSelection.assets(raw_interactions),
    description="Validate and land one day of interactions in bronze.",
)
reference_ingestion_job = define_asset_job(
    "reference_ingestion",
    selection=AssetSelection.assets(users, artworks),
    description="MERGE the user and artwork drops into bronze.",
)
