"""The append-only feature log: stamping, restatements, idempotent reruns, time travel, protocol."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from sands.features.offline import (
    LogCheck,
    check_log,
    first_date_to_read,
    latest_snapshot,
    latest_vectors,
    publish_snapshots,
    schema_hash,
    snapshot_dates,
)
from sands.lake.timetravel import read_as_of

RESTATED_AT = datetime(2026, 10, 1, 9, tzinfo=UTC)


def snapshot(day: int, values: dict[str, float]) -> pa.Table:
    """dbt-shaped snapshot rows: naive UTC feature_ts at midnight after the feature date."""
    users = sorted(values)
    return pa.table(
        {
            "user_id": users,
            "feature_date": pa.array([date(2026, 9, day)] * len(users), pa.date32()),
            "feature_ts": pa.array([datetime(2026, 9, day + 1)] * len(users), pa.timestamp("us")),
            "n_view_7d": pa.array([values[u] for u in users], pa.float64()),
        }
    )


@pytest.fixture
def uri(tmp_path) -> str:
    return str(tmp_path / "user_features")


def stored(uri: str) -> list[dict]:
    rows = (
        DeltaTable(uri)
        .to_pyarrow_table()
        .sort_by([("user_id", "ascending"), ("created_ts", "ascending")])
    )
    return rows.select(["user_id", "feature_date", "created_ts", "n_view_7d"]).to_pylist()


def test_first_publish_stamps_rows_with_their_as_of_time(uri):
    outcome = publish_snapshots(uri, snapshot(1, {"a": 1.0, "b": 2.0}), "user_id", RESTATED_AT)
    assert (outcome.snapshot_rows, outcome.rows_appended, outcome.rows_restated) == (2, 2, 0)
    as_of = datetime(2026, 9, 2, tzinfo=UTC)
    assert [r["created_ts"] for r in stored(uri)] == [as_of, as_of]
    assert DeltaTable(uri).metadata().partition_columns == ["feature_date"]


def test_rerunning_the_same_snapshot_commits_nothing(uri):
    first = publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    again = publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    assert again.version == first.version
    assert not again.committed
    assert len(stored(uri)) == 1


def test_a_window_published_in_parts_is_one_commit_of_what_the_whole_would_append(uri, tmp_path):
    publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    before = DeltaTable(uri).version()
    parts = [snapshot(1, {"a": 1.0}), snapshot(2, {"a": 2.0, "b": 3.0}), snapshot(3, {"a": 4.0})]

    outcome = publish_snapshots(uri, iter(parts), "user_id", RESTATED_AT)

    assert DeltaTable(uri).version() == before + 1
    assert (outcome.snapshot_rows, outcome.rows_appended, outcome.rows_restated) == (4, 3, 0)
    assert outcome.feature_dates == (date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3))
    whole = str(tmp_path / "whole")
    publish_snapshots(whole, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    publish_snapshots(whole, pa.concat_tables(parts), "user_id", RESTATED_AT)
    assert stored(uri) == stored(whole)
    assert check_log(uri, iter(parts), "user_id") == LogCheck(0, 0)
    assert check_log(uri, iter([parts[0], snapshot(2, {"a": 9.0})]), "user_id") == LogCheck(1, 1)


def test_a_part_that_cannot_be_read_commits_nothing(uri):
    publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    before = DeltaTable(uri).version()

    def parts():
        yield snapshot(2, {"a": 2.0})
        raise OSError("the warehouse went away")

    with pytest.raises(Exception, match="the warehouse went away"):
        publish_snapshots(uri, parts(), "user_id", RESTATED_AT)
    assert DeltaTable(uri).version() == before
    assert snapshot_dates(DeltaTable(uri)) == [date(2026, 9, 1)]
    with pytest.raises(ValueError, match="the snapshot has no parts"):
        publish_snapshots(uri, iter([]), "user_id", RESTATED_AT)
    assert DeltaTable(uri).version() == before


def test_a_changed_value_is_appended_as_a_restatement_and_the_original_kept(uri):
    publish_snapshots(uri, snapshot(1, {"a": 1.0, "b": 2.0}), "user_id", RESTATED_AT)
    outcome = publish_snapshots(uri, snapshot(1, {"a": 1.0, "b": 5.0}), "user_id", RESTATED_AT)
    assert (outcome.rows_appended, outcome.rows_restated) == (1, 1)
    rows = stored(uri)
    assert [(r["user_id"], r["n_view_7d"], r["created_ts"]) for r in rows] == [
        ("a", 1.0, datetime(2026, 9, 2, tzinfo=UTC)),
        ("b", 2.0, datetime(2026, 9, 2, tzinfo=UTC)),
        ("b", 5.0, RESTATED_AT),
    ]
    latest, version = latest_snapshot(uri, "user_id")
    assert latest.column("n_view_7d").to_pylist() == [1.0, 5.0]
    assert version == outcome.version


def test_latest_snapshot_reads_the_newest_day_and_can_go_back_a_version(uri):
    first = publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    publish_snapshots(uri, snapshot(2, {"a": 3.0}), "user_id", RESTATED_AT)
    assert latest_snapshot(uri, "user_id")[0].column("n_view_7d").to_pylist() == [3.0]
    old, version = latest_snapshot(uri, "user_id", version=first.version)
    assert (old.column("n_view_7d").to_pylist(), version) == ([1.0], first.version)


def test_time_travel_by_version_and_by_commit_time(uri):
    first = publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    between = datetime.now(UTC)
    second = publish_snapshots(uri, snapshot(2, {"a": 3.0}), "user_id", RESTATED_AT)
    by_version, _ = read_as_of(uri, version=first.version)
    by_time, resolved = read_as_of(uri, when=between)
    assert by_version.num_rows == by_time.num_rows == 1
    assert resolved == first.version
    assert read_as_of(uri, when=datetime.now(UTC))[1] == second.version


def test_the_table_stays_readable_by_spark_and_keeps_history(uri):
    publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    table = DeltaTable(uri)
    protocol = table.protocol()
    # No deletion vectors or column mapping: reader v1 / writer v2 need no table features.
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    config = table.metadata().configuration
    assert config["delta.logRetentionDuration"] == "interval 730 days"
    assert config["delta.deletedFileRetentionDuration"] == "interval 730 days"


def test_schema_hash_follows_names_and_types_only():
    base = snapshot(1, {"a": 1.0}).schema
    assert schema_hash(base) == schema_hash(base.with_metadata({"x": "y"}))
    assert schema_hash(base) != schema_hash(base.append(pa.field("extra", pa.int64())))


def test_latest_vectors_prefers_the_newest_as_of_then_the_newest_created():
    ts = pa.timestamp("us", tz="UTC")
    rows = pa.table(
        {
            "user_id": ["a", "a", "a", "b"],
            "feature_ts": pa.array([datetime(2026, 9, d, tzinfo=UTC) for d in (2, 3, 3, 1)], ts),
            "created_ts": pa.array([datetime(2026, 9, d, tzinfo=UTC) for d in (2, 3, 9, 1)], ts),
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert latest_vectors(rows, "user_id").column("x").to_pylist() == [3.0, 4.0]


def test_reading_the_log_back_matches_what_was_published_and_sees_dropped_entities(uri):
    publish_snapshots(uri, snapshot(1, {"a": 1.0, "b": 2.0}), "user_id", RESTATED_AT)
    assert check_log(uri, snapshot(1, {"a": 1.0, "b": 2.0}), "user_id") == LogCheck(0, 0)
    # A snapshot the log does not hold (not published) and one without b (b dropped).
    assert check_log(uri, snapshot(1, {"a": 9.0, "b": 2.0}), "user_id").unmatched == 1
    assert check_log(uri, snapshot(1, {"a": 1.0}), "user_id") == LogCheck(0, 1)


def test_a_feature_added_later_extends_the_log_and_restates_rebuilt_rows(uri):
    publish_snapshots(uri, snapshot(1, {"a": 1.0}), "user_id", RESTATED_AT)
    wider = snapshot(1, {"a": 1.0}).append_column("style_share_1d", pa.array([0.25]))
    outcome = publish_snapshots(uri, wider, "user_id", RESTATED_AT)
    assert (outcome.rows_appended, outcome.rows_restated) == (1, 1)
    rows = DeltaTable(uri).to_pyarrow_table().sort_by("created_ts")
    assert rows["style_share_1d"].to_pylist() == [None, 0.25]
    latest, _ = latest_snapshot(uri, "user_id")
    assert latest["style_share_1d"].to_pylist() == [0.25]
    again = publish_snapshots(uri, wider, "user_id", RESTATED_AT)
    assert not again.committed


def test_reading_reaches_back_to_the_last_snapshot_when_days_stopped_landing(uri):
    for day in (1, 2, 3, 9):  # nothing landed on days 4 to 8
        publish_snapshots(uri, snapshot(day, {"a": float(day)}), "user_id", RESTATED_AT)
    log = DeltaTable(uri)
    assert snapshot_dates(log) == [date(2026, 9, d) for d in (1, 2, 3, 9)]
    margin = timedelta(days=3)
    # Days landed daily: the margin is enough. After the pause: back to day 3's snapshot, which
    # is current from day 4 on. Day 9's own snapshot is not known on day 9.
    assert first_date_to_read(log, datetime(2026, 9, 4, tzinfo=UTC), margin) == date(2026, 9, 1)
    assert first_date_to_read(log, datetime(2026, 9, 9, 6, tzinfo=UTC), margin) == date(2026, 9, 3)
    assert first_date_to_read(log, datetime(2026, 9, 11, tzinfo=UTC), margin) == date(2026, 9, 8)
    assert first_date_to_read(log, datetime(2026, 8, 1, tzinfo=UTC), margin) == date(2026, 7, 29)
