from datetime import UTC, date, datetime

import pandas as pd
import pytest

from sands.ingest.contract import ARTWORKS, INTERACTIONS, USERS
from sands.ingest.validation import SOURCE_FILE, SOURCE_ROW, _iso_to_utc, validate

DAY = date(2026, 9, 2)


def raw(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame[SOURCE_FILE] = "drop.jsonl"
    frame[SOURCE_ROW] = range(len(frame))
    return frame


def event(event_id: str = "e1", **overrides: object) -> dict:
    row = {
        "event_id": event_id,
        "user_id": "u1",
        "artwork_id": "a1",
        "event_type": "view",
        "event_ts": "2026-09-02T10:00:00Z",
        "session_id": "s1",
        "price": None,
    }
    return {**row, **overrides}


def reasons_by_key(outcome) -> dict[str, list[str]]:
    return dict(
        zip(outcome.rejected["record_key"], outcome.rejected["reasons"].map(list), strict=True)
    )


def test_good_rows_are_accepted_typed_and_stamped_with_their_landing_day():
    outcome = validate(
        raw([event("e1"), event("e2", event_type="purchase", price=12.5)]), INTERACTIONS, DAY
    )
    assert outcome.rows_read == 2 and len(outcome.rejected) == 0
    accepted = outcome.accepted.set_index("event_id")
    assert accepted.loc["e2", "price"] == 12.5
    assert accepted.loc["e1", "event_ts"] == pd.Timestamp("2026-09-02T10:00:00Z")
    assert set(accepted["landing_date"]) == {DAY}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (event("bad-type", event_ts="yesterday"), "event_ts:invalid_type"),
        (event("bad-kind", event_type="hover"), "event_type:isin"),
        (event("no-user", user_id=None), "user_id:not_nullable"),
        (event("blank-art", artwork_id="  "), "artwork_id:non_blank"),
        # Invisible to `str.strip`: a zero-width space, a byte-order mark, a no-break space.
        (event("zero-width-user", user_id="\u200b"), "user_id:non_blank"),
        (event("bom-art", artwork_id=" \ufeff\u2060 "), "artwork_id:non_blank"),
        (event("nbsp-user", user_id="\xa0\u3000"), "user_id:non_blank"),
        (event("future", event_ts="2026-09-03T00:00:00Z"), "event_ts:after_landing_day"),
        (event("neg", event_type="purchase", price=-3.0), "price:non_negative"),
        (event("mils", event_type="purchase", price=1.005), "price:whole_cents"),
        (event("price-text", price="free"), "price:invalid_type"),
        (event("price-true", event_type="purchase", price=True), "price:invalid_type"),
        # Past decimal(12, 2): one such price used to fail the whole day's write.
        (event("huge", event_type="purchase", price=12345678901.0), "price:invalid_type"),
        # pandas reads these as the clock's time: a rerun would store another value.
        (event("clock", event_ts="now"), "event_ts:invalid_type"),
        (event("clock-2", event_ts="today"), "event_ts:invalid_type"),
        # The epoch itself is a zero or an unset field, not a time anyone acted at.
        (event("epoch", event_ts="1970-01-01T00:00:00Z"), "event_ts:after_1970"),
        (event("pre-epoch", event_ts="1969-12-31T23:59:59Z"), "event_ts:after_1970"),
    ],
)
def test_each_kind_of_bad_row_is_quarantined_with_its_reason(row: dict, reason: str):
    outcome = validate(raw([event("ok"), row]), INTERACTIONS, DAY)
    assert list(outcome.accepted["event_id"]) == ["ok"]
    assert reasons_by_key(outcome) == {row["event_id"]: [reason]}
    assert outcome.reason_counts == {reason: 1}


def test_events_a_time_zone_past_their_day_folder_are_told_as_local_day_folders():
    # An evening in New York (UTC-5) written with its offset, in the folder of its local day.
    evening = [event(f"ny{h}", event_ts=f"2026-09-02T{h}:30:00-05:00") for h in (20, 23)]
    outcome = validate(raw([event("ok"), *evening]), INTERACTIONS, DAY)
    assert outcome.reason_counts == {"event_ts:after_landing_day": 2}
    (hint,) = outcome.hints
    assert hint.startswith("event_ts:after_landing_day rows lie up to 4.5 h past their folder")
    assert "name the folders by the UTC day" in hint


