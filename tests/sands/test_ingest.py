import json
from datetime import date

import pyarrow as pa
from deltalake import DeltaTable

from sands.contract import ARTWORKS, INTERACTIONS, USERS
from sands.ingest import bronze_uri, history_uri, ingest_day, ingest_reference, quarantine_uri
from tests.conftest import DAY, drop, events_table, ts

GOOD = [
    ("e1", "u1", "a1", "view", ts(DAY, 9), None),
    ("e2", "u1", "a1", "click", ts(DAY, 9, 1), None),
    ("e3", "u1", "a1", "purchase", ts(DAY, 9, 5), 120.0),
    ("e0", "u2", "a2", "view", ts(date(2026, 9, 1), 23, 50), None),  # late: landed the next day
]
CSV_LINES = (
    "event_id,user_id,artwork_id,event_type,event_ts,session_id,price\n"
    "c1,u3,a1,favourite,2026-09-02T11:00:00Z,s9,\n"
    "c2,u3,a1,view,not a time,s9,\n"
)
BAD_JSON = [
    {
        "event_id": "j1",
        "user_id": "u4",
        "artwork_id": "a3",
        "event_type": "hover",
        "event_ts": "2026-09-02T12:00:00Z",
    },
    {
        "event_id": "e1",
        "user_id": "u1",
        "artwork_id": "a1",
        "event_type": "view",
        "event_ts": "2026-09-02T09:00:00Z",
    },
    {
        "event_id": "j3",
        "user_id": "u4",
        "artwork_id": "a3",
        "event_type": "view",
        "event_ts": "2026-09-04T00:00:00Z",
    },
]


def land_day(paths) -> None:
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    drop(paths.landing, f"interactions/{DAY}/feed-b.jsonl", BAD_JSON)
    fs_path = f"{paths.landing}/interactions/{DAY}/export.csv"
    with open(fs_path, "w") as handle:
        handle.write(CSV_LINES)


def bronze(paths, entity=INTERACTIONS) -> pa.Table:
    return DeltaTable(bronze_uri(paths.lake, entity)).to_pyarrow_table()


def quarantine(paths, entity=INTERACTIONS) -> pa.Table:
    return DeltaTable(quarantine_uri(paths.lake, entity)).to_pyarrow_table()


def test_a_mixed_format_day_is_split_into_bronze_and_quarantine_with_nothing_lost(paths):
    land_day(paths)
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (9, 5, 4)
    assert report.reason_counts == {
        "event_id:duplicate": 1,
        "event_ts:after_landing_day": 1,
        "event_ts:invalid_type": 1,
        "event_type:isin": 1,
    }
    assert sorted(bronze(paths).column("event_id").to_pylist()) == ["c1", "e0", "e1", "e2", "e3"]
    assert sorted(quarantine(paths).column("record_key").to_pylist()) == ["c2", "e1", "j1", "j3"]
    assert report.table_version == DeltaTable(bronze_uri(paths.lake, INTERACTIONS)).version()


def test_rerunning_a_day_gives_the_same_tables_without_duplicates(paths):
    land_day(paths)
    ingest_day(paths.landing, paths.lake, DAY)
    first = (bronze(paths).sort_by("event_id"), quarantine(paths).num_rows)
    ingest_day(paths.landing, paths.lake, DAY)
    assert bronze(paths).sort_by("event_id").equals(first[0])
    assert quarantine(paths).num_rows == first[1]


def test_a_late_file_for_an_ingested_day_is_added_on_reingest(paths):
    land_day(paths)
    ingest_day(paths.landing, paths.lake, DAY)
    drop(
        paths.landing,
        f"interactions/{DAY}/late.parquet",
        events_table([("e7", "u9", "a1", "view", ts(DAY, 23), None)]),
    )
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.rows_accepted == 6
    assert "e7" in bronze(paths).column("event_id").to_pylist()


