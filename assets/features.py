"""Feature layer: dbt snapshots published to Delta time-travel tables and the online store."""

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.automation import after_upstream_updates
from assets.ingestion import daily_partitions
from assets.step_resources import k8s_step
from assets.transform import WAREHOUSE_POOL, window_dates
from resources.online import OnlineStoreResource
from resources.storage import LakeResource
from resources.warehouse import WarehouseResource
from sands.features.offline import (
    ARTWORK_FEATURES,
    FEATURE_TABLES,
    USER_FEATURES,
    FeatureTable,
    PublishOutcome,
    check_log,
    latest_snapshot,
    publish_snapshots,
)
from sands.features.online_store import OnlineStore

GROUP = "features"
PUBLISHED = "log_holds_snapshot"


def feature_data_version(outcome: PublishOutcome) -> DataVersion:
    """The Delta version and schema: unchanged snapshots keep the version, so nothing ripples."""
    return DataVersion(f"v{outcome.version}-{outcome.schema_hash}")


def publish_metadata(outcome: PublishOutcome, uri: str) -> dict[str, object]:
    """Materialization metadata for one publish."""
    dates = outcome.feature_dates
    return {
        "dagster/uri": MetadataValue.path(uri),
        "dagster/row_count": MetadataValue.int(outcome.snapshot_rows),
        "delta_version": MetadataValue.int(outcome.version),
        "schema_hash": MetadataValue.text(outcome.schema_hash),
        "rows_appended": MetadataValue.int(outcome.rows_appended),
        "rows_restated": MetadataValue.int(outcome.rows_restated),
        "feature_dates": MetadataValue.text(
            f"{dates[0]} .. {dates[-1]} ({len(dates)} days)" if dates else "none"
        ),
    }


def _feature_asset(table: FeatureTable) -> AssetsDefinition:
    @asset(
        name=table.name,
        deps=[AssetKey(table.model)],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        group_name=GROUP,
        kinds={"delta"},
        code_version="1",
        check_specs=[
            AssetCheckSpec(
                PUBLISHED,
                asset=table.name,
                blocking=True,
                description="Reading the log back gives every snapshot row with its values.",
            )
        ],
        description=f"Append-only Delta log of `{table.model}` rows with feature_ts and "
        "created_ts; read it as of any version or time with `sands.lake.timetravel`.",
    )
    def _publish(
        context: AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> MaterializeResult:
        start, end = window_dates(context)

        def snapshot() -> Iterator[pa.Table]:  # in parts: a window can outgrow memory
            return warehouse.model_parts(table.model, start, end)

        uri = table.uri(lake.root)
        outcome = publish_snapshots(
            uri, snapshot(), table.key, datetime.now(UTC), lake.storage_options
        )
        context.log.info(
            f"{table.name} {start}..{end}: {outcome.snapshot_rows:,} snapshot rows, "
            f"{outcome.rows_appended:,} appended -> Delta v{outcome.version}"
        )
        # Read again from the warehouse: dbt cannot rebuild it meanwhile (WAREHOUSE_POOL).
        readback = check_log(uri, snapshot(), table.key, lake.storage_options)
        return MaterializeResult(
            metadata=publish_metadata(outcome, uri),
            data_version=feature_data_version(outcome),
            check_results=[
                AssetCheckResult(
                    check_name=PUBLISHED,
                    passed=readback.unmatched == 0,
                    severity=AssetCheckSeverity.ERROR,
                    metadata={
                        "snapshot_rows": outcome.snapshot_rows,
                        "unmatched_rows": readback.unmatched,
                        # Entities a rebuild no longer produces keep their old rows in the log.
                        "dropped_entities": readback.dropped,
                    },
                )
            ],
        )

    return _publish


user_features = _feature_asset(USER_FEATURES)
artwork_features = _feature_asset(ARTWORK_FEATURES)


def lookup_latency_us(store: OnlineStore, entity: str, ids: list[str], samples: int = 500) -> float:
    """Median single-id lookup time in microseconds over random known ids."""
    if not ids:
        return 0.0
    rng = random.Random(0)
    timings = []
    for entity_id in rng.choices(ids, k=samples):
        start = time.perf_counter()
        store.get(entity, [entity_id])
        timings.append(time.perf_counter() - start)
    timings.sort()
    return timings[len(timings) // 2] * 1e6


@asset(
    op_tags=k8s_step("light"),
    deps=[user_features, artwork_features],
    group_name=GROUP,
    kinds={"sqlite", "redis"},
    automation_condition=after_upstream_updates(),
    description="The latest feature vector per user and artwork, for serving lookups by id.",
)
def online_features(
    context: AssetExecutionContext, lake: LakeResource, online: OnlineStoreResource
) -> MaterializeResult:
    store = online.open()
    metadata: dict[str, object] = {"backend": MetadataValue.text(online.backend)}
    try:
        for table in FEATURE_TABLES:
            rows, version = latest_snapshot(
                table.uri(lake.root), table.key, None, lake.storage_options
            )
            written = store.write(table.name, table.key, rows)
            ids = rows.column(table.key).to_pylist()
            metadata[f"{table.name}_rows"] = MetadataValue.int(written)
            metadata[f"{table.name}_delta_version"] = MetadataValue.int(version)
            metadata[f"{table.name}_lookup_p50_us"] = MetadataValue.float(
                round(lookup_latency_us(store, table.name, ids), 1)
            )
            context.log.info(f"{table.name}: {written:,} vectors from Delta v{version}")
    finally:
        store.close()
    return MaterializeResult(metadata=metadata)
