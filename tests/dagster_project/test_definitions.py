from dagster import AssetCheckKey, AssetKey, DefaultSensorStatus

from dagster_project.definitions import defs


def test_the_code_location_loads_with_the_ingestion_layer():
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {
        AssetKey("raw_interactions"),
        AssetKey("users"),
        AssetKey("artworks"),
    }
    assert graph.get(AssetKey("raw_interactions")).partitions_def is not None
    assert {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingestion"} == set(
        graph.get_all_asset_keys()
    )


def test_every_bronze_asset_carries_blocking_validation_checks():
    checks = defs.resolve_asset_graph().asset_check_keys
    for name in ("raw_interactions", "users", "artworks"):
        assert AssetCheckKey(AssetKey(name), "rows_accounted_for") in checks
        assert AssetCheckKey(AssetKey(name), "reject_rate_within_budget") in checks
    for name in ("users", "artworks"):
        assert AssetCheckKey(AssetKey(name), "stored_rows_match_contract") in checks


def test_the_landing_sensor_runs_by_default_and_targets_both_ingestion_jobs():
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert {job.name for job in sensor.jobs} == {"daily_ingestion", "reference_ingestion"}
    assert defs.resolve_job_def("daily_ingestion").partitions_def is not None