def test_an_event_landing_again_on_another_day_is_quarantined_there(paths):
    land_day(paths)
    ingest_day(paths.landing, paths.lake, DAY)
    next_day = date(2026, 9, 3)
    drop(
        paths.landing,
        f"interactions/{next_day}/events.parquet",
        events_table([GOOD[0], ("n1", "u1", "a1", "view", ts(next_day, 8), None)]),
    )
    report = ingest_day(paths.landing, paths.lake, next_day)
    assert report.reason_counts == {"event_id:already_ingested": 1}
    assert bronze(paths).num_rows == 6


def test_quarantined_rows_are_stored_unchanged_with_reasons(paths):
    land_day(paths)
    ingest_day(paths.landing, paths.lake, DAY)
    stored = {r["record_key"]: r for r in quarantine(paths).to_pylist()}
    assert json.loads(stored["j1"]["record"]) == BAD_JSON[0]
    assert stored["c2"]["reasons"] == ["event_ts:invalid_type"]
    assert json.loads(stored["c2"]["record"])["event_ts"] == "not a time"
    assert stored["c2"]["landing_date"] == DAY


def user(user_id: str, name_day: int, interests: list[str], country: str = "DE") -> dict:
    return {
        "user_id": user_id,
        "signup_ts": "2026-01-01T00:00:00Z",
        "age": 30,
        "gender": None,
        "country": country,
        "interests": interests,
        "updated_ts": f"2026-09-0{name_day}T00:00:00Z",
    }


def test_reference_feeds_merge_across_drops_with_the_latest_version_winning(paths):
    drop(
        paths.landing,
        "users/users-1.jsonl",
        [user("u1", 1, ["abstract"]), user("u2", 1, ["cubism"])],
    )
    drop(
        paths.landing,
        "users/users-2.jsonl",
        [user("u1", 3, ["pop-art"]), user("u2", 1, ["cubism"], "Germany")],
    )
    drop(paths.landing, "users/users-3.jsonl", [user("u1", 2, ["ukiyo-e"]), user("u3", 2, [])])
    report = ingest_reference(USERS, paths.landing, paths.lake)
    stored = {r["user_id"]: r for r in bronze(paths, USERS).to_pylist()}
    assert {k: v["interests"] for k, v in stored.items()} == {
        "u1": ["pop-art"],
        "u2": ["cubism"],
        "u3": [],
    }
    assert report.reason_counts == {"country:str_matches": 1}
    version = DeltaTable(bronze_uri(paths.lake, USERS)).version()
    again = ingest_reference(USERS, paths.landing, paths.lake)
    assert not again.committed and DeltaTable(bronze_uri(paths.lake, USERS)).version() == version
    assert quarantine(paths, USERS).num_rows == 1


def test_reference_history_keeps_every_version_once_across_reruns(paths):
    drop(paths.landing, "users/users-1.jsonl", [user("u1", 1, ["abstract"])])
    drop(paths.landing, "users/users-2.jsonl", [user("u1", 3, ["pop-art"]), user("u3", 2, [])])
    ingest_reference(USERS, paths.landing, paths.lake)
    history_version = DeltaTable(history_uri(paths.lake, USERS)).version()
    ingest_reference(USERS, paths.landing, paths.lake)
    history = DeltaTable(history_uri(paths.lake, USERS))
    assert history.version() == history_version  # nothing new: no commit
    versions = sorted(
        (r["user_id"], r["interests"]) for r in history.to_pyarrow_table().to_pylist()
    )
    assert versions == [("u1", ["abstract"]), ("u1", ["pop-art"]), ("u3", [])]


def test_an_empty_landing_zone_ingests_nothing_without_failing(paths):
    report = ingest_reference(ARTWORKS, paths.landing, paths.lake)
    assert (report.rows_read, report.rows_accepted) == (0, 0)
    assert ingest_day(paths.landing, paths.lake, DAY).rows_read == 0
