"""Candidate generation on hand-checkable histories."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from sands.models.candidates import candidates, interleaved, segment_favourites, user_histories
from tests.conftest import events_table, ts

DAY = date(2026, 9, 1)
WEIGHTS = {"view": 1.0, "click": 2.0, "favourite": 4.0, "purchase": 8.0}


def test_histories_are_newest_first_and_list_conversions() -> None:
    events = events_table(
        [
            ("e1", "u1", "a1", "view", ts(DAY, 9), None),
            ("e2", "u1", "a2", "click", ts(DAY, 10), None),
            ("e3", "u1", "a3", "purchase", ts(DAY, 8), None),
            ("e4", "u1", "a1", "favourite", ts(DAY, 11), None),
            ("e5", "u2", "a2", "view", ts(DAY, 12), None),
        ]
    )
    rows = {r["user_id"]: r for r in user_histories(events, seeds=2, weights=WEIGHTS).to_pylist()}
    assert rows["u1"]["seeds"] == ["a1", "a2"]  # a1 last touched 11:00, a2 10:00; a3 cut at 2
    assert rows["u1"]["converted"] == ["a1", "a3"]
    assert rows["u2"] == {"user_id": "u2", "seeds": ["a2"], "converted": []}


def test_segment_favourites_weight_events() -> None:
    events = events_table(
        [
            ("e1", "u1", "a1", "view", ts(DAY, 9), None),
            ("e2", "u1", "a1", "view", ts(DAY, 9), None),
            ("e3", "u2", "a2", "click", ts(DAY, 9), None),
            ("e4", "u2", "a2", "view", ts(DAY, 9), None),
            ("e5", "u3", "a3", "purchase", ts(DAY, 9), None),
        ]
    )
    segments = pa.table({"user_id": ["u1", "u2", "u3"], "segment": pa.array([0, 0, 1], pa.int32())})
    rows = segment_favourites(events, segments, per_segment=5, days=7, weights=WEIGHTS).to_pylist()
    assert rows == [
        {"segment": 0, "artwork_ids": ["a2", "a1"]},  # a2: 2 + 1 = 3 beats a1: 1 + 1 = 2
        {"segment": 1, "artwork_ids": ["a3"]},
    ]


def test_interleaving_takes_turns_dedupes_and_skips_exclusions() -> None:
    picked = interleaved([["a", "b", "c"], ["b", "x"], ["p", "q", "r", "s"]], 6, exclude={"q"})
    assert picked == ["a", "b", "p", "x", "c", "r"]


def test_candidates_start_with_neighbours_of_recent_artworks() -> None:
    neighbours = {"s1": ["n11", "n12"], "s2": ["n21", "s1"]}
    picked = candidates(
        seeds=["s1", "s2"],
        converted={"s1"},
        neighbours=neighbours,
        segment_top=["g1", "n11"],
        popular=["p1", "p2", "p3"],
        total=7,
    )
    # similarity order: n11, n21, n12, s1 (converted, skipped)
    assert picked == ["n11", "g1", "p1", "n21", "p2", "n12", "p3"]
