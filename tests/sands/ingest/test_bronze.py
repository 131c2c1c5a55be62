import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from sands.ingest.bronze import (
    bronze_uri,
    history_uri,
    ingest_day,
    ingest_reference,
    new_versions,
    quarantine_uri,
)
from sands.ingest.contract import ARTWORKS, INTERACTIONS, USERS
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


def test_a_version_dated_past_the_clock_and_every_landing_day_cannot_pin_a_user(paths):
    pinned = {**user("u1", 1, ["abstract"]), "updated_ts": "2099-01-01T00:00:00Z"}
    unborn = {**user("u2", 1, ["cubism"]), "signup_ts": "2099-01-01T00:00:00Z"}
    drop(paths.landing, "users/users-1.jsonl", [pinned, unborn, user("u3", 1, [])])
    drop(paths.landing, "users/users-2.jsonl", [user("u1", 2, ["pop-art"])])
    report = ingest_reference(USERS, paths.landing, paths.lake)
    assert report.reason_counts == {"signup_ts:in_the_future": 1, "updated_ts:in_the_future": 1}
    stored = {r["user_id"]: r["interests"] for r in bronze(paths, USERS).to_pylist()}
    assert stored == {"u1": ["pop-art"], "u3": []}  # the real update of u1 is the latest


def test_a_played_day_ahead_of_the_clock_takes_in_the_users_of_that_day(paths):
    ahead = datetime.now(UTC).date() + timedelta(days=5)
    drop(paths.landing, f"interactions/{ahead}/events.parquet", events_table(GOOD[:1]))
    row = {**user("u1", 1, []), "signup_ts": f"{ahead}T10:00Z", "updated_ts": f"{ahead}T23:00Z"}
    drop(paths.landing, "users/users.jsonl", [row])
    assert ingest_reference(USERS, paths.landing, paths.lake).rows_accepted == 1


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


def test_a_row_resent_with_its_versions_timestamp_and_other_content_corrects_it(paths):
    drop(paths.landing, "users/users.jsonl", [user("u1", 1, ["abstract"]), user("u2", 1, [])])
    drop(paths.landing, "users/later.jsonl", [user("u2", 3, ["ink"])])
    ingest_reference(USERS, paths.landing, paths.lake)
    # The export is re-sent with u1's and u2's countries fixed and the same timestamps.
    fixed = [user("u1", 1, ["abstract"], "FR"), user("u2", 1, [], "FR")]
    drop(paths.landing, "users/users.jsonl", fixed)
    report = ingest_reference(USERS, paths.landing, paths.lake)
    assert report.versions_corrected == 2 and report.committed
    latest = {r["user_id"]: r["country"] for r in bronze(paths, USERS).to_pylist()}
    assert latest == {"u1": "FR", "u2": "DE"}  # u2's latest is its later version, untouched
    history = DeltaTable(history_uri(paths.lake, USERS)).to_pyarrow_table().to_pylist()
    assert sorted((r["user_id"], r["updated_ts"].day, r["country"]) for r in history) == [
        ("u1", 1, "FR"),
        ("u2", 1, "FR"),
        ("u2", 3, "DE"),
    ]
    versions = (DeltaTable(bronze_uri(paths.lake, USERS)).version(), len(history))
    again = ingest_reference(USERS, paths.landing, paths.lake)
    assert again.versions_corrected == 0 and not again.committed
    assert DeltaTable(bronze_uri(paths.lake, USERS)).version() == versions[0]


def test_a_resent_export_that_left_out_an_optional_column_is_told(paths):
    drop(paths.landing, "users/users.jsonl", [user("u1", 1, []), user("u2", 1, [])])
    ingest_reference(USERS, paths.landing, paths.lake)
    without_age = [{k: v for k, v in user(u, 2, []).items() if k != "age"} for u in ("u1", "u2")]
    drop(paths.landing, "users/users.jsonl", without_age)
    report = ingest_reference(USERS, paths.landing, paths.lake)
    assert report.hints == [
        "no file holds column age, which earlier versions of some of these rows had (age (2)): "
        "their new versions store none (an optional column left out is null)"
    ]
    assert [r["age"] for r in bronze(paths, USERS).to_pylist()] == [None, None]
    # Said once: the latest versions now hold no age.
    assert ingest_reference(USERS, paths.landing, paths.lake).hints == []


