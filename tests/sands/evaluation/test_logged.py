"""The prediction log read as lists x positions: item-level clicks in the attribution window,
logged propensities (old logs read as certain), and a target policy's positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from sands.evaluation.logged import item_clicks, logged_lists, target_positions
from sands.evaluation.off_policy import pbm
from sands.monitoring.online_quality import AttributionSpec
from sands.serving.prediction_log import Impression, impressions_table
from tests.builders.bronze import label_events

NOON = datetime(2026, 9, 2, 12, tzinfo=UTC)
THETA = np.array([1.0, 0.5])


LOG = impressions_table(
    [
        Impression(
            "i1",
            "u1",
            ["a1", "a2"],
            [2.0, 1.0],
            3,
            "champion",
            NOON,
            "ranked",
            [0.9, 0.05],
            [False, True],
            "epsilon",
        ),
        Impression("i2", "u2", ["a1", "a3"], [2.0, 1.0], 3, "champion", NOON, "ranked"),
        # Served too late for its window to have closed: not counted yet.
        Impression("i3", "u1", ["a1", "a2"], [2.0, 1.0], 3, "champion", NOON + timedelta(hours=5)),
    ]
)
EVENTS = label_events(
    [
        ("u1", "a2", "click", NOON + timedelta(minutes=10)),  # the explored artwork, in the window
        ("u1", "a1", "view", NOON + timedelta(minutes=5)),  # a view is not a click
        ("u2", "a3", "favourite", NOON + timedelta(hours=2)),  # after the 1 h window
        ("u2", "a1", "click", NOON - timedelta(minutes=1)),  # before the list was served
    ]
)
AS_OF = NOON + timedelta(hours=3)


def test_shown_artworks_are_clicked_only_by_a_click_in_their_window():
    rows = item_clicks(LOG, EVENTS, AttributionSpec(), AS_OF).to_pylist()
    assert [(r["impression_id"], r["artwork_id"], r["clicked"]) for r in rows] == [
        ("i1", "a1", False),
        ("i1", "a2", True),
        ("i2", "a1", False),
        ("i2", "a3", False),
    ]
    assert [r["propensity"] for r in rows] == [0.9, 0.05, 1.0, 1.0]


def test_the_log_as_arrays_and_a_target_s_positions_feed_the_estimators():
    day = logged_lists(item_clicks(LOG, EVENTS, AttributionSpec(), AS_OF), 2, THETA)
    assert (day.impressions, day.users) == (["i1", "i2"], ["u1", "u2"])
    assert day.lists.clicks.tolist() == [[0, 1], [0, 0]]
    # a2 was explored: its exposure is its propensity times every slot's examination.
    assert day.lists.exposure.ravel().tolist() == pytest.approx([0.9, 0.05 * 1.5, 1.0, 0.5])
    # The target shows u1 a2 on top (and a9), and has no list for u2.
    position = target_positions(day, {"u1": ["a2", "a9"]})
    assert position.tolist() == [[0, 1], [0, 0]]
    # One click, worth examination 1 at the top over an exposure of 0.075, over 2 lists.
    assert pbm(day.lists, position, THETA).value == pytest.approx(1 / 0.075 / 2)


def test_a_log_from_before_propensities_reads_as_certain():
    old_item = pa.struct(
        [("artwork_id", pa.string()), ("position", pa.int32()), ("score", pa.float32())]
    )
    items = pa.array([[{"artwork_id": "a1", "position": 1, "score": 1.0}]], pa.list_(old_item))
    old = LOG.slice(1, 1).drop_columns(["items", "policy"]).append_column("items", items)
    rows = item_clicks(old, EVENTS, AttributionSpec(), AS_OF).to_pylist()
    assert [(r["artwork_id"], r["propensity"], r["explored"]) for r in rows] == [("a1", 1.0, False)]
