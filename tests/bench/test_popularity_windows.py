"""The popularity-window bench scores each window's list as the evaluation scores popularity."""

import math

import pandas as pd
import pytest

from bench.popularity_windows import chosen_by_evidence, judge, read_events
from sands.monitoring.popularity_window import WindowRule


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


def _scored(days: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """User-days with the 7- and 28-day windows' NDCG@10, as `judge` returns them."""
    return pd.DataFrame(
        [
            {"day": pd.Timestamp(day, tz="UTC"), "user": f"u{i}", 7: short, 28: long}
            for day, pairs in days.items()
            for i, (short, long) in enumerate(pairs)
        ]
    )


def test_the_rule_leaves_7_days_only_for_a_window_that_won_beyond_chance_on_enough_users():
    today = pd.Timestamp("2026-09-11", tz="UTC")
    # 28 days better for every one of 4 user-days on each of the two days before: chosen.
    steady = _scored({"2026-09-09": [(0.1, 0.3)] * 4, "2026-09-10": [(0.2, 0.3)] * 4})
    assert chosen_by_evidence(steady, today, [7, 28], WindowRule(min_users=8)) == 28
    # Too few user-days before today to judge: the default.
    assert chosen_by_evidence(steady, today, [7, 28], WindowRule(min_users=9)) == 7
    # Better on average, but by one user-day of eight: within chance.
    lucky = _scored({"2026-09-10": [(0.1, 0.9), *[(0.2, 0.19)] * 7]})
    assert chosen_by_evidence(lucky, today, [7, 28], WindowRule(min_users=8)) == 7
    # The newest days are enough: an older day where 7 won is not looked at.
    older = _scored({"2026-09-01": [(0.9, 0.0)] * 20, "2026-09-10": [(0.1, 0.3), (0.2, 0.3)]})
    assert chosen_by_evidence(older, today, [7, 28], WindowRule(min_users=2)) == 28


def test_a_folder_that_is_no_landing_zone_is_one_line(tmp_path, capsys):
    from bench.popularity_windows import main

    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), "--start", "2026-09-11", "--days", "1"])
    assert stopped.value.code == 2
    assert "holds no interactions/<day>/ files" in capsys.readouterr().err