def test_a_row_that_changes_only_its_timestamp_is_no_new_version(paths):
    # A source that touches updated_ts when a field outside the contract changes (views, likes).
    drop(paths.landing, "users/users-1.jsonl", [user("u1", 1, ["abstract"])])
    ingest_reference(USERS, paths.landing, paths.lake)
    drop(
        paths.landing,
        "users/users-2.jsonl",
        [user("u1", 2, ["abstract"]), user("u1", 4, ["pop-art"]), user("u1", 5, ["pop-art"])],
    )
    report = ingest_reference(USERS, paths.landing, paths.lake)
    history = DeltaTable(history_uri(paths.lake, USERS)).to_pyarrow_table().to_pylist()
    versions = sorted((r["updated_ts"].day, r["interests"]) for r in history)
    # Day 2 repeats day 1 and day 5 repeats day 4: the interests changed once.
    assert versions == [(1, ["abstract"]), (4, ["pop-art"])]
    assert report.versions_unchanged == 2 and report.balanced
    # The latest row is still the latest sent; a rerun leaves the same two out.
    assert bronze(paths, USERS).to_pylist()[0]["updated_ts"].day == 5
    assert ingest_reference(USERS, paths.landing, paths.lake).versions_unchanged == 2


def test_a_late_version_is_judged_against_the_one_in_effect_before_it():
    def users(*rows: tuple[str, str, int]) -> pa.Table:
        return pa.table(
            {
                "user_id": [r[0] for r in rows],
                "country": [r[1] for r in rows],
                "updated_ts": pa.array(
                    [datetime(2026, 9, r[2], tzinfo=UTC) for r in rows], pa.timestamp("us", "UTC")
                ),
            }
        )

    stored = users(("u1", "DE", 1), ("u1", "FR", 5))
    incoming = users(("u1", "DE", 3), ("u1", "FR", 4), ("u1", "FR", 6), ("u1", "FR", 5))
    fresh, left_out = new_versions(incoming, stored, "user_id", "updated_ts")
    # DE on day 3 repeats day 1's; FR on day 4 is a change before day 5's (kept); FR on day 6
    # repeats day 5's; day 5 itself is the stored version again (kept; the insert skips it).
    assert [(r["country"], r["updated_ts"].day) for r in fresh.to_pylist()] == [
        ("FR", 4),
        ("FR", 5),
    ]
    assert left_out == 2
    # Without a stored history the drop is judged against itself.
    assert new_versions(incoming, None, "user_id", "updated_ts")[1] == 2


def test_an_empty_landing_zone_ingests_nothing_without_failing(paths):
    report = ingest_reference(ARTWORKS, paths.landing, paths.lake)
    assert (report.rows_read, report.rows_accepted) == (0, 0)
    assert ingest_day(paths.landing, paths.lake, DAY).rows_read == 0


CORRUPT = b"PAR1" + b"\x00not a parquet footer" * 4
JSON_LINES = "\n".join(
    [
        json.dumps(BAD_JSON[0] | {"event_id": "h1", "event_type": "view"}),
        '{"event_id": "h2", "user_id": "u4", "artwo',
        '["h3", "u4", "a3", "view"]',
    ]
)


def land_hostile_day(paths) -> dict[str, int]:
    """A good Parquet file, a corrupt one, an empty CSV and a JSON-lines file with two damaged
    lines; returns the rows written per readable file."""
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    folder = Path(paths.landing, "interactions", str(DAY))
    (folder / "broken.parquet").write_bytes(CORRUPT)
    (folder / "empty.csv").write_bytes(b"")
    (folder / "feed.jsonl").write_text(JSON_LINES)
    return {"events.parquet": len(GOOD), "empty.csv": 0, "feed.jsonl": 3}


def assert_accounted(report, written: dict[str, int], unreadable: int) -> None:
    """The invariant: accepted + quarantined rows == rows written; files rejected == unreadable."""
    assert report.rows_accepted + report.rows_rejected == sum(written.values())
    assert {Path(p).name: n for p, n in report.rows_per_file.items()} == written
    assert report.files_rejected == unreadable and report.balanced


