"""The pair input: a user's events on an artwork in the window before the day being ranked."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from sands.features.engagement import (
    engaged_by_user,
    engaged_counts,
    engaged_grid,
    engaged_lists,
    engaged_map,
    engagement_events,
    histories_with_engaged,
)
from sands.ingest.contract import LANDING_DAY_COLUMN
from sands.lake import delta

TS = pa.timestamp("us", tz="UTC")


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def events(rows: list[tuple[str, str, datetime]]) -> pa.Table:
    users, works, times = zip(*rows, strict=True)
    return pa.table({"user_id": users, "artwork_id": works, "event_ts": pa.array(times, TS)})


# Ranked or labelled on 10-01: the window is 09-03 00:00 up to 10-01 00:00.
EVENTS = events(
    [
        ("u1", "a1", at(9, 30, 23)),  # the evening before: counted
        ("u1", "a1", at(9, 3, 0)),  # the window's first instant: counted
        ("u1", "a1", at(9, 2, 23)),  # 28 days and an hour before: not
        ("u1", "a1", at(10, 1, 0)),  # the day itself: not
        ("u1", "a2", at(9, 20)),
        ("u2", "a1", at(9, 20)),
    ]
)


def test_counts_are_the_pairs_events_in_the_28_days_before_the_labels_day():
    keys = pa.table(
        {
            "user_id": ["u1", "u1", "u2", "u3", "u1"],
            "artwork_id": ["a1", "a2", "a2", "a1", "a1"],
            "label_ts": pa.array([at(10, 1, 15)] * 4 + [at(9, 21)], TS),
        }
    )
    # Labelled on 09-21 (window 08-24 up to 09-21): u1's a1 events of 09-02 and 09-03.
    assert engaged_counts(keys, EVENTS).to_pylist() == [2.0, 1.0, 0.0, 0.0, 2.0]


def test_per_user_maps_grid_and_lists_agree_with_the_counts():
    engaged = engaged_by_user(EVENTS, ["u1", "u3"], at(10, 1, 8))
    assert engaged == {"u1": {"a1": 2.0, "a2": 1.0}}  # u2 not asked, u3 engaged with nothing
    grid = engaged_grid(engaged, ["u3", "u1"], {"a2": 0, "a1": 1, "a9": 2}, 3)
    assert grid.tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]]
    lists = engaged_lists(EVENTS, at(10, 1, 8)).to_pylist()
    assert lists == [
        {"user_id": "u1", "engaged": ["a1", "a2"], "engaged_n": [2.0, 1.0]},
        {"user_id": "u2", "engaged": ["a1"], "engaged_n": [1.0]},
    ]


def test_online_histories_gain_the_lists_and_read_back_as_a_map():
    histories = pa.table(
        {"user_id": ["u1", "u3"], "seeds": [["a1"], ["a5"]], "converted": [[], ["a5"]]}
    )
    merged = histories_with_engaged(histories, engaged_lists(EVENTS, at(10, 1))).to_pylist()
    by_user = {row["user_id"]: row for row in merged}
    assert by_user["u1"]["engaged"] == ["a1", "a2"] and by_user["u1"]["seeds"] == ["a1"]
    assert by_user["u3"]["engaged"] == [] and by_user["u3"]["converted"] == ["a5"]
    assert by_user["u2"]["seeds"] == [] and by_user["u2"]["engaged_n"] == [1.0]
    assert engaged_map(by_user["u1"]) == {"a1": 2.0, "a2": 1.0}
    assert engaged_map(by_user["u3"]) == {}
    assert engaged_map(None) == {}  # no history: engaged with nothing
    assert engaged_map({"seeds": ["a1"], "converted": []}) is None  # published before: unknown
    # A damaged record serves as unknown rather than failing the request.
    assert engaged_map({"engaged": ["a1", "a2"], "engaged_n": [1.0]}) is None
    assert engaged_map({"engaged": ["a1"], "engaged_n": ["many"]}) is None
    assert engaged_map({"engaged": "a1", "engaged_n": [1.0]}) is None


def test_bronze_events_are_read_from_a_time_on_at_a_version(tmp_path):
    uri = str(tmp_path / "interactions")
    first = EVENTS.append_column(
        LANDING_DAY_COLUMN,
        pa.array([t.date() for t in EVENTS["event_ts"].to_pylist()], pa.date32()),
    )
    version = delta.overwrite(uri, first, {})
    later = events([("u9", "a9", at(10, 2))])
    later = later.append_column(LANDING_DAY_COLUMN, pa.array([date(2026, 10, 2)], pa.date32()))
    delta.overwrite(uri, pa.concat_tables([first, later]), {})
    read = engagement_events(uri, at(9, 3, 0), version=version)
    assert sorted(read["event_ts"].to_pylist()) == sorted(
        t for t in EVENTS["event_ts"].to_pylist() if t >= at(9, 3, 0)
    )
    assert "u9" not in read["user_id"].to_pylist()
    assert sorted(engagement_events(uri, at(10, 1, 0))["user_id"].to_pylist()) == ["u1", "u9"]
