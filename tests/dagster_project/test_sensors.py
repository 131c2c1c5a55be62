from datetime import date, timedelta

from dagster import DagsterInstance, SensorResult, build_sensor_context

from dagster_project.sensors import landing_zone_sensor
from resources.storage import LandingZoneResource
from tests.conftest import DAY, drop, events_table, ts

ONE = [("e1", "u1", "a1", "view", ts(DAY, 9), None)]


def tick(paths, cursor: str | None, instance: DagsterInstance | None = None):
    with DagsterInstance.ephemeral() as ephemeral:
        context = build_sensor_context(
            instance=instance or ephemeral,
            cursor=cursor,
            resources={"landing": LandingZoneResource(root=paths.landing)},
        )
        result = landing_zone_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def requested(result) -> list[tuple[str, str | None]]:
    return [(r.job_name, r.partition_key) for r in result.run_requests or []]


def test_new_days_and_feeds_become_one_run_each_and_a_quiet_tick_requests_nothing(paths):
    drop(paths.landing, f"interactions/{DAY}/a.parquet", events_table(ONE))
    drop(paths.landing, f"interactions/{DAY + timedelta(days=1)}/a.parquet", events_table(ONE))
    drop(paths.landing, "users/u.jsonl", [{"user_id": "u1"}])
    drop(paths.landing, "artworks/a.jsonl", [{"artwork_id": "a1"}])
    first = tick(paths, None)
    assert requested(first) == [
        ("reference_ingestion", None),
        ("daily_pipeline", "2026-09-02"),
        ("daily_pipeline", "2026-09-03"),
    ]
    quiet = tick(paths, first.cursor)
    assert requested(quiet) == [] and quiet.skip_reason is not None


def test_a_reference_feed_that_lands_with_a_day_is_ingested_before_the_day(paths):
    # A day's file of new users sorts after its events ("users" > "interactions"), yet the
    # day's features need those users: the reference run comes first, even for one feed.
    first = tick(paths, None)
    drop(paths.landing, f"interactions/{DAY}/a.parquet", events_table(ONE))
    drop(paths.landing, f"users/users-{DAY}.jsonl", [{"user_id": "u1"}])
    assert requested(tick(paths, first.cursor)) == [
        ("reference_ingestion", None),
        ("daily_pipeline", str(DAY)),
    ]


def test_a_late_file_retriggers_only_its_day_with_a_new_run_key(paths):
    drop(paths.landing, f"interactions/{DAY}/a.parquet", events_table(ONE))
    drop(paths.landing, f"interactions/{DAY + timedelta(days=1)}/a.parquet", events_table(ONE))
    first = tick(paths, None)
    drop(paths.landing, f"interactions/{DAY}/late.csv", events_table(ONE))
    second = tick(paths, first.cursor)
    assert requested(second) == [("daily_pipeline", "2026-09-02")]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_days_outside_the_partitions_wait_instead_of_failing(paths):
    future = date.today() + timedelta(days=30)
    drop(paths.landing, f"interactions/{future}/a.parquet", events_table(ONE))
    result = tick(paths, None)
    assert requested(result) == []
    assert str(future) not in (result.cursor or "")


def test_days_ingested_by_another_path_are_not_requested_again(paths):
    # What `make demo` then `make ui` does: the CLI ingests, then the sensor's first tick runs.
    from dagster_project.runner import run_ingestion

    for day in (DAY, DAY + timedelta(days=1)):
        drop(paths.landing, f"interactions/{day}/a.parquet", events_table(ONE))
    drop(paths.landing, "users/u.jsonl", [{"user_id": "u1"}])
    drop(paths.landing, "artworks/a.jsonl", [{"artwork_id": "a1"}])
    with DagsterInstance.ephemeral() as instance:
        run_ingestion([str(DAY), str(DAY + timedelta(days=1))], instance)
        first = tick(paths, None, instance)
        assert requested(first) == []
        new_day = DAY + timedelta(days=2)
        drop(paths.landing, f"interactions/{new_day}/a.parquet", events_table(ONE))
        assert requested(tick(paths, first.cursor, instance)) == [("daily_pipeline", str(new_day))]
        drop(paths.landing, f"interactions/{DAY}/late.csv", events_table(ONE))
        late = tick(paths, None, instance)  # a changed day is new, cursor or not
        assert ("daily_pipeline", str(DAY)) in requested(late)
