"""The prediction log (`served_impressions`) in the Dagster instance.

`sands serve` appends lists outside any Dagster run, so the asset's materializations are
reported without one, by whoever knows a serving period ended (the demo's served day, a play).
"""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue

from sands.serving.prediction_log import impressions_uri, log_summary
from sands.settings import SandsPaths

SERVED_IMPRESSIONS = AssetKey("served_impressions")


def report_served_impressions(instance: DagsterInstance, paths: SandsPaths) -> bool:
    """Record the log's current Delta version and size; False when nothing was served yet."""
    uri = impressions_uri(paths.lake)
    summary = log_summary(uri, paths.storage_options)
    if summary is None:
        return False
    days = f"{summary.first_day} to {summary.last_day}" if summary.first_day else "none"
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=SERVED_IMPRESSIONS,
            description=f"{summary.rows:,} served lists, {days}",
            metadata={
                "delta_version": MetadataValue.int(summary.version),
                "rows": MetadataValue.int(summary.rows),
                "served_days": MetadataValue.text(days),
                "uri": MetadataValue.path(uri),
            },
        )
    )
    return True