def test_a_day_with_unreadable_files_and_damaged_lines_ingests_the_rest_and_names_them(paths):
    written = land_hostile_day(paths)
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert_accounted(report, written, unreadable=1)
    assert report.reason_counts == {"row:invalid_json": 1, "row:not_an_object": 1}
    assert sorted(bronze(paths).column("event_id").to_pylist()) == ["e0", "e1", "e2", "e3", "h1"]
    (rejected,) = report.rejected_files
    assert (Path(rejected["path"]).name, rejected["size"], rejected["reason"]) == (
        "broken.parquet",
        len(CORRUPT),
        "file:unreadable",
    )
    assert rejected["sha256"] == hashlib.sha256(CORRUPT).hexdigest()
    assert rejected["message"].startswith("ArrowInvalid: ")
    kept = Path(rejected["kept_at"])
    assert kept.read_bytes() == CORRUPT and kept.is_relative_to(paths.home)


def test_damaged_lines_and_unreadable_files_are_quarantine_records_kept_once_across_reruns(paths):
    land_hostile_day(paths)
    for _ in range(2):
        ingest_day(paths.landing, paths.lake, DAY)
    records = sorted(
        quarantine(paths).to_pylist(), key=lambda r: (r["source_row"] is None, r["source_row"])
    )
    assert [(r["source_row"], r["reasons"]) for r in records] == [
        (1, ["row:invalid_json"]),
        (2, ["row:not_an_object"]),
        (None, ["file:unreadable"]),
    ]
    assert records[0]["record"] == '{"event_id": "h2", "user_id": "u4", "artwo'
    details = json.loads(records[2]["record"])
    assert details["path"] == records[2]["source_file"] and details["size"] == len(CORRUPT)
    assert len(list(Path(paths.lake, "quarantine", "files").rglob("*.parquet"))) == 1


def test_an_unreadable_reference_drop_is_quarantined_once_and_the_other_drops_merge(paths):
    drop(paths.landing, "users/users-1.jsonl", [user("u1", 1, ["abstract"])])
    Path(paths.landing, "users", "users-2.csv").write_bytes(b"user_id\n\xff\xfe\n")
    for _ in range(2):
        report = ingest_reference(USERS, paths.landing, paths.lake)
    assert_accounted(report, {"users-1.jsonl": 1}, unreadable=1)
    assert bronze(paths, USERS).column("user_id").to_pylist() == ["u1"]
    (record,) = quarantine(paths, USERS).to_pylist()
    assert record["reasons"] == ["file:unreadable"] and record["source_file"].endswith(
        "users-2.csv"
    )


def test_a_write_killed_mid_file_leaves_staging_files_that_the_next_ingest_removes(paths):
    land_day(paths)
    ingest_day(paths.landing, paths.lake, DAY)
    table = Path(bronze_uri(paths.lake, INTERACTIONS))
    stray = [
        table / f"landing_date={DAY}" / "part-00000-dead.snappy.parquet#1",
        table / "_delta_log" / "00000000000000000009.json#1",
        Path(paths.lake, "quarantine", "files", "interactions", f".{'ab' * 16}.tmp"),
    ]
    for path in stray:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    before = bronze(paths).sort_by("event_id")
    ingest_day(paths.landing, paths.lake, DAY)
    assert [p for p in stray if p.exists()] == []
    assert bronze(paths).sort_by("event_id").equals(before)


USERS_CSV = (
    "user_id,signup_ts,age,gender,country,interests,updated_ts\n"
    "u1,2026-09-01T00:00:00Z,30,,US,,2026-09-01T00:00:00Z\n"
    "u2,2026-09-01T00:00:00Z,41,F,US,oil|abstract,2026-09-01T00:00:00Z\n"
)


def test_an_empty_list_cell_in_csv_is_an_empty_list_and_other_empty_cells_are_nulls(paths):
    Path(paths.landing, "users").mkdir(parents=True)
    Path(paths.landing, "users", "export.csv").write_text(USERS_CSV)
    report = ingest_reference(USERS, paths.landing, paths.lake)
    assert (report.rows_accepted, report.rows_rejected) == (2, 0)
    rows = sorted(bronze(paths, USERS).to_pylist(), key=lambda r: r["user_id"])
    assert [(r["interests"], r["gender"]) for r in rows] == [([], None), (["oil", "abstract"], "F")]


def test_a_reference_drop_whose_every_row_is_rejected_is_quarantined_not_a_crash(paths):
    # A country by name and an unknown age on every row: nothing to accept, typed or not.
    bad = USERS_CSV.replace(",US,", ",USA,").replace(",30,", ",old,").replace(",41,", ",old,")
    Path(paths.landing, "users").mkdir(parents=True)
    Path(paths.landing, "users", "export.csv").write_text(bad)
    report = ingest_reference(USERS, paths.landing, paths.lake)
    assert (report.rows_accepted, report.rows_rejected) == (0, 2)
    assert report.reason_counts == {"age:invalid_type": 2, "country:str_matches": 2}
    assert bronze(paths, USERS).num_rows == 0 and quarantine(paths, USERS).num_rows == 2


