import codecs
import gzip
import hashlib
import json
import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sands.ingest import landing
from sands.ingest.contract import INTERACTIONS, USERS
from tests.conftest import DAY, drop, events_table, ts

ONE = [("e1", "u1", "a1", "view", ts(DAY, 9), None)]


def test_listing_skips_in_flight_files_and_names_everything_else_it_does_not_read(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(ONE))
    for name in (
        f"interactions/{DAY}/.part.tmp",  # in flight: ignored without a word
        f"interactions/{DAY}/_started",
        f"interactions/{DAY}/notes.txt",
        f"interactions/{DAY}/spark.parquet/part-00000.csv",  # a dataset folder: its parts are read
        f"interactions/{DAY}/spark.parquet/_SUCCESS",
        f"interactions/{DAY}/spark.parquet/part-00001.crc",
        f"interactions/{DAY}/spark.parquet/deeper/more.csv",
        f"interactions/{DAY}/_temporary/0/part-00002.csv",  # in flight: ignored
        "interactions/not-a-day/events.parquet",
        "interactions/20260902/events.csv",  # Python's date.fromisoformat reads these two
        "interactions/2026-W36-3/events.csv",
        "interactions/0001-01-01/events.csv",  # Dagster's partition key would be "1-01-01"
        "interactions/loose.csv",
        "users/export/users.csv",
        "users/export/old/users.csv",
        "users/readme.md",
    ):
        Path(paths.landing, name).parent.mkdir(parents=True, exist_ok=True)
        Path(paths.landing, name).write_text("x")
    os.symlink(
        Path(paths.landing, "interactions", str(DAY)),
        Path(paths.landing, "interactions", "2026-09-03"),
    )
    fs, root = landing.filesystem(paths.landing)
    files = landing.list_files(fs, root, INTERACTIONS)
    names = [(str(Path(f.path).relative_to(paths.landing, "interactions")), f.day) for f in files]
    assert names == [(f"{DAY}/events.parquet", DAY), (f"{DAY}/spark.parquet/part-00000.csv", DAY)]
    assert [f.path for f in landing.list_files(fs, root, INTERACTIONS, DAY)] == [
        f.path for f in files
    ]
    users = landing.list_files(fs, root, USERS)
    assert [str(Path(f.path).relative_to(paths.landing)) for f in users] == [
        "users/export/users.csv"
    ]
    skipped = [
        (str(Path(path).relative_to(paths.landing)), why)
        for path, why in landing.skipped_entries(fs, root, [INTERACTIONS, USERS])
    ]
    expected = [
        (f"interactions/{DAY}/notes.txt", "not .parquet, .csv, .jsonl or .json"),
        (f"interactions/{DAY}/spark.parquet/deeper", "a folder inside a dataset folder"),
        (f"interactions/{DAY}/spark.parquet/part-00001.crc", "not .parquet, .csv, .jsonl or .json"),
        ("interactions/0001-01-01", "not a YYYY-MM-DD day folder from 1678-01-01"),
        ("interactions/20260902", "not a YYYY-MM-DD day folder"),
        ("interactions/2026-09-03", "a link to a folder: day folders are read, not followed"),
        ("interactions/2026-W36-3", "not a YYYY-MM-DD day folder"),
        ("interactions/loose.csv", "a daily feed's files go in a YYYY-MM-DD folder"),
        ("interactions/not-a-day", "not a YYYY-MM-DD day folder"),
        ("users/export/old", "a folder inside a dataset folder"),
        ("users/readme.md", "not .parquet, .csv, .jsonl or .json"),
    ]
    expected.sort()
    assert [path for path, _ in skipped] == [path for path, _ in expected]
    assert all(want in why for (_, why), (_, want) in zip(skipped, expected, strict=True))


