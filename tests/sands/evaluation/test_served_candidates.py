"""What serving could have shown a logged list's user, rebuilt from a snapshot and the events
before the served day: candidates from history, segment and popularity; the popularity list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from sands.evaluation.served_candidates import ServedCandidates
from sands.models.candidates import CandidateSpec
from sands.models.segments import LOG_COLUMNS, PLAIN_COLUMNS, SegmentModel
from sands.serving.prediction_log import parse_sources, sources_key
from sands.serving.snapshot import Catalogue, SegmentCache, ServingData
from tests.builders.bronze import label_events

DAY = date(2026, 9, 2)
START = datetime(2026, 9, 2, tzinfo=UTC)
# Two segments told apart by age alone: under 40 is segment 0, over it segment 1.
INPUTS = len(LOG_COLUMNS) + len(PLAIN_COLUMNS)
BY_AGE = SegmentModel(
    categories=[],
    medians=[0.0] * INPUTS,
    means=[0.0] * (INPUTS - 1) + [40.0],
    scales=[1.0] * (INPUTS - 1) + [10.0],
    centroids=[[0.0] * (INPUTS - 1) + [-1.0], [0.0] * (INPUTS - 1) + [1.0]],
)


def snapshot_data() -> ServingData:
    ids = ["a1", "a2", "a3", "a4", "a5", "a6"]  # a7 was delisted: never a candidate
    return ServingData(
        catalogue=Catalogue(ids, {a: i for i, a in enumerate(ids)}, {}),
        neighbours={"a1": ["a2", "a7"], "a5": ["a6"]},
        popular=["a4", "a1", "a3"],
        popular_scores=[3.0, 2.0, 1.0],
        segments=SegmentCache(BY_AGE),
        segment_top={0: ["a5"], 1: ["a3"]},
        known_users=frozenset({"u1", "u2"}),
    )


def users(ages: dict[str, float]) -> pa.Table:
    columns: dict[str, object] = {"user_id": list(ages)}
    columns |= {f"user_{c}": [0.0] * len(ages) for c in (*LOG_COLUMNS, "active_days_28d")}
    columns["user_age"] = list(ages.values())
    columns["user_gender"] = [None] * len(ages)
    return pa.table(columns)


EVENTS = label_events(
    [
        ("u1", "a1", "click", START - timedelta(days=1)),
        ("u1", "a4", "purchase", START - timedelta(hours=2)),
        ("u1", "a5", "click", START + timedelta(hours=1)),  # on the served day: not yet history
        ("u2", "a5", "click", START - timedelta(days=40)),  # beyond the 28 days seeds come from
    ]
)


def replay(spec: CandidateSpec = CandidateSpec()) -> tuple[ServedCandidates, list[dict[str, int]]]:
    loaded: list[dict[str, int]] = []

    def load(versions: object) -> ServingData:
        loaded.append(dict(versions))  # type: ignore[call-overload]
        return snapshot_data()

    return ServedCandidates(load, EVENTS, spec), loaded


def test_candidates_come_from_history_segment_and_popularity_as_of_the_day():
    served, loaded = replay()
    key = sources_key({"artwork_similarity": 4, "popularity": 2})
    pools = served.pools(key, DAY, users({"u1": 25.0, "u2": 60.0}))
    # u1: neighbours of a1 (a7 is not listed), segment 0's a5, popularity without bought a4.
    assert pools["u1"] == {"a2", "a5", "a1", "a3"}
    # u2: no seeds in the window; segment 1's a3, then popularity.
    assert pools["u2"] == {"a3", "a4", "a1"}
    served.pools(key, DAY, users({"u1": 25.0}))
    assert loaded == [{"artwork_similarity": 4, "popularity": 2}]  # one load per snapshot


def test_the_total_caps_the_candidates():
    served, _ = replay(CandidateSpec(total=2))
    pools = served.pools("popularity=1", DAY, users({"u1": 25.0}))
    assert pools["u1"] == {"a2", "a5"}  # one from each source in turn: neighbours, segment


def test_the_popularity_fallback_skips_what_the_user_bought():
    served, _ = replay()
    assert served.popular("popularity=1", DAY, ["u1", "u2"], 2) == {
        "u1": ["a1", "a3"],
        "u2": ["a4", "a1"],
    }


def test_sources_read_back_as_logged():
    versions = {"users": 7, "artwork_features": 12, "popularity": 0}
    assert parse_sources(sources_key(versions)) == versions
    assert parse_sources("") == {}
