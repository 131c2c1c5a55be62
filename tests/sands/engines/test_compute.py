"""The embedded engine reads only the labels' entities from the feature logs, and joins as if it
had read everyone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from deltalake import write_deltalake

from sands.engines.compute import Embedded
from sands.features.training_set import POPULAR, POSITIVE
from sands.features.training_set import training_examples as join_training_examples
from sands.features.training_store import feature_rows_since

TS = pa.timestamp("us", tz="UTC")
TTL = timedelta(days=1)


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


def snapshots(key: str, days: dict[int, list[str]]) -> pa.Table:
    """Complete daily snapshots: every entity existing on a feature day has its row, stamped the
    midnight after."""
    rows = [(e, day) for day, entities in days.items() for e in entities]
    return pa.table(
        {
            key: [e for e, _ in rows],
            "feature_date": pa.array([t(day).date() for _, day in rows]),
            "feature_ts": pa.array([t(day + 1) for _, day in rows], TS),
            "created_ts": pa.array([t(day + 1) for _, day in rows], TS),
            "x": [float(day * 10 + i) for i, (_, day) in enumerate(rows)],
        }
    )


def test_the_labels_entities_alone_give_the_join_of_every_row(tmp_path):
    # u9 and a9 are in no label; u9 alone existed on day 1; landings paused after day 4, so a
    # label on day 6 finds only a snapshot older than the TTL; u3 signed up on day 6.
    users = snapshots(
        "user_id",
        {1: ["u9"], 2: ["u1", "u2", "u9"], 3: ["u1", "u2", "u9"], 4: ["u1", "u2", "u9"],
         7: ["u1", "u2", "u3", "u9"]},
    )  # fmt: skip
    works = snapshots("artwork_id", {d: ["a1", "a2", "a9"] for d in (1, 2, 3, 4, 7)})
    uris = [str(tmp_path / "users"), str(tmp_path / "works")]
    for uri, log in zip(uris, (users, works), strict=True):
        write_deltalake(uri, log, partition_by=["feature_date"])
    labels = pa.table(
        {
            "user_id": ["u1", "u2", "u2", "u3", "u3"],
            "artwork_id": ["a1", "a2", "a1", "a2", "a1"],
            "label_ts": pa.array([t(3, 10), t(6, 12), t(6, 12), t(8, 9), t(7, 3)], TS),
            "label": pa.array([1, 1, 0, 1, 0], pa.int8()),
            "sample_source": [POSITIVE, POSITIVE, POPULAR, POSITIVE, POPULAR],
        }
    )
    since = t(3, 10) - TTL

    examples, versions = Embedded().training_examples(labels, uris, since, TTL, {})

    read, _ = feature_rows_since(uris[0], since, None, ("user_id", labels["user_id"]))
    assert set(read["user_id"].to_pylist()) == {"u1", "u2", "u3", None}  # None: the instants
    everyone = [feature_rows_since(uri, since)[0] for uri in uris]
    assert examples.equals(join_training_examples(labels, *everyone, TTL))
    assert versions == (0, 0)
    # As-of rows: day 2's for u1; day 4's for u2 in the pause, past the TTL but still the newest
    # snapshot (one with the labels' entities only must not lose it); u3 from day 7's on.
    assert examples["user_feature_ts"].to_pylist() == [t(3), t(5), t(5), t(8), None]


def test_an_entity_missing_from_the_newest_snapshots_ages_out_as_with_every_row(tmp_path):
    # a1 was delisted after day 2 while a9, in no label, stayed listed: no pause in landings,
    # so a1's day-2 row is older than the TTL on day 6 and joins nothing.
    users = snapshots("user_id", {d: ["u1", "u9"] for d in range(1, 7)})
    works = snapshots("artwork_id", {d: ["a1", "a9"] if d < 3 else ["a9"] for d in range(1, 7)})
    uris = [str(tmp_path / "users"), str(tmp_path / "works")]
    for uri, log in zip(uris, (users, works), strict=True):
        write_deltalake(uri, log, partition_by=["feature_date"])
    labels = pa.table(
        {
            "user_id": ["u1"],
            "artwork_id": ["a1"],
            "label_ts": pa.array([t(6, 12)], TS),
            "label": pa.array([1], pa.int8()),
            "sample_source": [POSITIVE],
        }
    )
    since = t(6, 12) - timedelta(days=6)

    examples, _ = Embedded().training_examples(labels, uris, since, TTL, {})

    everyone = [feature_rows_since(uri, since)[0] for uri in uris]
    assert examples.equals(join_training_examples(labels, *everyone, TTL))
    assert examples["artwork_feature_ts"].to_pylist() == [None]
    assert examples["user_feature_ts"].to_pylist() == [t(6)]  # day 5's, the newest by then