def test_upper_case_gzipped_and_linked_files_are_read(paths):
    table = events_table(ONE)
    drop(paths.landing, f"interactions/{DAY}/a.csv", table)
    folder = Path(paths.landing, "interactions", str(DAY))
    (folder / "a.csv").rename(folder / "UPPER.CSV")
    drop(paths.landing, f"interactions/{DAY}/b.jsonl", table)
    (folder / "b.jsonl.gz").write_bytes(gzip.compress((folder / "b.jsonl").read_bytes()))
    (folder / "b.jsonl").unlink()
    drop(paths.landing, "elsewhere/c.parquet", table)
    (folder / "c.parquet").symlink_to(Path(paths.landing, "elsewhere/c.parquet"))
    (folder / "gone.csv").symlink_to(Path(paths.landing, "elsewhere/missing.csv"))
    (folder / "broken.csv.gz").write_bytes(b"not gzip")
    fs, root = landing.filesystem(paths.landing)
    files = landing.list_files(fs, root, INTERACTIONS, DAY)
    names = [Path(f.path).name for f in files]
    assert names == ["UPPER.CSV", "b.jsonl.gz", "broken.csv.gz", "c.parquet"]
    reads = landing.read_files(fs, files)
    assert [len(r.frame) for r in reads] == [1, 1, 0, 1]
    assert reads[2].rejection is not None and reads[2].rejection.reason == landing.UNREADABLE
    skipped = landing.skipped_entries(fs, root, [INTERACTIONS])
    assert [(Path(p).name, why) for p, why in skipped] == [
        ("gone.csv", "a link to nothing, or not a regular file")
    ]
    # Rewriting a link's target in place changes the link's fingerprint (the sensor's cursor).
    target = Path(paths.landing, "elsewhere/c.parquet")
    before = files[-1].fingerprint
    stat = target.stat()
    target.write_bytes(target.read_bytes())  # the same size: only the time tells
    os.utime(target, (stat.st_atime, stat.st_mtime + 60))
    assert landing.list_files(fs, root, INTERACTIONS, DAY)[-1].fingerprint != before


def test_each_format_reads_into_raw_rows_with_their_source(paths):
    table = events_table(ONE)
    for fmt in ("parquet", "csv", "jsonl"):
        drop(paths.landing, f"interactions/{DAY}/events.{fmt}", table)
    fs, root = landing.filesystem(paths.landing)
    parts = [
        r.frame for r in landing.read_files(fs, landing.list_files(fs, root, INTERACTIONS, DAY))
    ]
    assert [len(p) for p in parts] == [1, 1, 1]
    assert {p["event_id"].iloc[0] for p in parts} == {"e1"}
    assert {p["_source_file"].iloc[0].rsplit(".", 1)[-1] for p in parts} == {
        "csv",
        "jsonl",
        "parquet",
    }
    assert all(list(p.columns[:3]) == ["event_id", "user_id", "artwork_id"] for p in parts)


def test_an_indexed_frame_a_marked_json_file_and_nul_bytes_lose_nothing(paths):
    folder = Path(paths.landing, "interactions", str(DAY))
    folder.mkdir(parents=True)
    frame = events_table(ONE).to_pandas()
    frame.set_index("event_id").to_parquet(folder / "indexed.parquet")
    record = json.dumps({"event_id": "e2", "user_id": "u1"})
    (folder / "marked.jsonl").write_bytes(codecs.BOM_UTF8 + record.encode() + b"\n")
    (folder / "nul.csv").write_bytes(b"event_id,session_id\ne3,sess\x00HIDDEN\n")
    fs, root = landing.filesystem(paths.landing)
    indexed, marked, nul = landing.read_files(fs, landing.list_files(fs, root, INTERACTIONS, DAY))
    assert indexed.frame["event_id"].tolist() == ["e1"]
    assert marked.frame["event_id"].tolist() == ["e2"] and marked.damaged == []
    # Cut at the NUL, "sess" would have passed for the value: the whole file is kept instead.
    assert nul.rejection is not None and "NUL byte at offset" in nul.rejection.message
    assert nul.rejection.payload.endswith(b"HIDDEN\n")