def test_events_days_past_their_day_folder_are_not_blamed_on_time_zones():
    outcome = validate(raw([event("late", event_ts="2026-09-05T12:00:00Z")]), INTERACTIONS, DAY)
    (hint,) = outcome.hints
    assert hint == "event_ts:after_landing_day rows lie up to 2.5 days past their folder's day"
    assert validate(raw([event("ok")]), INTERACTIONS, DAY).hints == []
    # 13 hours past is further than any zone west of UTC reaches.
    far = validate(raw([event("far", event_ts="2026-09-03T13:00:00Z")]), INTERACTIONS, DAY)
    assert far.hints == ["event_ts:after_landing_day rows lie up to 13.0 h past their folder's day"]


def test_a_morning_of_local_time_east_of_utc_before_the_day_folder_is_told():
    # Tokyo (UTC+9) folders: a local morning lies in the UTC evening before the folder's day.
    morning = [event(f"jp{m}", event_ts=f"2026-09-02T01:{m:02}:00+09:00") for m in range(10)]
    day = [event(f"d{h}", event_ts=f"2026-09-02T1{h}:00:00Z") for h in range(10)]
    outcome = validate(raw([*morning, *day]), INTERACTIONS, DAY)
    assert not outcome.reason_counts and len(outcome.accepted) == 20  # late events: kept
    (hint,) = outcome.hints
    assert hint.startswith("10 of the day's 20 accepted events (50%) are dated up to 8.0 h before")
    assert "east of UTC" in hint
    # A few late arrivals are late data, not a time zone.
    late = [event("late", event_ts="2026-09-01T23:00:00Z"), *day]
    assert validate(raw(late), INTERACTIONS, DAY).hints == []


def test_one_stray_event_does_not_hide_an_evening_of_local_time():
    rows = [event(f"ny{m}", event_ts=f"2026-09-02T23:{m}:00-04:00") for m in (10, 20, 30)]
    outcome = validate(
        raw([*rows, event("stray", event_ts="2026-09-09T00:00:00Z")]), INTERACTIONS, DAY
    )
    (hint,) = outcome.hints
    assert hint.startswith(
        "event_ts:after_landing_day rows lie up to 3.5 h past their folder's day "
        "(1 further, up to 6.0 days)"
    )


def test_a_price_column_of_booleans_is_rejected_not_read_as_ones_and_zeros():
    rows = raw([event("yes", event_type="purchase", price=True), event("no", price=False)])
    assert rows["price"].dtype == bool
    outcome = validate(rows, INTERACTIONS, DAY)
    assert outcome.accepted.empty
    assert outcome.reason_counts == {"price:invalid_type": 2}


def test_a_row_with_several_faults_lists_every_reason_once():
    outcome = validate(
        raw([event("x", event_type="hover", event_ts="later", user_id=None)]), INTERACTIONS, DAY
    )
    assert reasons_by_key(outcome)["x"] == [
        "event_ts:invalid_type",
        "event_type:isin",
        "user_id:not_nullable",
    ]


def test_duplicates_keep_the_first_valid_copy_even_if_an_earlier_copy_was_broken():
    rows = [event("d1", event_type="hover"), event("d1"), event("d1", user_id="u2"), event("e9")]
    outcome = validate(raw(rows), INTERACTIONS, DAY)
    accepted = outcome.accepted.set_index("event_id")
    assert list(accepted.index) == ["d1", "e9"]
    assert accepted.loc["d1", "user_id"] == "u1"
    assert sorted(outcome.rejected["reasons"].map(list).map(tuple)) == [
        ("event_id:duplicate",),
        ("event_type:isin",),
    ]
    assert outcome.balanced


