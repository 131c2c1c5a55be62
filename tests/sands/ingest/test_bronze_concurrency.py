"""Two ingests at once never store an event twice: the bronze lock, and without it (writers on
other hosts) the post-commit check."""

import threading
from contextlib import nullcontext
from datetime import date

from sands.ingest import bronze
from tests.conftest import drop, events_table, ts
from tests.sands.ingest.test_bronze import bronze as bronze_table
from tests.sands.ingest.test_bronze import quarantine

D1, D2 = date(2026, 9, 1), date(2026, 9, 2)
SHARED = ["s1", "s2", "s3"]


def land_two_days_sharing_events(paths) -> None:
    for day, own in ((D1, "x1"), (D2, "y1")):
        rows = [(e, "u1", "a1", "view", ts(D1, 9), None) for e in [*SHARED, own]]
        drop(paths.landing, f"interactions/{day}/events.parquet", events_table(rows))


def ingest_both_at_once(paths) -> list[bronze.IngestReport]:
    reports: list[bronze.IngestReport] = []
    errors: list[BaseException] = []

    def run(day: date) -> None:
        try:
            reports.append(bronze.ingest_day(paths.landing, paths.lake, day))
        except BaseException as exc:  # surfaced below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(day,)) for day in (D1, D2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return reports


def assert_each_event_once(paths, reports) -> None:
    ids = bronze_table(paths).column("event_id").to_pylist()
    assert sorted(ids) == sorted([*SHARED, "x1", "y1"])
    held = quarantine(paths).to_pylist()
    assert sorted(r["record_key"] for r in held) == SHARED
    assert {tuple(r["reasons"]) for r in held} == {("event_id:already_ingested",)}
    assert sum(r.rows_accepted for r in reports) == 5 and all(r.balanced for r in reports)


def test_two_days_ingested_at_once_store_each_shared_event_once(paths):
    land_two_days_sharing_events(paths)
    assert_each_event_once(paths, ingest_both_at_once(paths))


def test_writers_that_share_no_lock_still_store_each_event_once(paths, monkeypatch):
    """As pods on two hosts: no common lock, both look up before either commits."""
    land_two_days_sharing_events(paths)
    monkeypatch.setattr(bronze, "bronze_lock", lambda _: nullcontext())
    both_looked = threading.Barrier(2, timeout=30)
    lookup = bronze._known_keys

    def look_then_wait(*args, **kwargs):
        known = lookup(*args, **kwargs)
        both_looked.wait()  # neither commits before both have looked: the race, every time
        return known

    monkeypatch.setattr(bronze, "_known_keys", look_then_wait)
    reports = ingest_both_at_once(paths)
    # The day that committed second yields all three shared events.
    assert sorted(r.reason_counts.get("event_id:already_ingested", 0) for r in reports) == [0, 3]
    assert_each_event_once(paths, reports)


def test_after_a_race_reruns_of_both_days_keep_each_event_once(paths, monkeypatch):
    land_two_days_sharing_events(paths)
    monkeypatch.setattr(bronze, "bronze_lock", lambda _: nullcontext())
    ingest_both_at_once(paths)
    reports = [bronze.ingest_day(paths.landing, paths.lake, day) for day in (D2, D1)]
    assert_each_event_once(paths, reports)
