from datetime import UTC, date, datetime

import pyarrow as pa
from deltalake import DeltaTable

from sands.lake import delta

SCHEMA = pa.schema([("id", pa.string()), ("v", pa.int64()), ("landing_date", pa.date32())])
REF = pa.schema(
    [("id", pa.string()), ("name", pa.string()), ("updated_ts", pa.timestamp("us", tz="UTC"))]
)


def at(day: int) -> datetime:
    return datetime(2026, 9, day, tzinfo=UTC)


def rows(uri: str) -> list[dict]:
    return sorted(
        DeltaTable(uri).to_pyarrow_table().to_pylist(),
        key=lambda r: (r["id"], str(r.get("landing_date"))),
    )


def test_replacing_a_partition_touches_only_that_partition_and_reruns_converge(tmp_path):
    uri = str(tmp_path / "t")
    day1 = pa.table(
        {"id": ["a", "b"], "v": [1, 2], "landing_date": [date(2026, 9, 1)] * 2}, schema=SCHEMA
    )
    day2 = pa.table({"id": ["c"], "v": [3], "landing_date": [date(2026, 9, 2)]}, schema=SCHEMA)
    delta.replace_partition(uri, day1, "landing_date", date(2026, 9, 1))
    delta.replace_partition(uri, day2, "landing_date", date(2026, 9, 2))
    before = rows(uri)
    outcome = delta.replace_partition(uri, day1, "landing_date", date(2026, 9, 1))
    assert rows(uri) == before and len(before) == 3
    assert outcome.version == DeltaTable(uri).version()
    delta.replace_partition(uri, day1.slice(0, 1), "landing_date", date(2026, 9, 1))
    assert [r["id"] for r in rows(uri)] == ["a", "c"]


def test_new_tables_keep_history_and_stay_readable_by_spark(tmp_path):
    uri = str(tmp_path / "t")
    delta.replace_partition(
        uri,
        pa.table({"id": ["a"], "v": [1], "landing_date": [date(2026, 9, 1)]}, schema=SCHEMA),
        "landing_date",
        date(2026, 9, 1),
    )
    table = DeltaTable(uri)
    assert table.metadata().configuration == delta.TABLE_PROPERTIES
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)


def test_merge_inserts_new_ids_updates_newer_versions_and_ignores_older_ones(tmp_path):
    uri = str(tmp_path / "users")
    first = pa.table(
        {"id": ["a", "b"], "name": ["Ann", "Bob"], "updated_ts": [at(1), at(1)]}, schema=REF
    )
    assert delta.upsert(uri, first, "id", "updated_ts").rows_inserted == 2
    second = pa.table(
        {
            "id": ["a", "b", "c", "c"],
            "name": ["Old Ann", "Robert", "Cy", "Cyrus"],
            "updated_ts": [datetime(2026, 8, 31, tzinfo=UTC), at(2), at(2), at(3)],
        },
        schema=REF,
    )
    outcome = delta.upsert(uri, second, "id", "updated_ts")
    assert (outcome.rows_inserted, outcome.rows_updated) == (1, 1)
    assert [(r["id"], r["name"]) for r in rows(uri)] == [
        ("a", "Ann"),
        ("b", "Robert"),
        ("c", "Cyrus"),
    ]


def test_merge_with_nothing_new_commits_nothing(tmp_path):
    uri = str(tmp_path / "users")
    data = pa.table({"id": ["a"], "name": ["Ann"], "updated_ts": [at(1)]}, schema=REF)
    delta.upsert(uri, data, "id", "updated_ts")
    version = DeltaTable(uri).version()
    again = delta.upsert(uri, data, "id", "updated_ts")
    assert not again.committed and DeltaTable(uri).version() == version


