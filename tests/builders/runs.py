"""What the Dagster instance under a test home says about who materialized what."""

from dagster import AssetKey

from dagster_project.runner import instance_for


def assert_made_by_automation(paths, *assets: str) -> None:
    """Each asset's latest materialization came from an automation run, not a named job."""
    instance = instance_for(paths)
    for asset in assets:
        event = instance.get_latest_materialization_event(AssetKey(asset))
        assert event is not None, asset
        run = instance.get_run_by_id(event.run_id)
        assert run.job_name == "__ASSET_JOB", f"{asset} was materialized by automation"
