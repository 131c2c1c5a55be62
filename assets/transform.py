"""Transform layer: the dbt models, one daily partition (or a whole backfill window) per run."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from assets.ingestion import daily_partitions
from resources.dbt import dbt_project, ensure_manifest
from resources.storage import LakeResource
from resources.warehouse import WarehouseResource

GROUP = "transform"
# One writer at a time on the DuckDB warehouse file, across runs.
WAREHOUSE_POOL = "warehouse"


class SandsDbtTranslator(DagsterDbtTranslator):
    """dbt models keep their names as asset keys; sources map onto the ingestion assets."""

    def get_group_name(self, dbt_resource_props: dict[str, Any]) -> str | None:
        return GROUP if dbt_resource_props["resource_type"] == "model" else None


def window_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """First and last landing day (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the dbt subprocess, restoring the previous ones after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dbt_assets(
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
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    lake: LakeResource,
) -> Iterator[object]:
    """`dbt build` for the partition window: models, then their tests as asset checks."""
    start, end = window_dates(context)
    variables = {"min_date": start.isoformat(), "max_date": end.isoformat()}
    with environment(warehouse.dbt_environment(lake.root, lake.storage_options)):
        yield from dbt.cli(
            ["build", "--vars", json.dumps(variables)],
            context=context,
            # Per SANDS_HOME and stable, so dbt can reuse its partial parse between runs.
            target_path=warehouse.dbt_target_path(),
        ).stream()