def test_a_nan_amount_in_parquet_or_json_is_rejected_like_in_csv_not_read_as_no_amount(paths):
    # pandas reads a float NaN as a null: a broken price would land as no price at all.
    purchases = pa.table(
        {
            "event_id": ["p1", "p2", "p3"],
            "user_id": ["u1"] * 3,
            "artwork_id": ["a1"] * 3,
            "event_type": ["purchase"] * 3,
            "event_ts": [datetime(2026, 9, 2, 9, tzinfo=UTC)] * 3,
            "price": [12.5, float("nan"), None],
        }
    )
    drop(paths.landing, f"interactions/{DAY}/sales.parquet", purchases)
    line = '{{"event_id": "{}", "user_id": "u1", "artwork_id": "a1", "event_type": "purchase", '
    line += '"event_ts": "2026-09-02T10:00:00Z", "price": {}}}'
    lines = [line.format("j1", "NaN"), line.format("j2", "null"), line.format("j3", "Infinity")]
    Path(paths.landing, "interactions", str(DAY), "sales.jsonl").write_text("\n".join(lines))
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.reason_counts == {"price:invalid_type": 3}
    assert sorted(bronze(paths)["event_id"].to_pylist()) == ["j2", "p1", "p3"]
    stored = {r["record_key"]: json.loads(r["record"]) for r in quarantine(paths).to_pylist()}
    assert (stored["p2"]["price"], stored["j1"]["price"], stored["j3"]["price"]) == (
        "NaN",
        "NaN",
        "Infinity",
    )


def test_an_id_with_a_space_at_either_end_is_rejected_not_taken_for_another_id(paths):
    drop(
        paths.landing,
        f"interactions/{DAY}/events.csv",
        events_table(
            [
                ("e1", "u1", "a1", "view", ts(DAY, 9), None),
                ("e1 ", "u1", "a1", "view", ts(DAY, 9), None),  # e1 again, padded
                ("e2", " u1", "a1", "view", ts(DAY, 9), None),
                ("e3", "u1", "a1\u00a0", "view", ts(DAY, 9), None),
                ("e4", "u 1", "a1", "view", ts(DAY, 9), None),  # inside: an id like any
                ("e5", "  ", "a1", "view", ts(DAY, 9), None),
                ("e6", "u\n1", "a1", "view", ts(DAY, 9), None),  # control characters anywhere
                ("e7\x1b", "u1", "a1\t2", "view", ts(DAY, 9), None),
            ]
        ),
    )
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.reason_counts == {
        "event_id:trimmed": 1,
        "user_id:trimmed": 1,
        "artwork_id:trimmed": 1,
        "user_id:non_blank": 1,
        "user_id:printable": 1,
        "event_id:printable": 1,
        "artwork_id:printable": 1,
    }
    assert sorted(bronze(paths)["event_id"].to_pylist()) == ["e1", "e4"]


def test_a_file_naming_a_column_twice_is_quarantined_whole(paths):
    folder = Path(paths.landing, "interactions", str(DAY))
    folder.mkdir(parents=True)
    (folder / "events.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts,event_id\n"
        "e1,u1,a1,view,2026-09-02T09:00:00Z,e9\n"
    )
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert (report.rows_read, report.files_rejected) == (0, 1)
    record = json.loads(quarantine(paths)["record"][0].as_py())
    assert record["reason"] == "file:unreadable"
    assert "the header names 'event_id' more than once" in record["message"]


