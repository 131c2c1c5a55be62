"""Staging a recorded landing zone day by day, as if each day arrived live."""

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from sands.sim.replay import ReplaySource, file_day, gaps, relanded, replay_days
from tests.conftest import DAY, drop, events_table, ts

NEXT = DAY + timedelta(days=1)


def _files(root: str) -> set[str]:
    return {str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()}


def test_file_day_reads_the_first_real_iso_date_in_the_name():
    assert file_day("users/users-2026-09-02.parquet") == date(2026, 9, 2)
    assert file_day("users/2026-09-02-then-2026-09-05.csv") == date(2026, 9, 2)
    assert file_day("users/snapshot.parquet") is None
    assert file_day("users/users-2026-13-40.parquet") is None
    assert file_day("users/users-2026-13-40-2026-09-03.csv") == date(2026, 9, 3)
    # A dataset folder carries the date of its parts.
    assert file_day("users/users-2024-01-04.parquet/part-0.parquet") == date(2024, 1, 4)


def test_a_reference_file_dated_past_the_history_arrives_with_the_first_day(tmp_path):
    source, live = str(tmp_path / "history"), str(tmp_path / "live")
    drop(source, f"interactions/{DAY}/events.parquet", events_table([]))
    drop(source, f"interactions/{NEXT}/events.parquet", events_table([]))
    drop(source, "users/users-export-2030-11-30.jsonl", [{"user_id": "u1"}])  # when exported
    replay = ReplaySource(source)
    assert replay.dated_after() == [("users/users-export-2030-11-30.jsonl", date(2030, 11, 30))]
    replay.stage(DAY, live)
    assert "users/users-export-2030-11-30.jsonl" in _files(live)


def test_replay_days_start_and_count():
    days = [DAY + timedelta(days=i) for i in (2, 0, 1, 3)]
    assert replay_days(days, None, None) == sorted(days)
    assert replay_days(days, NEXT, 2) == [NEXT, NEXT + timedelta(days=1)]
    with pytest.raises(ValueError, match="no interaction days"):
        replay_days(days, DAY + timedelta(days=9), None)
    with pytest.raises(ValueError, match="holds no interactions"):
        replay_days([], None, None)


def test_each_day_stages_its_interactions_and_the_reference_files_due_once(tmp_path):
    source, live = str(tmp_path / "history"), str(tmp_path / "live")
    one = events_table([("e1", "u1", "a1", "view", ts(DAY, 9), None)])
    two = events_table([("e2", "u1", "a1", "click", ts(NEXT, 9), None)])
    drop(source, f"interactions/{DAY}/events.parquet", one)
    drop(source, f"interactions/{NEXT}/events.parquet", two)
    drop(source, "users/base.jsonl", [{"user_id": "u0"}])  # undated: arrives first
    drop(source, f"users/users-{DAY}.jsonl", [{"user_id": "u1"}])
    drop(source, f"users/users-{NEXT}.jsonl", [{"user_id": "u2"}])
    replay = ReplaySource(source)
    assert replay.days() == [DAY, NEXT]

    assert replay.stage(DAY, live) == 3
    assert _files(live) == {
        f"interactions/{DAY}/events.parquet",
        "users/base.jsonl",
        f"users/users-{DAY}.jsonl",
    }
    assert replay.stage(NEXT, live) == 2  # the earlier reference files are not staged again
    assert f"users/users-{NEXT}.jsonl" in _files(live)
    assert (
        Path(live, f"interactions/{NEXT}/events.parquet").read_bytes()
        == Path(source, f"interactions/{NEXT}/events.parquet").read_bytes()
    )


def test_gaps_are_the_missing_runs_between_landing_days():
    days = [date(2003, 6, d) for d in (1, 2, 5, 6, 8)]
    assert gaps(list(reversed(days))) == [
        (date(2003, 6, 3), date(2003, 6, 4)),
        (date(2003, 6, 7), date(2003, 6, 7)),
    ]
    assert gaps(days[:2]) == [] and gaps([]) == []


def test_days_already_landed_in_the_home_are_named_with_where_to_go_on_from():
    days = [date(2003, 6, d) for d in (1, 2, 5, 6)]
    assert relanded(days[2:], days[:2], days) is None
    told = relanded(days, days[:3], days)
    assert told.startswith("2003-06-01..2003-06-05 already landed in this SANDS_HOME")
    assert told.endswith("replay into an empty SANDS_HOME, or go on from --start 2003-06-06")
    assert relanded(days, days, days).endswith("replay into an empty SANDS_HOME")


def test_event_types_are_read_until_a_conversion_shows(tmp_path):
    source = str(tmp_path / "history")
    drop(
        source,
        f"interactions/{DAY}/a.parquet",
        events_table([("e1", "u1", "a1", "view", ts(DAY, 9), None)]),
    )
    drop(
        source, f"interactions/{NEXT}/b.jsonl", [{"event_type": "purchase"}, {"event_type": "view"}]
    )
    later = NEXT + timedelta(days=1)
    drop(source, f"interactions/{later}/c.jsonl", [{"event_type": "click"}])
    replay = ReplaySource(source)
    # The purchase on the second day settles it (its day's events counted, by type): the third
    # day is never read. Without a conversion, every day's events are counted.
    assert replay.event_counts([later, DAY, NEXT]) == (NEXT, Counter(purchase=1, view=1))
    assert replay.event_counts([DAY, later]) == (None, Counter(view=1, click=1))
    assert replay.event_counts([]) == (None, Counter())
