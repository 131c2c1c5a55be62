"""The Shifting Sands code location: every asset, check, job and sensor, assembled in one place."""

from __future__ import annotations

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from assets import ingestion
from dagster_project.jobs import daily_ingestion_job, reference_ingestion_job
from dagster_project.sensors import landing_zone_sensor
from resources import build_resources


def build_defs(env: dict[str, str] | None = None) -> Definitions:
    """The code location with resources resolved from `env` (default: the process environment)."""
    return Definitions(
        assets=load_assets_from_modules([ingestion]),
        asset_checks=load_asset_checks_from_modules([ingestion]),
        jobs=[daily_ingestion_job, reference_ingestion_job],
        sensors=[landing_zone_sensor],
        resources=build_resources(env),
    )


defs = build_defs()