def test_a_column_the_contract_made_optional_takes_nulls_in_a_table_stored_before(tmp_path):
    uri = str(tmp_path / "users")
    required = pa.schema([f.with_nullable(f.name != "name") for f in REF])
    stored = pa.table({"id": ["a"], "name": ["Ann"], "updated_ts": [at(1)]}, schema=required)
    delta.upsert(uri, stored, "id", "updated_ts")
    delta.allow_nulls(uri, required)  # nothing relaxed: no commit
    assert DeltaTable(uri).version() == 1
    delta.allow_nulls(uri, REF)
    delta.allow_nulls(uri, REF)  # once
    assert DeltaTable(uri).version() == 2
    unnamed = pa.table({"id": ["b"], "name": [None], "updated_ts": [at(2)]}, schema=REF)
    delta.upsert(uri, unnamed, "id", "updated_ts")
    assert [(r["id"], r["name"]) for r in rows(uri)] == [("a", "Ann"), ("b", None)]
    # What was stored before stays readable as it was.
    assert DeltaTable(uri, version=1).to_pyarrow_table().column("name").to_pylist() == ["Ann"]


def test_keys_present_ignores_the_excluded_partition(tmp_path):
    uri = str(tmp_path / "t")
    for day, ids in ((1, ["a", "b"]), (2, ["c"])):
        data = pa.table(
            {"id": ids, "v": [0] * len(ids), "landing_date": [date(2026, 9, day)] * len(ids)},
            schema=SCHEMA,
        )
        delta.replace_partition(uri, data, "landing_date", date(2026, 9, day))
    found = delta.keys_present(
        uri, "id", pa.array(["a", "c", "z"]), exclude=("landing_date", date(2026, 9, 2))
    )
    assert found == {"a"}
    assert delta.keys_present(str(tmp_path / "missing"), "id", pa.array(["a"])) == set()


def test_a_partition_write_that_loses_a_commit_race_is_retried_on_the_new_snapshot(
    tmp_path, monkeypatch
):
    """As a writer on another host: it commits a schema change between our read and our commit."""
    uri = str(tmp_path / "t")
    day = date(2026, 9, 1)
    delta.replace_partition(
        uri, pa.table({"id": ["a"], "v": [1], "landing_date": [day]}), "landing_date", day
    )
    real_write, calls = delta.write_deltalake, []
    other = pa.table({"id": ["z"], "v": [9], "landing_date": [date(2026, 9, 3)], "extra": ["x"]})

    def race_then_write(table, data, **kwargs):
        if not calls:  # the other host commits first, against our already-loaded snapshot
            real_write(uri, other, mode="append", schema_mode="merge")
        calls.append(1)
        return real_write(table, data, **kwargs)

    monkeypatch.setattr(delta, "write_deltalake", race_then_write)
    ours = pa.table({"id": ["b"], "v": [2], "landing_date": [date(2026, 9, 2)]}, schema=SCHEMA)
    outcome = delta.replace_partition(uri, ours, "landing_date", date(2026, 9, 2))
    assert len(calls) == 2  # the first commit conflicted and was retried
    assert [r["id"] for r in rows(uri)] == ["a", "b", "z"]
    assert outcome.version == DeltaTable(uri).version() == 3


def test_files_where_reads_only_the_partitions_that_pass_and_every_file_otherwise(tmp_path):
    days = [date(2026, 9, d) for d in (1, 2, 3)]
    rows = pa.table({"day": days, "n": [1, 2, 3]})
    delta.write_deltalake(str(tmp_path / "log"), rows, partition_by=["day"])
    log = DeltaTable(str(tmp_path / "log"))
    recent = delta.files_where(log, "day", ">=", date(2026, 9, 2))
    assert len(recent.files) == 2 and sorted(recent.to_table()["n"].to_pylist()) == [2, 3]
    assert delta.files_where(log, "day", "in", [days[0]]).to_table()["n"].to_pylist() == [1]
    everything = delta.files_where(log, "n", ">=", 3)  # not a partition column: no pruning
    assert len(everything.files) == 3
