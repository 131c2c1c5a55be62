"""The popularity-window bench scores each window's list as the evaluation scores popularity."""

import math

import pandas as pd
import pytest

from bench.popularity_windows import judge, read_events


def _zone(folder, rows):
    for day, events in rows.items():
        (folder / "interactions" / day).mkdir(parents=True)
        pd.DataFrame(
            [
                {"event_id": f"{day}-{i}", "user_id": u, "artwork_id": a, "event_type": k,
                 "event_ts": f"{day}T12:00:00Z"}
                for i, (u, a, k) in enumerate(events)
            ]
        ).to_csv(folder / "interactions" / day / "events.csv", index=False)  # fmt: skip


def test_a_short_window_follows_the_newest_days_and_conversions_are_not_ranked_again(tmp_path):
    # a1 was popular ten days ago, a2 yesterday; u9 already bought a2, and converts on a3 today.
    _zone(
        tmp_path,
        {
            "2026-09-01": [("u1", "a1", "purchase"), ("u2", "a1", "purchase")],
            "2026-09-10": [("u3", "a2", "favourite"), ("u9", "a2", "purchase")],
            "2026-09-11": [("u4", "a2", "favourite"), ("u9", "a3", "favourite"),
                           ("u5", "a3", "view")],
        },
    )  # fmt: skip
    days = pd.date_range("2026-09-11", periods=1, tz="UTC")
    scored = judge(read_events(tmp_path), days, [7, 28]).set_index("user")
    second = pytest.approx(1 / math.log2(3))  # NDCG@10 of the one relevant item ranked second
    # u4 converts on a2: first in the 7-day list (a2 only), second in the 28-day one (a1's 16
    # against a2's 12, a purchase weighing 8 and a favourite 4).
    assert scored.loc["u4", 7] == 1.0
    assert scored.loc["u4", 28] == second
    # u9's a2 is left out; a3, with no events before today, ties a1 at zero in the 7-day window
    # and is second by id, and second after a1 over 28 days.
    assert scored.loc["u9", 7] == second and scored.loc["u9", 28] == second
    assert len(scored) == 2
