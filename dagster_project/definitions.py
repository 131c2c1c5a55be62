"""The Shifting Sands code location: every asset, check, job and sensor, assembled in one place."""

from __future__ import annotations

import warnings
from functools import partial

from dagster import (
    AssetSpec,
    DailyPartitionsDefinition,
    Definitions,
    PreviewWarning,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from assets import (
    deployment,
    evaluation,
    features,
    ingestion,
    models,
    monitoring,
    training,
    transform,
)
from assets.ingestion import daily_partitions_for
from dagster_project.backtest_report import backtest_report
from dagster_project.execution import executor_from_env
from dagster_project.freshness import POLICIES, with_freshness
from dagster_project.jobs import (
    champion_monitoring_job,
    daily_ingestion_job,
    daily_pipeline_job,
    feature_build_job,
    model_training_job,
    online_quality_job,
    reference_ingestion_job,
    training_data_job,
)
from dagster_project.sensors import automation_sensor, landing_zone_sensor
from resources import build_resources
from sands.ingest.partitions import PartitionRange, home_partition_range

ASSET_MODULES = [
    ingestion,
    transform,
    features,
    training,
    monitoring,
    models,
    evaluation,
    deployment,
]


def _daily(spec: AssetSpec, partitions: DailyPartitionsDefinition) -> AssetSpec:
    if isinstance(spec.partitions_def, DailyPartitionsDefinition):
        return spec.replace_attributes(partitions_def=partitions)
    return spec


def build_defs(
    env: dict[str, str] | None = None, partitions: PartitionRange | None = None
) -> Definitions:
    """The code location with resources resolved from `env` (default: the process environment).

    The daily partitions cover `partitions`, by default the range `sands.ingest.partitions` derives
    from the home's landing zone (`SANDS_PARTITIONS_START`, else its first day)."""
    covered = partitions or home_partition_range(env=env)
    defs = Definitions(
        # Specs (assets written outside Dagster) are not picked up from modules.
        assets=[
            *load_assets_from_modules(ASSET_MODULES),
            deployment.served_impressions,
            backtest_report,
        ],
        asset_checks=load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[
            daily_ingestion_job,
            reference_ingestion_job,
            daily_pipeline_job,
            feature_build_job,
            training_data_job,
            model_training_job,
            online_quality_job,
            champion_monitoring_job,
        ],
        sensors=[landing_zone_sensor, automation_sensor],
        resources=build_resources(env),
        executor=executor_from_env(env),
    )
    # Preview API, chosen knowingly: it is how freshness policies attach to dbt-built specs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        defs = defs.map_asset_specs(func=partial(_daily, partitions=daily_partitions_for(covered)))
        return defs.map_resolved_asset_specs(func=with_freshness, selection=list(POLICIES))


defs = build_defs()