def test_files_of_one_shape_are_cast_together_and_the_first_file_still_wins_a_duplicate():
    # Two files with a float price (the same dtypes), one with the price as text between them.
    typed = [raw([event("e1", price=2.0)]), raw([event("e2", user_id="u-third", price=2.0)])]
    price_as_text = raw([event("e2", user_id="u-second", price="1.50")])
    outcome = validate([typed[0], price_as_text, typed[1]], INTERACTIONS, DAY)
    accepted = outcome.accepted.set_index("event_id")
    assert list(accepted.index) == ["e1", "e2"]
    assert accepted.loc["e2", "user_id"] == "u-second"  # the second file's, not the third's
    assert list(outcome.rejected["reasons"].map(list)) == [["event_id:duplicate"]]
    assert outcome.rejected["source_row"].tolist() == [0] and outcome.balanced


def test_late_events_are_accepted_with_their_own_timestamp():
    outcome = validate(raw([event("late", event_ts="2026-08-30T23:59:00Z")]), INTERACTIONS, DAY)
    assert outcome.accepted.loc[0, "event_ts"] == pd.Timestamp("2026-08-30T23:59:00Z")


def test_events_already_ingested_on_another_day_are_rejected():
    outcome = validate(raw([event("seen"), event("new")]), INTERACTIONS, DAY, known_keys={"seen"})
    assert list(outcome.accepted["event_id"]) == ["new"]
    assert reasons_by_key(outcome) == {"seen": ["event_id:already_ingested"]}


def test_missing_required_column_rejects_every_row_of_the_file_and_optional_ones_are_filled():
    rows = [
        {k: v for k, v in event(f"e{i}").items() if k not in ("event_type", "price")}
        for i in range(3)
    ]
    outcome = validate(raw(rows), INTERACTIONS, DAY)
    assert len(outcome.accepted) == 0
    assert outcome.reason_counts == {"event_type:missing_column": 3}
    assert (
        validate(
            raw([{k: v for k, v in event().items() if k != "price"}]), INTERACTIONS, DAY
        ).accepted.shape[0]
        == 1
    )


def test_quarantined_rows_keep_their_original_values_and_unexpected_columns_are_reported():
    outcome = validate(raw([event("x", event_ts="yesterday", colour="red")]), INTERACTIONS, DAY)
    quarantined = outcome.rejected.iloc[0]
    assert '"event_ts": "yesterday"' in quarantined["record"]
    assert '"colour": "red"' in quarantined["record"]
    assert quarantined["source_file"] == "drop.jsonl" and quarantined["source_row"] == 0
    assert outcome.unexpected_columns == ["colour"]


def test_ids_written_as_integer_floats_are_the_integers_as_json_numbers_are():
    # pandas writes a column of integer ids holding a null as 1.0, 2.0 ... to CSV.
    rows = [
        event("10.0", user_id="1.0", artwork_id="-3.00"),
        event("11", user_id=2.0, artwork_id="1.5"),
        event("12", user_id="v1.0", artwork_id="1.0e3"),
        event("13", user_id="\u0664\u0662.0"),  # Arabic-Indic digits: not what a float writes
    ]
    accepted = validate(raw(rows), INTERACTIONS, DAY).accepted
    assert accepted[["event_id", "user_id", "artwork_id"]].values.tolist() == [
        ["10", "1", "-3"],
        ["11", "2", "1.5"],
        ["12", "v1.0", "1.0e3"],
        ["13", "\u0664\u0662.0", "a1"],
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("['surrealism', 'pop-art']", ["surrealism", "pop-art"]),  # pandas' to_csv of a list
        ('["surrealism", "pop-art"]', ["surrealism", "pop-art"]),  # JSON in a cell
        (" [] ", []),
        ("a| |b|", ["a", "b"]),  # a tag of spaces is no tag
        ("a | b", ["a", "b"]),
        (["a", "", " b "], ["a", "b"]),
        ("[draft]", ["[draft]"]),  # a tag in brackets is a tag
        ("[Limited]|abstract", ["[Limited]", "abstract"]),
    ],
)
def test_a_list_written_into_a_cell_reads_as_its_items_without_blank_ones(cell, expected):
    user = {"user_id": "u1", "signup_ts": "2026-01-01", "updated_ts": "2026-01-01"}
    outcome = validate(raw([{**user, "interests": cell}]), USERS)
    assert outcome.accepted["interests"].tolist() == [expected] and not outcome.reason_counts


