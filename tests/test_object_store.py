"""The same pipeline against an S3-compatible server: landing zone and lake both in a bucket."""

import uuid
from datetime import date

import pytest
from dagster import DagsterInstance, build_sensor_context, materialize
from deltalake import DeltaTable

from assets.ingestion import artworks, raw_interactions, users
from dagster_project.definitions import build_defs
from dagster_project.runner import RANGE_END, RANGE_START
from dagster_project.sensors import landing_zone_sensor
from resources import build_resources
from sands.features.offline import USER_FEATURES
from sands.ingest.bronze import bronze_uri, quarantine_uri
from sands.ingest.contract import INTERACTIONS, USERS
from sands.settings import storage_options_from_env
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    prefix = f"s3://sands/{uuid.uuid4().hex[:8]}"
    env = {
        **s3_server,
        "SANDS_ENV": "production",
        "SANDS_HOME": str(tmp_path),
        "SANDS_LANDING_URI": f"{prefix}/landing",
        "SANDS_LAKE_URI": f"{prefix}/lake",
        # Ingestion never opens the online store or the registry; production only insists on
        # them being named.
        "SANDS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "SANDS_MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_simulated_drops_flow_from_an_s3_landing_zone_into_an_s3_lake(s3_env):
    options = storage_options_from_env(s3_env)
    config = SimulationConfig(
        days=2, events_per_day=2_000, initial_users=200, initial_artworks=100, bad_rows=0.01
    )
    drops = list(Marketplace(config).days())
    for day_drop in drops:
        write_drop(day_drop, s3_env["SANDS_LANDING_URI"], options)
    resources = build_resources()

    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"landing": resources["landing"]}
        )
        planned = landing_zone_sensor(context)
        assert [(r.job_name, r.partition_key) for r in planned.run_requests] == [
            ("reference_ingestion", None),
            ("daily_pipeline", "2026-09-01"),
            ("daily_pipeline", "2026-09-02"),
        ]
        assert materialize([users, artworks], resources=resources, instance=instance).success
        for day in ("2026-09-01", "2026-09-02"):
            result = materialize(
                [raw_interactions], partition_key=day, resources=resources, instance=instance
            )
            assert result.success
        # dbt reads the bronze Delta tables from S3; feature logs are written back to S3.
        features = (
            build_defs()
            .resolve_job_def("feature_build")
            .execute_in_process(
                instance=instance,
                tags={RANGE_START: "2026-09-01", RANGE_END: "2026-09-02"},
            )
        )
        assert features.success

    lake = s3_env["SANDS_LAKE_URI"]
    events = DeltaTable(bronze_uri(lake, INTERACTIONS), storage_options=options)
    expected = sum(d.counts["events"] for d in drops)
    assert events.to_pyarrow_table(columns=["event_id"]).num_rows == expected
    quarantined = DeltaTable(
        quarantine_uri(lake, INTERACTIONS), storage_options=options
    ).to_pyarrow_table()
    assert quarantined.num_rows == sum(d.counts["bad_events"] for d in drops)
    stored_users = DeltaTable(bronze_uri(lake, USERS), storage_options=options).to_pyarrow_table()
    assert stored_users.num_rows == config.initial_users + config.new_users_per_day
    user_features = DeltaTable(USER_FEATURES.uri(lake), storage_options=options).to_pyarrow_table()
    assert set(user_features.column("feature_date").to_pylist()) == {
        date(2026, 9, 1),
        date(2026, 9, 2),
    }


def test_production_mode_refuses_local_paths(monkeypatch):
    monkeypatch.setenv("SANDS_ENV", "production")
    monkeypatch.delenv("SANDS_LAKE_URI", raising=False)
    with pytest.raises(ValueError, match="SANDS_LAKE_URI"):
        build_resources()
