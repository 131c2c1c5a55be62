"""Point-in-time join rules on hand-checkable rows, and against a brute-force oracle."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sands.features.pit import point_in_time_join

TS = pa.timestamp("us", tz="UTC")
TTL = timedelta(days=2)


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


def features(rows: list[tuple[str, datetime, datetime, float]]) -> pa.Table:
    """(user_id, feature_ts, created_ts, x) rows."""
    users, feature_ts, created_ts, x = zip(*rows, strict=True)
    return pa.table(
        {
            "user_id": list(users),
            "feature_ts": pa.array(feature_ts, TS),
            "created_ts": pa.array(created_ts, TS),
            "x": list(x),
        }
    )


def labels(rows: list[tuple[str, datetime]]) -> pa.Table:
    users, label_ts = zip(*rows, strict=True)
    return pa.table({"user_id": list(users), "label_ts": pa.array(label_ts, TS)})


def joined_x(
    feature_rows, label_rows, ttl: timedelta = TTL, snapshots: bool = False
) -> list[float | None]:
    out = point_in_time_join(
        labels(label_rows), features(feature_rows), "user_id", ttl, snapshots=snapshots
    )
    return out.column("x").to_pylist()


def test_the_latest_feature_at_or_before_the_label_wins():
    rows = [("a", t(1), t(1), 1.0), ("a", t(2), t(2), 2.0), ("a", t(3), t(3), 3.0)]
    assert joined_x(rows, [("a", t(2, 12)), ("a", t(2)), ("a", t(3))]) == [2.0, 2.0, 3.0]


def test_a_value_that_only_exists_after_the_label_never_leaks():
    # Planted: 999 is stamped an hour after the label; the label must see yesterday's value.
    rows = [("a", t(1), t(1), 1.0), ("a", t(2, 13), t(2, 13), 999.0)]
    assert joined_x(rows, [("a", t(2, 12))]) == [1.0]


def test_a_row_created_after_the_label_is_invisible_even_if_stamped_before_it():
    # A restatement of day 1, written on day 5: labels before day 5 keep the original value.
    rows = [("a", t(1), t(1), 1.0), ("a", t(1), t(5), 999.0)]
    assert joined_x(rows, [("a", t(2)), ("a", t(5)), ("a", t(3))], ttl=timedelta(days=7)) == [
        1.0,
        999.0,
        1.0,
    ]


def test_ties_on_feature_ts_go_to_the_latest_created():
    rows = [("a", t(1), t(1), 1.0), ("a", t(1), t(1, 6), 2.0), ("a", t(1), t(1, 3), 3.0)]
    assert joined_x(rows, [("a", t(1, 12))]) == [2.0]


def test_a_late_restatement_of_an_old_day_does_not_beat_a_newer_day():
    rows = [("a", t(1), t(4), 111.0), ("a", t(3), t(3), 3.0)]
    assert joined_x(rows, [("a", t(4, 1))]) == [3.0]


def test_features_older_than_the_ttl_count_as_absent_and_the_bound_is_inclusive():
    rows = [("a", t(1), t(1), 1.0)]
    assert joined_x(rows, [("a", t(3)), ("a", t(3, 1))]) == [1.0, None]


def test_the_newest_snapshot_never_ages_while_no_day_lands_but_a_delisted_entity_does():
    # Snapshots of days 1 and 2 (b gone from day 2's), then nothing lands until day 6.
    rows = [("a", t(1), t(1), 1.0), ("b", t(1), t(1), 10.0), ("a", t(2), t(2), 2.0)]
    label_rows = [("a", t(6, 9)), ("b", t(6, 9)), ("b", t(3)), ("b", t(3, 1))]
    assert joined_x(rows, label_rows, snapshots=True) == [2.0, None, 10.0, None]
    # Read as an event log (Feast's rule), day 2's row is past the TTL on day 6.
    assert joined_x(rows, label_rows) == [None, None, 10.0, None]
    # While days land, the rule changes nothing (and is not even joined for).
    assert joined_x(rows, label_rows[2:], snapshots=True) == [10.0, None]


def test_labels_join_to_nulls_when_there_is_no_feature_row_at_all():
    # A users feed rejected whole leaves an empty feature log: every label joins to nothing.
    empty = features([("a", t(1), t(1), 1.0)]).slice(0, 0)
    label_rows = labels([("a", t(2)), ("b", t(3))])
    for snapshots in (False, True):
        out = point_in_time_join(label_rows, empty, "user_id", TTL, snapshots=snapshots)
        assert out.column("user_id").to_pylist() == ["a", "b"]
        assert out.column("x").to_pylist() == [None, None]


def test_unknown_entities_get_nulls_and_label_order_and_duplicates_are_kept():
    rows = [("a", t(1), t(1), 1.0), ("b", t(1), t(1), 5.0)]
    label_rows = [("z", t(2)), ("b", t(2)), ("a", t(2)), ("b", t(2))]
    out = point_in_time_join(labels(label_rows), features(rows), "user_id", TTL, prefix="u_")
    assert out.column("user_id").to_pylist() == ["z", "b", "a", "b"]
    assert out.column("u_x").to_pylist() == [None, 5.0, 1.0, 5.0]
    assert out.column("u_feature_ts").to_pylist() == [None, t(1), t(1), t(1)]


def test_labels_that_must_match_are_dropped_without_a_fresh_row_and_the_rest_kept_in_order():
    rows = [("a", t(1), t(1), 1.0), ("b", t(1), t(1), 5.0)]
    label_rows = [("z", t(2)), ("b", t(2)), ("a", t(5)), ("z", t(2)), ("a", t(2)), ("a", t(5))]
    table = labels(label_rows).append_column("n", pa.array(range(6)))
    # Flagged: z (unknown), a on day 5 (past the TTL); the unflagged ones stay whatever they get.
    must = pa.array([True, True, True, False, True, None])
    out = point_in_time_join(table, features(rows), "user_id", TTL, prefix="u_", must_match=must)
    assert out.column("n").to_pylist() == [1, 3, 4, 5]
    assert out.column("u_x").to_pylist() == [5.0, None, 1.0, None]
    # The same rows and values as joining everything and filtering after.
    everything = point_in_time_join(table, features(rows), "user_id", TTL, prefix="u_")
    assert out.equals(everything.take([1, 3, 4, 5]))
    nothing_dropped = pa.array([False] * 6)
    kept = point_in_time_join(table, features(rows), "user_id", TTL, must_match=nothing_dropped)
    assert kept.num_rows == 6


def brute_force(feature_rows, label_rows, ttl, snapshots=False):
    answers = []
    for user, label_ts in label_rows:
        known = [r[1] for r in feature_rows if max(r[1], r[2]) <= label_ts]
        bound = min(label_ts - ttl, max(known)) if snapshots and known else label_ts - ttl
        eligible = [
            r for r in feature_rows if r[0] == user and r[1] <= label_ts and r[2] <= label_ts
        ]
        if not eligible:
            answers.append(None)
            continue
        best = max(eligible, key=lambda r: (r[1], r[2]))
        answers.append(best[3] if best[1] >= bound else None)
    return answers


def random_case(seed: int, restated: bool) -> tuple[list[tuple], list[tuple]]:
    """Feature rows (with restatements if asked) and labels over ten days for seven users."""
    rng = random.Random(seed)
    lags = [0, 0, 0, 5, 30, 100] if restated else [0]
    feature_rows, seen = [], set()
    for i in range(300):
        user = rng.choice("abcdef")
        feature_ts = t(1) + timedelta(hours=rng.randrange(0, 240))
        created_ts = feature_ts + timedelta(hours=rng.choice(lags))
        if (user, feature_ts, created_ts) in seen:  # exact duplicates have no defined winner
            continue
        seen.add((user, feature_ts, created_ts))
        feature_rows.append((user, feature_ts, created_ts, float(i)))
    label_rows = [
        (rng.choice("abcdefg"), t(1) + timedelta(hours=rng.randrange(0, 300))) for _ in range(400)
    ]
    return feature_rows, label_rows


@pytest.mark.parametrize("snapshots", [False, True], ids=["event-log", "snapshots"])
@pytest.mark.parametrize("restated", [True, False], ids=["restated-log", "plain-log"])
@pytest.mark.parametrize("seed", range(4))
def test_matches_a_brute_force_reading_of_the_rules(seed, restated, snapshots):
    feature_rows, label_rows = random_case(seed, restated)
    expected = brute_force(feature_rows, label_rows, TTL, snapshots)
    assert joined_x(feature_rows, label_rows, snapshots=snapshots) == expected


def test_labels_from_parquet_or_a_dataset_join_as_the_table_does(tmp_path):
    """Every label column is kept, in order, beside the features, whatever the labels' source."""
    rows = [("a", t(1), t(1), 1.0), ("b", t(2), t(2), 2.0)]
    table = labels([("b", t(3)), ("a", t(2)), ("c", t(2))]).append_column(
        "weight", pa.array([0.5, 1.5, 2.5])
    )
    pq.write_table(table, tmp_path / "labels.parquet")
    expected = point_in_time_join(table, features(rows), "user_id", TTL, prefix="u_")
    assert expected.column_names == [
        *["user_id", "label_ts", "weight"],
        *["u_feature_ts", "u_created_ts", "u_x"],
    ]
    assert expected.column("u_x").to_pylist() == [2.0, 1.0, None]
    for source in (str(tmp_path / "labels.parquet"), ds.dataset(tmp_path / "labels.parquet")):
        assert point_in_time_join(source, features(rows), "user_id", TTL, prefix="u_").equals(
            expected
        )