@pytest.mark.parametrize("cell", ["['a', ['b']]", '["a", 1]', "['a', 'b' 'c' +]"])
def test_a_bracketed_cell_that_is_no_list_of_text_is_rejected_not_kept_as_one_tag(cell):
    user = {"user_id": "u1", "signup_ts": "2026-01-01", "updated_ts": "2026-01-01"}
    outcome = validate(raw([{**user, "interests": cell}]), USERS)
    assert outcome.reason_counts == {"interests:invalid_type": 1}


def test_csv_style_strings_are_read_as_the_contract_types():
    user = {
        "user_id": "u1",
        "signup_ts": "2026-01-01T00:00:00",
        "age": "41",
        "gender": None,
        "country": "DE",
        "interests": "abstract|pop-art",
        "updated_ts": "2026-09-01T08:00:00+02:00",
    }
    outcome = validate(raw([user, {**user, "user_id": "u2", "age": "forty"}]), USERS)
    row = outcome.accepted.iloc[0]
    assert row["age"] == 41 and row["interests"] == ["abstract", "pop-art"]
    assert row["updated_ts"] == pd.Timestamp("2026-09-01T06:00:00Z")
    assert reasons_by_key(outcome) == {"u2": ["age:invalid_type"]}


def test_profiles_of_a_history_that_knows_only_ids_and_dates_are_accepted():
    # A converted public history rarely knows country, age or interests: before, an empty
    # country rejected every user, and the loop ran without user features.
    bare = {"user_id": "u1", "signup_ts": "2019-01-01T00:00:00Z", "updated_ts": "2019-01-01"}
    outcome = validate(raw([bare, {**bare, "user_id": "u2", "country": None}]), USERS)
    assert outcome.reason_counts == {}
    rows = outcome.accepted.set_index("user_id")
    assert rows["interests"].tolist() == [[], []]
    assert rows[["age", "gender", "country"]].isna().all().all()
    # A null list is an empty one, as an empty CSV cell is; a value missing from a JSON line too.
    listed = raw([{**bare, "interests": None}, {**bare, "user_id": "u2", "interests": ["x"]}])
    listed.loc[0, "interests"] = float("nan")
    outcome = validate(listed, USERS)
    assert outcome.accepted["interests"].tolist() == [[], ["x"]] and not outcome.reason_counts
    # What is given is still checked.
    outcome = validate(raw([{**bare, "country": "Brazil", "age": 7}]), USERS)
    assert reasons_by_key(outcome) == {"u1": ["age:in_range", "country:str_matches"]}
    item = {
        "artwork_id": "a1",
        "artist_id": "r1",
        "created_ts": "2019-01-01T00:00:00Z",
        "title": "T",
        "style": "drama",
        "medium": "film",
        "price": 0,
        "updated_ts": "2019-01-01T00:00:00Z",
    }
    accepted = validate(raw([item]), ARTWORKS).accepted.iloc[0]
    assert (accepted["colours"], accepted["tags"]) == ([], [])
    assert pd.isna(accepted["description"])


def test_reference_feeds_accept_several_versions_of_an_id_but_not_the_same_version_twice():
    art = {
        "artwork_id": "a1",
        "artist_id": "r1",
        "created_ts": "2026-01-01T00:00:00Z",
        "title": "T",
        "description": None,
        "style": "abstract",
        "medium": "oil",
        "colours": ["red"],
        "tags": [],
        "price": 100.0,
        "updated_ts": "2026-09-01T00:00:00Z",
    }
    rows = [
        art,
        {**art, "price": 90.0, "updated_ts": "2026-09-02T00:00:00Z"},
        {**art, "price": 80.0},
    ]
    outcome = validate(raw(rows), ARTWORKS)
    assert sorted(outcome.accepted["price"]) == [90.0, 100.0]
    assert outcome.reason_counts == {"artwork_id+updated_ts:duplicate": 1}
    # A full snapshot sent again (every file of a feed is read as one drop): its identical rows
    # are the same facts, counted and kept once, not rejected; a conflicting copy still is.
    again = [*rows, art, {**art, "colours": ["red"]}, {**art, "colours": ["blue"]}]
    outcome = validate([raw(rows), raw(again[3:])], ARTWORKS)
    assert sorted(outcome.accepted["price"]) == [90.0, 100.0]
    assert outcome.reason_counts == {"artwork_id+updated_ts:duplicate": 2}
    assert (outcome.rows_repeated, outcome.rows_read, outcome.balanced) == (2, 6, True)


