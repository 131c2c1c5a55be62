"""Recent popularity: weighted counts in the window before the cut-off, every artwork ranked."""

from datetime import date

import pyarrow as pa

from sands.evaluation.offline import popularity_scores
from sands.features.dbt_vars import event_weights
from sands.models.popularity import engagement, recent_popularity
from tests.conftest import events_table, ts

DAY = date(2026, 9, 10)


def test_event_weights_come_from_the_dbt_project():
    assert event_weights() == {"view": 1.0, "click": 2.0, "favourite": 4.0, "purchase": 8.0}


def test_recent_popularity_counts_only_the_window_and_ranks_ties_by_id():
    events = events_table(
        [
            ("e1", "u1", "a1", "view", ts(DAY, 10), None),
            ("e2", "u2", "a1", "click", ts(DAY, 11), None),
            ("e3", "u1", "a2", "purchase", ts(date(2026, 9, 1), 9), 10.0),  # before the window
            ("e4", "u3", "a3", "view", ts(DAY, 12), None),
            ("e5", "u3", "a3", "view", ts(date(2026, 9, 11), 1), None),  # after the cut-off
            ("e6", "u3", "a4", "click", ts(DAY, 13), None),
        ]
    )
    catalogue = pa.table({"artwork_id": ["a1", "a2", "a3", "a4", "a5"]})
    ranked = recent_popularity(events, catalogue, ts(date(2026, 9, 11), 0), window_days=7)
    assert ranked.to_pylist() == [
        {"artwork_id": "a1", "score": 3.0, "rank": 1},
        {"artwork_id": "a4", "score": 2.0, "rank": 2},
        {"artwork_id": "a3", "score": 1.0, "rank": 3},
        {"artwork_id": "a2", "score": 0.0, "rank": 4},
        {"artwork_id": "a5", "score": 0.0, "rank": 5},
    ]


def test_engagement_sums_weights_per_user_and_artwork():
    events = events_table(
        [
            ("e1", "u1", "a1", "view", ts(DAY, 10), None),
            ("e2", "u1", "a1", "favourite", ts(DAY, 11), None),
            ("e3", "u2", "a1", "view", ts(DAY, 12), None),
        ]
    )
    summed = engagement(events).sort_by([("user_id", "ascending")])
    assert summed.to_pylist() == [
        {"user_id": "u1", "artwork_id": "a1", "weight": 5.0},
        {"user_id": "u2", "artwork_id": "a1", "weight": 1.0},
    ]


def test_feature_popularity_weights_the_trailing_window_counts():
    rows = pa.table(
        {
            "n_view_7d": [10, 0],
            "n_click_7d": [2, 0],
            "n_favourite_7d": [1, 0],
            "n_purchase_7d": [1, None],
        }
    )
    assert popularity_scores(rows, 7).tolist() == [10 + 4 + 4 + 8, 0.0]
