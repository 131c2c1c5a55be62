"""Attribution of later interactions to served lists, on a hand-made case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sands.monitoring.online_quality import (
    BETTER,
    UNDECIDED,
    WORSE,
    AttributionSpec,
    attributed_impressions,
    canary_verdict,
    quality_by_arm,
    two_proportion_z,
)
from sands.serving.prediction_log import Impression, impressions_table
from tests.conftest import events_table

T0 = datetime(2026, 9, 1, 12, tzinfo=UTC)
# The hand-made log below is written for a 24 h window (the default is 1 h, a session).
DAY = AttributionSpec(window_hours=24.0)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


IMPRESSIONS = impressions_table(
    [
        # i1: u1 clicks a2 two hours later, then buys it: clicked and converted.
        Impression("i1", "u1", ["a1", "a2"], [2.0, 1.0], 1, "champion", _at(0)),
        # i2: u2 clicks a1 after the 24 h window: a miss.
        Impression("i2", "u2", ["a1", "a3"], [2.0, 1.0], 1, "champion", _at(0)),
        # i3: u3 clicks a9, which was not shown; and a3 *before* it was served: a miss.
        Impression("i3", "u3", ["a3"], [1.0], 2, "challenger", _at(1)),
        # i4: u1 favourites a4 (a conversion, which is also a click) on the challenger.
        Impression("i4", "u1", ["a4"], [1.0], 2, "challenger", _at(1)),
        # i5: served too recently for its window to have closed: not counted yet.
        Impression("i5", "u2", ["a5"], [1.0], 1, "champion", _at(40), "popularity"),
        # i6: a segment fallback on the champion arm, clicked.
        Impression("i6", "u4", ["a6"], [1.0], None, "champion", _at(2), "segment"),
    ]
)
EVENTS = events_table(
    [
        ("e1", "u1", "a2", "click", _at(2), None),
        ("e2", "u1", "a2", "purchase", _at(3), 100.0),
        ("e3", "u2", "a1", "click", _at(25), None),
        ("e4", "u3", "a9", "click", _at(2), None),
        ("e5", "u3", "a3", "click", _at(0.5), None),
        ("e6", "u1", "a4", "favourite", _at(5), None),
        ("e7", "u4", "a6", "click", _at(3), None),
        ("e8", "u2", "a5", "click", _at(41), None),
    ]
)
AS_OF = _at(48)  # i5 (served at 40 h) closes at 64 h


def test_only_actions_on_shown_artworks_within_the_window_count() -> None:
    rows = attributed_impressions(IMPRESSIONS, EVENTS, DAY, AS_OF).to_pylist()
    flags = {r["impression_id"]: (r["clicked"], r["converted"]) for r in rows}
    assert flags == {
        "i1": (True, True),
        "i2": (False, False),
        "i3": (False, False),
        "i4": (True, True),
        "i6": (True, False),
    }
    assert rows[0]["served_date"] == date(2026, 9, 1)


def test_the_default_window_is_a_session_hour() -> None:
    rows = attributed_impressions(IMPRESSIONS, EVENTS, AttributionSpec(), AS_OF).to_pylist()
    flags = {r["impression_id"]: r["clicked"] for r in rows}
    # Two hours later is another visit: only clicks within the hour count (i6 at 1 h, i5 at 1 h,
    # whose window now closes by the newest event, at 41 h).
    assert flags == {"i1": False, "i2": False, "i3": False, "i4": False, "i5": True, "i6": True}


def test_quality_per_arm_and_version() -> None:
    attributed = attributed_impressions(IMPRESSIONS, EVENTS, DAY, AS_OF)
    rows = {(r["arm"], r["model_version"]): r for r in quality_by_arm(attributed).to_pylist()}
    assert rows[("champion", 1)]["impressions"] == 2
    assert rows[("champion", 1)]["ctr"] == pytest.approx(0.5)
    assert rows[("champion", 1)]["conversion_rate"] == pytest.approx(0.5)
    assert rows[("champion", None)]["fallback_share"] == pytest.approx(1.0)
    assert rows[("challenger", 2)]["clicks"] == 1 and rows[("challenger", 2)]["ctr"] == 0.5


def test_a_shorter_window_drops_late_actions() -> None:
    spec = AttributionSpec(window_hours=2.5)
    rows = attributed_impressions(IMPRESSIONS, EVENTS, spec, AS_OF).to_pylist()
    flags = {r["impression_id"]: r["converted"] for r in rows}
    assert flags["i1"] is False  # the purchase came 3 h after serving
    assert "i5" in flags  # its 2.5 h window has closed


def test_canary_verdicts_need_enough_traffic_and_significance() -> None:
    assert two_proportion_z(10, 100, 10, 100) == 0.0
    assert two_proportion_z(100, 1000, 50, 1000) < -3  # 10 % vs 5 %
    assert canary_verdict((100, 1000), (50, 1000), min_impressions=500) == WORSE
    assert canary_verdict((50, 1000), (100, 1000), min_impressions=500) == BETTER
    assert canary_verdict((100, 1000), (95, 1000), min_impressions=500) == UNDECIDED
    assert canary_verdict((100, 1000), (0, 100), min_impressions=500) == UNDECIDED
