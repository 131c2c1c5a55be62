"""Transform layer: the dbt models, one daily partition (or a whole backfill window) per run."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, Config, Failure
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    dbt_assets,
)
from pydantic import Field

from assets.ingestion import daily_partitions
from assets.step_resources import k8s_step
from resources.dbt import SandsDbtCliResource, dbt_project, ensure_manifest
from resources.storage import LakeResource
from resources.warehouse import WarehouseResource
from sands.features.dbt_vars import build_window_env
from sands.ingest.bronze import missing_reference_feeds
from sands.settings import environment

GROUP = "transform"
# One writer at a time on the DuckDB warehouse file, across runs.
WAREHOUSE_POOL = "warehouse"


class SandsDbtTranslator(DagsterDbtTranslator):
    """dbt models keep their names as asset keys; sources map onto the ingestion assets."""

    def get_group_name(self, dbt_resource_props: dict[str, Any]) -> str | None:
        return GROUP if dbt_resource_props["resource_type"] == "model" else None


class TransformConfig(Config):
    """How a long partition window is split into dbt calls within the one run."""

    max_days_per_dbt_call: int = Field(
        default=15,
        ge=1,
        description="Longer windows run as consecutive `dbt build`s, oldest first, so DuckDB's "
        "working set (and its spill to disk) stays bounded on a months-long backfill.",
    )


def day_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive inclusive windows of at most `days` days, oldest first."""
    windows = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=days - 1), end)
        windows.append((first, last))
        first = last + timedelta(days=1)
    return windows


def window_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """First and last landing day (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


@dbt_assets(
    op_tags=k8s_step("heavy"),
    manifest=ensure_manifest(dbt_project),
    project=dbt_project,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    dagster_dbt_translator=SandsDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def transform_models(
    context: AssetExecutionContext,
    config: TransformConfig,
    dbt: SandsDbtCliResource,
    warehouse: WarehouseResource,
    lake: LakeResource,
) -> Iterator[object]:
    """`dbt build` for the partition window: models, then their tests as asset checks.

    Earlier slices of a long window must succeed (a failing test raises and blocks); the last
    slice's events are reported, covering every model of the window.
    """
    if missing := missing_reference_feeds(lake.root, lake.storage_options):
        raise Failure(
            f"no {' or '.join(missing)} have been ingested: land the reference feeds "
            "(landing/users/, landing/artworks/; docs/data-contract.md) before interactions can "
            "become features"
        )
    start, end = window_dates(context)
    slices = day_windows(start, end, config.max_days_per_dbt_call)
    dbt_env = warehouse.dbt_environment(lake.root, lake.storage_options)
    # Per SANDS_HOME and stable, so dbt can reuse its partial parse between runs.
    target = warehouse.dbt_target_path()
    for index, (first, last) in enumerate(slices):
        last_slice = index == len(slices) - 1
        with environment(dbt_env | build_window_env(first, last)):
            if not last_slice:
                context.log.info(f"dbt build {first}..{last} (slice {index + 1}/{len(slices)})")
            yield from dbt.build(context, target, stream=last_slice)