def test_64_bit_ids_bytes_that_are_not_utf8_and_cut_emoji_lose_no_row_and_no_digit(paths):
    big = 2**53 + 1  # a float would store it as 2^53
    table = events_table(GOOD[:3])
    ids = pa.array([b"e1", b"e\xff", b"e3"], pa.binary()).view(pa.string())
    sessions = pa.array([big, None, big + 2], pa.int64())
    table = table.set_column(0, "event_id", ids).set_column(5, "session_id", sessions)
    drop(paths.landing, f"interactions/{DAY}/events.parquet", table)
    cut = BAD_JSON[2] | {"event_id": "j3\udfa8", "event_ts": "2026-09-02T12:00:00Z"}
    folder = Path(paths.landing, "interactions", str(DAY))
    (folder / "feed.jsonl").write_text(json.dumps(cut) + "\n")
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert (report.rows_accepted, report.rows_rejected) == (2, 2)
    assert report.reason_counts == {"event_id:invalid_type": 1, "row:invalid_unicode": 1}
    stored = bronze(paths).sort_by("event_id").select(["event_id", "session_id"]).to_pylist()
    assert stored == [
        {"event_id": "e1", "session_id": str(big)},
        {"event_id": "e3", "session_id": str(big + 2)},
    ]
    kept = {r["reasons"][0]: r["record"] for r in quarantine(paths).to_pylist()}
    assert json.loads(kept["event_id:invalid_type"])["event_id"] == "b'e\\xff'"
    assert "j3\\udfa8" in kept["row:invalid_unicode"]


def test_an_unreadable_file_with_a_name_of_250_bytes_is_kept_under_a_name_that_fits(paths):
    name = "x" * 240 + ".parquet"  # with the checksum prefix, past a file system's 255 bytes
    folder = Path(paths.landing, "interactions", str(DAY))
    folder.mkdir(parents=True)
    (folder / name).write_bytes(CORRUPT)
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert (report.rows_accepted, report.files_rejected) == (len(GOOD), 1)
    kept = Path(report.rejected_files[0]["kept_at"])
    assert kept.read_bytes() == CORRUPT and len(kept.name.encode()) == 255
    assert kept.name.endswith("xx.parquet")


def test_a_broken_re_upload_of_a_whole_day_leaves_its_rows_in_bronze(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(GOOD))
    ingest_day(paths.landing, paths.lake, DAY)
    held = sorted(bronze(paths).column("event_id").to_pylist())
    # The provider re-sends the day, and the upload breaks: nothing of it can be read.
    Path(paths.landing, "interactions", str(DAY), "events.parquet").write_bytes(CORRUPT)
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.files_rejected == 1 and not report.committed
    assert sorted(bronze(paths).column("event_id").to_pylist()) == held
    assert (
        report.hints[-1]
        == f"no file of {DAY} could be read: bronze keeps the rows it held for the day"
    )
    assert [r["reasons"] for r in quarantine(paths).to_pylist()] == [["file:unreadable"]]


def test_a_day_repaired_by_removing_resent_events_names_the_days_that_rejected_them(paths):
    earlier = date(2026, 9, 1)
    ids = (1, 2, 3)
    sent = events_table([(f"e{i}", "u1", "a1", "view", ts(earlier, 10, i), None) for i in ids])
    # Three events of the day before, sent on their own day and again, by mistake, on DAY.
    drop(paths.landing, f"interactions/{DAY}/events.parquet", sent)
    drop(paths.landing, f"interactions/{earlier}/events.parquet", sent)
    ingest_day(paths.landing, paths.lake, DAY)
    assert ingest_day(paths.landing, paths.lake, earlier).rows_rejected == 3
    # The provider repairs DAY by removing the copies: they are now on no day at all.
    drop(paths.landing, f"interactions/{DAY}/events.parquet", sent.slice(2))
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.hints == [
        f"2 events this day no longer holds were rejected as already ingested here on "
        f"{earlier} (2): ingest those days again to take them in"
    ]
    assert ingest_day(paths.landing, paths.lake, earlier).rows_accepted == 2
    assert sorted(bronze(paths).column("event_id").to_pylist()) == ["e1", "e2", "e3"]
    assert ingest_day(paths.landing, paths.lake, DAY).hints == []


def test_an_id_that_is_a_missing_value_written_as_a_word_is_rejected(paths):
    rows = [
        ("e1", "NULL", "a1", "view", ts(DAY, 9), None),  # a database client's export
        ("e2", "u1", "nan", "view", ts(DAY, 9), None),  # pandas'
        ("e3", "u1", " None", "view", ts(DAY, 9), None),  # Python's
        ("e4", "nullable", "nonesuch", "view", ts(DAY, 9), None),  # words holding one: ids
    ]
    drop(paths.landing, f"interactions/{DAY}/events.csv", events_table(rows))
    report = ingest_day(paths.landing, paths.lake, DAY)
    assert report.reason_counts == {
        "user_id:not_a_null_word": 1,
        "artwork_id:not_a_null_word": 2,
        "artwork_id:trimmed": 1,
    }
    assert bronze(paths)["event_id"].to_pylist() == ["e4"]