def test_changed_groups_report_new_and_modified_files_with_all_their_siblings():
    a = landing.LandingFile("i/2026-09-01/a.parquet", "interactions", date(2026, 9, 1), "1:1")
    b = landing.LandingFile("i/2026-09-01/b.csv", "interactions", date(2026, 9, 1), "1:1")
    c = landing.LandingFile("i/2026-09-02/a.parquet", "interactions", date(2026, 9, 2), "1:1")
    u = landing.LandingFile("users/x.csv", "users", None, "5:1")
    seen = {a.path: "1:1", c.path: "1:1", u.path: "4:0"}
    groups = landing.changed_groups([a, b, c, u], seen)
    assert groups == {("interactions", date(2026, 9, 1)): [a, b], ("users", None): [u]}
    assert landing.changed_groups([a, b, c, u], {f.path: f.fingerprint for f in (a, b, c, u)}) == {}


RECORD = '{"event_id": "j1", "user_id": "u1", "artwork_id": "a1", "event_type": "view"}'


def read(paths, name: str, payload: bytes) -> landing.FileRead:
    path = Path(paths.landing, "interactions", str(DAY), name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    fs, _ = landing.filesystem(paths.landing)
    return landing.read_file(fs, str(path))


def test_an_unreadable_file_comes_back_as_a_rejection_with_its_checksum_not_an_error(paths):
    payload = b"PAR1" + b"garbage" * 3
    got = read(paths, "broken.parquet", payload)
    assert (got.rows, got.damaged) == (0, [])
    rejection = got.rejection
    assert rejection is not None and rejection.reason == "file:unreadable"
    assert (rejection.size, rejection.payload) == (25, payload)
    assert rejection.sha256 == hashlib.sha256(payload).hexdigest()
    assert rejection.message.startswith("ArrowInvalid: ") and "\n" not in rejection.message
    csv = read(paths, "latin.csv", b"event_id\n\xe9t\xe9\n").rejection
    assert csv is not None and csv.message.startswith("UnicodeDecodeError: ")


def test_damaged_json_lines_are_set_aside_one_by_one_and_the_rest_keep_their_row_numbers(paths):
    lines = [RECORD, '{"event_id": "j2", "user_', "[1, 2, 3]", "", RECORD.replace("j1", "j3"), "7"]
    got = read(paths, "feed.jsonl", "\n".join(lines).encode())
    assert got.rejection is None
    assert [(d.row, d.reason, d.text) for d in got.damaged] == [
        (1, "row:invalid_json", lines[1]),
        (2, "row:not_an_object", "[1, 2, 3]"),
        (4, "row:not_an_object", "7"),
    ]
    assert got.frame["event_id"].tolist() == ["j1", "j3"]
    assert got.frame["_source_row"].tolist() == [0, 3]  # the blank line is not a row
    assert got.rows == 5


def test_a_json_lines_file_holding_one_array_of_records_is_read_as_those_records(paths):
    # `to_json(orient="records")` named .jsonl: one value spanning the file, not lines.
    text = "[\n  " + RECORD + ",\n  " + RECORD.replace("j1", "j2") + "\n]\n"
    got = read(paths, "feed.jsonl", text.encode())
    assert got.frame["event_id"].tolist() == ["j1", "j2"]
    assert (got.frame["_source_row"].tolist(), got.damaged) == ([0, 1], [])
    # An array of anything else is one line that is not a record.
    got = read(paths, "values.jsonl", b'["e0", "u1", "a1"]')
    assert [(d.row, d.reason) for d in got.damaged] == [(0, "row:not_an_object")]


def test_a_json_object_naming_a_field_twice_is_damaged_in_lines_and_in_an_array(paths):
    twice = '{"event_id": "j2", "user_id": "u1", "user_id": "u2"}'  # JSON keeps the last
    nested = '{"event_id": "j4", "user_id": {"id": 1, "id": 2}}'
    typed = RECORD.replace('"j1"', "5")  # an id whose type changes: Arrow's reader stops there
    for name, lines in (("clean.jsonl", [RECORD, twice]), ("mixed.jsonl", [RECORD, typed, twice])):
        got = read(paths, name, "\n".join([*lines, nested]).encode())
        assert [(d.row, d.reason, d.text) for d in got.damaged] == [
            (len(lines) - 1, "row:duplicate_key", twice),
            (len(lines), "row:duplicate_key", nested),
        ]
        assert got.rows == len(lines) + 1
    got = read(paths, "array.jsonl", f"[{RECORD},\n{twice}]".encode())
    assert [(d.row, d.reason) for d in got.damaged] == [(1, "row:duplicate_key")]
    assert got.frame["event_id"].tolist() == ["j1"] and got.frame["_source_row"].tolist() == [0]


def test_spaces_around_a_csv_column_name_are_no_part_of_it_and_a_values_are_kept(paths):
    text = "event_id, user_id ,artwork_id\ne1,u1, a1\n"
    got = read(paths, "spaced.csv", text.encode())
    assert got.rejection is None
    assert got.frame.drop(columns=["_source_file", "_source_row"]).to_dict("records") == [
        {"event_id": "e1", "user_id": "u1", "artwork_id": " a1"}  # rejected later: `trimmed`
    ]


def test_a_utf16_csv_is_named_as_such(paths):
    text = "event_id,user_id\ne1,u1\n"
    for name, payload in (
        ("bom.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
        ("plain.csv", text.encode("utf-16-be")),
    ):
        got = read(paths, name, payload)
        assert "UTF-16 text, not UTF-8" in got.rejection.message
    assert "offset 3" in read(paths, "nul.csv", b"a,b\x00\n1,2\n").rejection.message


def test_integer_ids_past_2_to_the_53_with_a_null_among_them_are_read_exactly(paths):
    # pandas reads such a column as floats, which would round 2^53 + 1 to 2^53.
    big = 2**53 + 1
    lines = [f'{{"event_id": {big}, "user_id": "u1"}}', '{"event_id": null, "user_id": "u2"}']
    got = read(paths, "ids.jsonl", "\n".join(lines).encode())
    assert got.frame["event_id"].tolist()[0] == big
    table = pa.table({"event_id": pa.array([big, None], pa.int64())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    got = read(paths, "ids.parquet", sink.getvalue().to_pybytes())
    assert got.frame["event_id"].tolist() == [big, None]


def test_a_json_line_escaping_half_a_surrogate_pair_is_damaged_and_a_whole_pair_is_text(paths):
    cut = RECORD.replace('"j1"', '"j1\\udfa8"')  # the low half alone: no table can store it
    high = RECORD.replace('"j1"', '"j3\\ud83c"')  # the high half alone: pandas would drop it
    emoji = RECORD.replace('"j1"', '"j2\\ud83d\\ude00"')
    got = read(paths, "feed.jsonl", "\n".join([cut, emoji, high]).encode())
    assert [(d.row, d.reason, d.text) for d in got.damaged] == [
        (0, "row:invalid_unicode", cut),
        (2, "row:invalid_unicode", high),
    ]
    assert got.frame["event_id"].tolist() == ["j2\U0001f600"]


def test_parquet_text_that_is_not_utf8_comes_back_as_its_bytes(paths):
    # A writer that skipped the check: Arrow reads the bytes without looking at them.
    ids = pa.array([b"e1", b"e\xff"], pa.binary()).view(pa.string())
    tags = pa.array([["ok"], ["fine"]], pa.list_(pa.string()))
    bad_tags = pa.ListArray.from_arrays([0, 1, 2], pa.array([b"ok", b"\xfe"]).view(pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"event_id": ids, "tags": tags, "more": bad_tags}), sink)
    got = read(paths, "feed.parquet", sink.getvalue().to_pybytes())
    assert got.frame["event_id"].tolist() == ["e1", b"e\xff"]
    assert [list(v) for v in got.frame["tags"]] == [["ok"], ["fine"]]
    assert got.frame["more"].tolist() == [["ok"], [b"\xfe"]]


def test_a_file_with_columns_named_like_the_source_stamps_keeps_its_values(paths):
    got = read(paths, "feed.csv", b"event_id,_source_file,_source_row\ne1,upstream.csv,7\n")
    assert got.frame["_source_file"].tolist() == [got.path]
    assert got.frame["_source_row"].tolist() == [0]
    assert got.frame["_source_file (in the file)"].tolist() == ["upstream.csv"]
    assert got.frame["_source_row (in the file)"].tolist() == ["7"]


def test_an_empty_file_of_any_format_is_zero_rows_and_not_a_rejection(paths):
    for name, payload in [("a.csv", b""), ("b.jsonl", b"\n \n"), ("c.parquet", b"")]:
        got = read(paths, name, payload)
        assert (got.rows, got.rejection, got.damaged) == (0, None, [])


def test_the_files_digest_is_the_same_wherever_the_landing_zone_lives_and_changes_with_a_file():
    def files(root: str, stamp: str = "10:1") -> list[landing.LandingFile]:
        return [
            landing.LandingFile(f"{root}/interactions/{DAY}/b.parquet", "interactions", DAY, stamp),
            landing.LandingFile(f"{root}/interactions/{DAY}/a.csv", "interactions", DAY, "5:1"),
        ]

    here = landing.files_digest(files("/home/me/.sands/landing"))
    assert landing.files_digest(files("/mnt/moved/landing")) == here
    assert landing.files_digest(files("bucket/landing")) == here
    assert landing.files_digest(files("/home/me/.sands/landing", "11:2")) != here
    assert landing.files_digest(files("/home/me/.sands/landing")[:1]) != here


def test_a_folder_that_cannot_be_listed_is_named_not_skipped(paths, monkeypatch):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(ONE))
    denied = Path(paths.landing, "interactions", "2026-09-03")
    drop(paths.landing, f"interactions/{denied.name}/events.parquet", events_table(ONE))
    Path(paths.landing, "users").write_text("a file where the feed's folder should be")
    scandir = os.scandir

    def refusing(path):  # a folder without read permission (root reads any, so pretend)
        if os.fspath(path) == str(denied):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    fs, root = landing.filesystem(paths.landing)
    unlisted = {
        str(Path(path).relative_to(paths.landing)): why
        for path, why in landing.unlisted_folders(fs, root, [INTERACTIONS, USERS])
    }
    assert sorted(unlisted) == ["interactions/2026-09-03", "users"]
    assert unlisted["interactions/2026-09-03"].startswith("cannot be listed (PermissionError")
    assert "NotADirectoryError" in unlisted["users"]
    assert landing.unlisted_notes(paths.landing)[0] == (
        "interactions/2026-09-03: cannot be listed (PermissionError: [Errno 13] Permission "
        f"denied: '{denied}'); its files are not ingested"
    )


def test_csv_rows_longer_than_the_header_make_the_file_unreadable_not_shifted(paths):
    # Every row one field longer: pandas would read the first column as an index, and every
    # value would land one column to the left of its name.
    header = b"event_id,user_id,artwork_id\n"
    for name, rows in [("all.csv", b"e1,u1,a1,x\ne2,u2,a2,y\n"), ("first.csv", b"e1,u1,a1,x\n")]:
        rejection = read(paths, name, header + rows).rejection
        assert rejection is not None and rejection.reason == "file:unreadable"
        assert "a row holds more fields than the header names" in rejection.message
    later = read(paths, "later.csv", header + b"e1,u1,a1\ne2,u2,a2,x\n").rejection
    assert later is not None and "Expected 3 fields in line 3, saw 4" in later.message


def test_a_file_name_that_is_not_utf8_is_named_on_one_line_and_not_read(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(ONE))
    folder = os.fsencode(Path(paths.landing, "interactions", str(DAY)))
    Path(os.fsdecode(folder + b"/caf\xe9.csv")).write_text("event_id\ne9\n")  # Latin-1 bytes
    fs, root = landing.filesystem(paths.landing)
    files = landing.list_files(fs, root, INTERACTIONS)
    assert [Path(f.path).name for f in files] == ["events.parquet"]
    assert landing.skipped_notes(paths.landing) == [
        f"interactions/{DAY}/caf\\xe9.csv: a name that is not UTF-8 text: rename it to be read;"
        " not ingested"
    ]
    assert landing.printable("a\nb\x7f/c\udce9") == "a\\nb\\x7f/c\\xe9"


def test_a_gzip_file_inflating_past_the_bound_is_unreadable_and_kept(paths, monkeypatch):
    monkeypatch.setattr(landing, "_ALWAYS_INFLATES", 1000)
    header = b"event_id,user_id\n"
    bomb = gzip.compress(header + b"\n" * 100_000)  # ~100 bytes inflating a thousandfold
    got = read(paths, "bomb.csv.gz", bomb)
    assert got.rejection is not None and got.rejection.payload == bomb
    assert "decompression bomb" in got.rejection.message
    # Two members, as `cat a.gz b.gz` makes, within the bound: both read.
    two = gzip.compress(header + b"e1,u1\n") + gzip.compress(b"e2,u2\n")
    assert read(paths, "two.csv.gz", two).frame["event_id"].tolist() == ["e1", "e2"]


def test_a_csv_separated_by_semicolons_or_tabs_is_unreadable_saying_so(paths):
    for name, separator in (("excel.csv", b";"), ("tabs.csv", b"\t")):
        got = read(paths, name, separator.join([b"event_id", b"user_id"]) + b"\ne1" + separator)
        assert got.rejection is not None and "not commas" in got.rejection.message
    assert read(paths, "one.csv", b"user_id\nu1\n").frame["user_id"].tolist() == ["u1"]


def test_csv_rows_shorter_than_the_header_are_damaged_and_the_rest_keep_their_numbers(paths):
    header = "event_id,user_id,artwork_id,event_type,event_ts,session_id,price\n"
    whole = "e1,u1,a1,view,2026-09-02T09:00:00Z,s1,\n"
    quoted = 'e2,u1,a1,view,2026-09-02T09:01:00Z,"s\n2",\n'
    # An upload cut off mid-line: its last event would land with a cut time and no session.
    cut = "e3,u1,a1,view,2026-09-02T09:02:00.18"
    got = read(paths, "events.csv", (header + whole + "   \n" + quoted + cut).encode())
    assert [(d.row, d.reason, d.text) for d in got.damaged] == [(2, "row:missing_fields", cut)]
    assert got.frame["event_id"].tolist() == ["e1", "e2"]
    assert got.frame["session_id"].tolist() == ["s1", "s\n2"]
    assert got.frame["_source_row"].tolist() == [0, 1] and got.rows == 3


def test_a_file_of_no_row_whose_header_is_no_column_of_the_feed_is_unreadable_not_empty(paths):
    page = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>'
    path = Path(paths.landing, "interactions", str(DAY), "events.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page)
    fs, _ = landing.filesystem(paths.landing)
    columns = ("event_id", "user_id")
    rejection = landing.read_file(fs, str(path), columns=columns).rejection
    assert rejection is not None and rejection.reason == "file:unreadable"
    assert "names none of the feed's columns" in rejection.message
    # A header of the feed's own columns and no row is an empty drop, as before.
    path.write_bytes(b"event_id,user_id\n")
    assert landing.read_file(fs, str(path), columns=columns).rejection is None


def test_a_json_file_is_read_as_json_lines_or_as_one_array_of_records(paths):
    array = "[" + RECORD + ", " + RECORD.replace("j1", "j2") + "]"
    lines = RECORD.replace("j1", "j3") + "\n" + RECORD.replace("j1", "j4") + "\n"
    assert read(paths, "export.json", array.encode()).frame["event_id"].tolist() == ["j1", "j2"]
    assert read(paths, "lines.JSON", lines.encode()).frame["event_id"].tolist() == ["j3", "j4"]
    fs, root = landing.filesystem(paths.landing)
    listed = [Path(f.path).name for f in landing.list_files(fs, root, INTERACTIONS, DAY)]
    assert listed == ["export.json", "lines.JSON"]