def test_timestamps_past_what_nanoseconds_hold_are_quarantined_not_fatal():
    # Parquet's microsecond timestamps reach years 1 and 9999, and pandas keeps them as such.
    rows = raw([event("ok"), event("year-1")])
    rows["event_ts"] = pd.Series(
        pd.array([datetime(2026, 9, 2, 10, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]),
        dtype="datetime64[us, UTC]",
    )
    outcome = validate(rows, INTERACTIONS, DAY)
    assert list(outcome.accepted["event_id"]) == ["ok"]
    assert reasons_by_key(outcome) == {"year-1": ["event_ts:invalid_type"]}


@pytest.mark.parametrize("age", [float("inf"), float("-inf"), 1e20, "1e20"])
def test_an_integer_past_int64_is_one_quarantined_row(age: object):
    person = {
        "user_id": "u1",
        "signup_ts": "2026-01-01T00:00:00Z",
        "age": 30,
        "gender": None,
        "country": "DE",
        "interests": [],
        "updated_ts": "2026-09-01T00:00:00Z",
    }
    outcome = validate(raw([person, {**person, "user_id": "u2", "age": age}]), USERS)
    assert list(outcome.accepted["user_id"]) == ["u1"]
    assert reasons_by_key(outcome) == {"u2": ["age:invalid_type"]}


def test_a_timestamp_without_an_offset_is_utc_even_after_one_with_an_offset():
    # pandas, parsing both kinds together, gave the naive row the offset of the row before it.
    rows = raw(
        [
            event("india", event_ts="2026-09-02T10:00:00+05:30"),
            event("chicago", event_ts="2026-09-02T08:30:00-05:00"),
            event("naive", event_ts="2026-09-02 12:00:00"),
        ]
    )
    accepted = validate(rows, INTERACTIONS, DAY).accepted.set_index("event_id")["event_ts"]
    assert accepted["india"] == pd.Timestamp("2026-09-02 04:30", tz="UTC")
    assert accepted["chicago"] == pd.Timestamp("2026-09-02 13:30", tz="UTC")
    assert accepted["naive"] == pd.Timestamp("2026-09-02 12:00", tz="UTC")


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        # Every present value in `Z` (the usual file), with gaps and padding: one parse.
        ([" 2026-09-02T10:00:00Z", None, "2026-09-02T11:00:00z "], ["10:00", None, "11:00"]),
        # Offsets of every kind and none, side by side.
        (
            ["2026-09-02T10:00:00Z", "2026-09-02T10:00:00+0100", "2026-09-02T10:00"],
            ["10:00", "09:00", "10:00"],
        ),
        (["2026-09-02T10:00:00", None, "not a time"], ["10:00", None, None]),
    ],
)
def test_iso_strings_with_and_without_offsets_read_as_utc(stamps, expected):
    parsed = _iso_to_utc(pd.Series(stamps, dtype=object))
    read = [None if pd.isna(t) else t.strftime("%H:%M") for t in parsed]
    assert read == expected and str(parsed.dtype) == "datetime64[ns, UTC]"


def test_a_date_without_a_time_is_its_midnight_utc_in_parquet_as_in_csv():
    as_date = validate(raw([event("d", event_ts=date(2026, 9, 2))]), INTERACTIONS, DAY)
    as_text = validate(raw([event("t", event_ts="2026-09-02")]), INTERACTIONS, DAY)
    midnight = pd.Timestamp("2026-09-02T00:00:00Z")
    assert (
        as_date.accepted["event_ts"].tolist() == as_text.accepted["event_ts"].tolist() == [midnight]
    )


def test_an_id_typed_with_a_combining_accent_is_the_same_id_as_its_composed_form():
    rows = [event("e1", user_id="jose\u0301"), event("e2", user_id="jos\u00e9")]
    accepted = validate(raw(rows), INTERACTIONS, DAY).accepted
    assert accepted["user_id"].tolist() == ["jos\u00e9", "jos\u00e9"]
