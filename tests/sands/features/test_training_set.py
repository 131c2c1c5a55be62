"""Labels, negatives and the point-in-time training set, on hand-sized events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from sands.features.training_set import (
    POPULAR,
    POSITIVE,
    UNIFORM,
    VIEWED,
    LabelSpec,
    artwork_popularity,
    drawn_negatives,
    positive_labels,
    training_examples,
    training_labels,
    viewed_negatives,
)
from tests.builders.bronze import label_events

TS = pa.timestamp("us", tz="UTC")


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


EVENTS = label_events(
    [
        ("u1", "a1", "view", t(3, 9)),
        ("u1", "a1", "favourite", t(3, 10)),
        ("u1", "a1", "purchase", t(3, 11)),
        ("u1", "a2", "view", t(3, 12)),
        ("u1", "a2", "view", t(3, 8)),
        ("u2", "a2", "purchase", t(4, 1)),
        ("u2", "a3", "view", t(4, 2)),
    ]
)


def pairs(table: pa.Table) -> list[tuple]:
    return list(
        zip(
            table["user_id"].to_pylist(),
            table["artwork_id"].to_pylist(),
            table["label_ts"].to_pylist(),
            strict=True,
        )
    )


def test_one_positive_per_pair_at_its_first_positive_event():
    positives = positive_labels(EVENTS, ("favourite", "purchase"))
    assert pairs(positives) == [("u1", "a1", t(3, 10)), ("u2", "a2", t(4, 1))]
    assert set(positives["label"].to_pylist()) == {1}
    assert set(positives["sample_source"].to_pylist()) == {POSITIVE}


def test_positive_events_are_configurable():
    assert pairs(positive_labels(EVENTS, ("purchase",))) == [
        ("u1", "a1", t(3, 11)),
        ("u2", "a2", t(4, 1)),
    ]


def test_viewed_negatives_are_views_never_converted_on_at_the_first_view():
    rng = np.random.default_rng(0)
    negatives = viewed_negatives(EVENTS, ("favourite", "purchase"), 10, rng)
    # u1/a1 converted, so only u1/a2 (first view at 08:00) and u2/a3 remain.
    assert pairs(negatives) == [("u1", "a2", t(3, 8)), ("u2", "a3", t(4, 2))]
    assert viewed_negatives(EVENTS, ("favourite", "purchase"), 1, rng).num_rows == 1


def test_popular_negatives_follow_popularity_skip_engaged_pairs_and_take_the_positive_time():
    positives = positive_labels(EVENTS, ("favourite", "purchase"))
    popularity = pa.table({"artwork_id": ["a1", "hot", "cold"], "weight": [1.0, 1000.0, 0.0]})
    drawn = drawn_negatives(
        positives,
        popularity,
        50,
        np.random.default_rng(1),
        exclude=pa.table({"user_id": ["u1"], "artwork_id": ["a1"]}),
    )
    assert set(drawn["artwork_id"].to_pylist()) <= {"a1", "hot"}
    assert drawn["artwork_id"].to_pylist().count("hot") > 90
    assert ("u1", "a1") not in set(
        zip(drawn["user_id"].to_pylist(), drawn["artwork_id"].to_pylist(), strict=True)
    )
    times = dict(
        zip(positives["user_id"].to_pylist(), positives["label_ts"].to_pylist(), strict=True)
    )
    assert all(
        times[u] == ts
        for u, ts in zip(drawn["user_id"].to_pylist(), drawn["label_ts"].to_pylist(), strict=True)
    )
    assert set(drawn["sample_source"].to_pylist()) == {POPULAR}


def test_popularity_counts_views_plus_one_over_the_catalogue():
    catalogue = pa.table({"artwork_id": ["a1", "a2", "a3", "a9"]})
    weights = artwork_popularity(EVENTS, catalogue).to_pylist()
    assert weights == [
        {"artwork_id": "a1", "weight": 2},
        {"artwork_id": "a2", "weight": 3},
        {"artwork_id": "a3", "weight": 2},
        {"artwork_id": "a9", "weight": 1},
    ]


def test_training_labels_mix_sources_in_label_time_order_reproducibly():
    catalogue = pa.table({"artwork_id": ["a1", "a2", "a3"]})
    spec = LabelSpec(viewed_negatives=1, popular_negatives=1, uniform_negatives=3, seed=3)
    first = training_labels(EVENTS, catalogue, spec)
    assert first.equals(training_labels(EVENTS, catalogue, spec))
    assert first["label_ts"].to_pylist() == sorted(first["label_ts"].to_pylist())
    sources = first["sample_source"].to_pylist()
    assert set(sources) <= {POSITIVE, VIEWED, POPULAR, UNIFORM}
    assert first["label"].to_pylist().count(1) == 2
    # Uniform draws: 3 per positive minus those that hit the user's own conversion.
    assert 0 < sources.count(UNIFORM) <= 6


def test_the_same_events_and_catalogue_in_another_read_order_draw_the_same_labels():
    spec = LabelSpec(viewed_negatives=1, popular_negatives=1, uniform_negatives=3, seed=3)
    catalogue = pa.table({"artwork_id": ["a1", "a2", "a3", "a4", "a5"]})
    shuffled = catalogue.take([3, 0, 4, 2, 1])  # as a merged Delta table may read back
    assert training_labels(EVENTS, shuffled, spec).equals(training_labels(EVENTS, catalogue, spec))


def test_uniform_negatives_ignore_popularity():
    positives = positive_labels(EVENTS, ("favourite", "purchase"))
    spec = LabelSpec(viewed_negatives=0, popular_negatives=0, uniform_negatives=400, seed=0)
    catalogue = pa.table({"artwork_id": ["a1", "a2", "a3", "cold"]})
    labels = training_labels(EVENTS, catalogue, spec)
    drawn = labels.filter(pa.array([v == 0 for v in labels["label"].to_pylist()]))
    counts = {a: drawn["artwork_id"].to_pylist().count(a) for a in ("a1", "a2", "a3", "cold")}
    # 400 draws per positive over 4 artworks, about 100 each; the draws that hit the user's own
    # conversion (u1/a1, u2/a2) are dropped. The never-viewed "cold" is drawn like the rest.
    assert positives.num_rows == 2
    assert all(60 < counts[a] < 140 for a in ("a1", "a2")), counts
    assert all(160 < counts[a] < 240 for a in ("a3", "cold")), counts


def feature_log(key: str, rows: list[tuple[str, datetime, datetime, float]]) -> pa.Table:
    ids, feature_ts, created_ts, x = zip(*rows, strict=True)
    return pa.table(
        {
            key: list(ids),
            "feature_date": pa.array([(f - timedelta(days=1)).date() for f in feature_ts]),
            "feature_ts": pa.array(feature_ts, TS),
            "created_ts": pa.array(created_ts, TS),
            "x": list(x),
        }
    )


def test_training_examples_never_carry_features_from_after_the_label():
    labels = pa.table(
        {
            "user_id": ["u1", "u1"],
            "artwork_id": ["a1", "new"],
            "label_ts": pa.array([t(3, 10), t(3, 10)], TS),
            "label": pa.array([1, 0], pa.int8()),
            "sample_source": [POSITIVE, POPULAR],
        }
    )
    users = feature_log(
        "user_id",
        [
            ("u1", t(3), t(3), 1.0),
            # Planted leaks: stamped after the label, and a restatement created after it.
            ("u1", t(4), t(4), 999.0),
            ("u1", t(3), t(3, 11), 888.0),
        ],
    )
    works = feature_log("artwork_id", [("a1", t(3), t(3), 5.0), ("new", t(4), t(4), 7.0)])
    examples = training_examples(labels, users, works, timedelta(days=2))
    # The popular negative on an artwork not yet listed at label time is dropped.
    assert examples["artwork_id"].to_pylist() == ["a1"]
    assert examples["user_x"].to_pylist() == [1.0]
    assert examples["artwork_x"].to_pylist() == [5.0]
    assert examples["user_created_ts"].to_pylist() == [t(3)]
