"""The loop runs itself: files land, the sensor and automation do the rest, day after day."""

from datetime import date

from dagster import AssetKey

from dagster_project.runner import instance_for
from dagster_project.scenario import play
from sands.simulator import SimulationConfig


def test_days_flow_from_landing_files_to_gated_models_with_no_manual_step(paths):
    config = SimulationConfig(
        seed=3,
        start=date(2026, 9, 1),
        days=4,
        events_per_day=2_000,
        initial_users=300,
        initial_artworks=120,
        new_users_per_day=5,
        new_artworks_per_day=2,
    )
    records = play(paths, config)
    assert [r.day for r in records] == ["2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"]
    # Every day: the sensor's ingestion runs and the automation runs that follow.
    assert all(r.runs >= 2 for r in records), records
    # No champion yet is itself a trigger; the ranker was retrained and gated by automation.
    assert any("champion below objective or stale" in r.triggers for r in records)
    assert any(r.gate is not None for r in records)
    # Steady data: nothing retrained because of drift.
    assert not any("drift detected" in r.triggers for r in records)
    instance = instance_for(paths)
    for asset in (
        "training_examples",
        "feature_drift",
        "champion_performance",
        "ranker",
        "evaluation_report",
    ):
        event = instance.get_latest_materialization_event(AssetKey(asset))
        assert event is not None, asset
        run = instance.get_run_by_id(event.run_id)
        assert run.job_name == "__ASSET_JOB", f"{asset} was materialized by automation"
