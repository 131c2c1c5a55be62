"""A play's summary: means that skip days without labels, CSV/JSON/HTML that never say nan."""

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

from sands.evaluation.backtest import (
    backtest,
    describe,
    describe_served,
    fmt,
    served_means,
    summarise,
    to_csv,
    to_html,
    write_report,
)


@dataclass
class Day:
    """DayRecord's shape, plus fields another change may add (they must flow through)."""

    day: str
    runs: int = 0
    failed_runs: int = 0
    triggers: list[str] = field(default_factory=list)
    drift: bool | None = None
    gate: bool | None = None
    champion: int | None = None
    serving: int | None = None
    serving_trained_until: str | None = None
    champion_ndcg: float | None = None
    served_ndcg: float | None = None
    frozen: int | None = None
    frozen_ndcg: float | None = None
    popularity_ndcg: float | None = None
    judged_users: int | None = None
    positives: int | None = None
    without_history: int | None = None
    online_ctr: float | None = None
    seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)
    served_policy: str | None = None
    labelled_users: int | None = None
    unscored: str | None = None


def _day(i: int, served=None, frozen=None, pop=None, compared=False, **more) -> Day:
    compared = compared or served is not None or frozen is not None
    return Day(
        day=f"2026-09-{i + 1:02d}",
        serving=1 if compared else None,
        frozen=1 if compared else None,
        champion=2,
        champion_ndcg=served,
        frozen_ndcg=frozen,
        popularity_ndcg=pop,
        served_policy="v1" if compared else "popularity",
        **more,
    )


DAYS = [
    _day(0, runs=3, triggers=["new training data"], gate=True, run_ids=["a", "b"]),
    _day(1, 0.2, 0.1, 0.3, labelled_users=40, judged_users=1_250, positives=1_400),
    _day(2, math.nan, math.nan, math.nan, compared=True, labelled_users=0),  # no labels
    _day(3, None, None, None, compared=True, labelled_users=0),  # no labels, stored as None
    _day(4, 0.4, 0.1, 0.1, triggers=["drift detected"], drift=True, gate=False),
]


def test_means_skip_days_without_labels_and_count_them():
    result = backtest(DAYS)
    assert (result.days, result.skipped, result.skipped_days) == (
        2,
        2,
        ("2026-09-03", "2026-09-04"),
    )
    assert [round(v, 6) for v in (result.champion, result.frozen, result.popularity)] == [
        0.3,
        0.1,
        0.2,
    ]
    line = describe(DAYS)
    assert line == (
        "mean of 2 labelled days (2 without labels skipped): served 0.3000, frozen 0.1000, "
        "popularity 0.2000"
    )
    counted = [_day(1, 0.2, 0.1, 0.3, judged_users=10), _day(2, 0.4, 0.1, 0.1, judged_users=5)]
    # Over the user-days the first day counts twice: served (2 x 0.2 + 0.4) / 3.
    assert describe(counted) == (
        "mean of 2 labelled days (15 user-days with a positive): served 0.3000, frozen 0.1000, "
        "popularity 0.2000; over the user-days: served 0.2667, frozen 0.1000, popularity 0.2333"
    )
    assert backtest(DAYS[2:4]) is None
    assert describe(DAYS[2:4]) == "no labelled day to score (2 days without labels skipped)"
    assert "nan" not in describe(DAYS[:1]) and fmt(math.nan) == "-"


def test_what_served_is_averaged_over_every_labelled_day_champion_or_not():
    # No challenger beat popularity on the first two days: popularity served, no frozen model.
    early = [
        Day(day=f"2026-09-0{i}", served_policy="popularity", served_ndcg=v, popularity_ndcg=v)
        for i, v in ((1, 0.1), (2, 0.3))
    ]
    for day in early:
        day.judged_users = 4
    days = [*early, *DAYS[1:]]
    assert describe(days).startswith("mean of 2 labelled days")  # the frozen comparison
    result = served_means(days)
    # 0.1, 0.3, then the champion's 0.2 and 0.4 against popularity's 0.1, 0.3, 0.3 and 0.1.
    assert (result.days, result.popularity_served) == (4, 2)
    assert (round(result.served, 6), round(result.popularity, 6)) == (0.25, 0.2)
    assert describe_served(days) == (
        "mean of 4 labelled days (popularity served on 2): served 0.2500, popularity 0.2000 (1.25x)"
    )
    assert describe_served(early) == (
        "mean of 2 labelled days (8 user-days with a positive; popularity served on 2): "
        "served 0.2000, popularity 0.2000 (1.00x); over the user-days: served 0.2000, "
        "popularity 0.2000 (1.00x)"
    )
    # One user on the first day, nine on the second: the user-days weigh the second day 9 to 1.
    early[0].judged_users, early[1].judged_users = 1, 9
    uneven = served_means(early)
    assert (uneven.served, round(uneven.served_per_user, 6)) == (0.2, 0.28)
    assert describe_served(early).endswith(
        "over the user-days: served 0.2800, popularity 0.2800 (1.00x)"
    )
    assert "what served, over the 10 user-days" in to_html(early, summarise(early), "t")
    # Seven of the ten had no event before their day: said, as the share no history could help.
    early[0].without_history, early[1].without_history = 1, 6
    assert describe_served(early).endswith(
        "(1.00x); 7 of those user-days (70%) had no event in the 28 days before (in the history "
        "loaded: a first visit, or a return after a month): serving has no neighbours of their "
        "history to rank for them (a champion ranks their segment's favourites and popularity), "
        "and a model knows little more of them than their profile"
    )
    early[1].without_history = None  # a record from before the count: nothing said
    assert describe_served(early).endswith("(1.00x)")
    assert describe_served(DAYS[2:4]) == "no labelled day to score"
    # Why, when the days say: most common first, so a history's cause is named in the summary.
    unscored = [
        _day(n, None, None, None, unscored=why)
        for n, why in enumerate(["no training set yet", "no listings", "no listings"])
    ]
    assert describe_served(unscored) == (
        "no labelled day to score (no listings: 2 days; no training set yet: 1 day)"
    )
    summary = summarise(days)
    assert summary["all_days"]["every_labelled_day"]["days"] == 4
    assert "what served (popularity on 2)" in to_html(days, summary, "t")


def test_days_popularity_served_without_labels_are_counted_and_shaded():
    # A sparse history: no champion ever, and two of three days without a labelled user.
    days = [
        Day(day="2026-09-01", served_policy="popularity", served_ndcg=0.1, popularity_ndcg=0.1),
        Day(day="2026-09-02", served_policy="popularity"),
        Day(day="2026-09-03", served_policy="popularity", served_ndcg=math.nan),
        Day(day="2026-09-04", served_policy="popularity", unscored="no positive landed"),
    ]
    summary = summarise(days)
    assert summary["all_days"]["days_without_labels"] == 3
    assert summary["all_days"]["compared_days_without_labels"] == 0
    page = to_html(days, summary, "t")
    assert "what served (popularity on 1)</td><td>4</td><td>1</td><td>3</td>" in page
    assert page.count("(no labels)") == 2 and page.count("no positive landed") == 1


def test_what_served_says_when_popularity_served_another_window_than_the_baseline():
    days = [
        Day(day="2026-09-01", served_policy="popularity", served_ndcg=0.3, popularity_ndcg=0.1),
        Day(day="2026-09-02", served_policy="popularity", served_ndcg=0.1, popularity_ndcg=0.1),
        Day(day="2026-09-03", served_policy="v2", served_ndcg=0.2, popularity_ndcg=0.1),
        Day(day="2026-09-04", served_policy="popularity", served_ndcg=0.2, popularity_ndcg=0.1),
    ]
    # The last day's record predates the window (None): as the baseline's.
    days[0].popularity_window, days[1].popularity_window = 28, 7
    assert describe_served(days) == (
        "mean of 4 labelled days (popularity served on 3, its 28-day list on 1 of them (the "
        "popularity column: the 7-day list)): served 0.2000, popularity 0.1000 (2.00x)"
    )


def test_the_summary_counts_days_and_means_from_the_change_on():
    summary = summarise(DAYS, shift=2, verdicts=[("a promise", True)], scenario="taste-shift")
    assert summary["scenario"] == "taste-shift" and summary["shift_date"] == "2026-09-03"
    assert summary["all_days"]["labelled_days"] == 2
    # Every played day without a labelled user (the first, before any score, too); and of those,
    # the days that had a champion and a frozen model to compare.
    unlabelled = ["2026-09-01", "2026-09-03", "2026-09-04"]
    assert summary["all_days"]["days_without_labels_list"] == unlabelled
    assert summary["all_days"]["compared_days_without_labels"] == 2
    after = summary["after_change"]
    assert (after["days"], after["labelled_days"], after["days_without_labels"]) == (3, 1, 2)
    assert round(after["served"], 6) == 0.4
    assert summary["retrain_requests"] == 2 and summary["drift_retrain_days"] == ["2026-09-05"]
    assert (summary["gate_passed"], summary["gate_rejected"]) == (1, 1)
    assert summary["verdicts"] == [{"claim": "a promise", "holds": True}]


def test_csv_and_json_carry_every_field_of_every_day(tmp_path):
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    files = write_report(tmp_path, DAYS, "replay", now=now, landing="/data/history")
    assert [p.name for p in (files.csv, files.json, files.html)] == [
        "replay-20261130T120000Z.csv",
        "replay-20261130T120000Z.json",
        "replay-20261130T120000Z.html",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (files.csv, files.json, files.html)
    )  # no temporary file left behind
    names = [f.name for f in fields(Day)]

    rows = list(csv.DictReader(io.StringIO(files.csv.read_text())))
    assert list(rows[0]) == names and len(rows) == len(DAYS)
    assert rows[0]["triggers"] == "new training data" and rows[0]["run_ids"] == "a;b"
    assert rows[1]["champion_ndcg"] == "0.2" and rows[1]["labelled_users"] == "40"
    assert rows[2]["champion_ndcg"] == "" and rows[2]["served_policy"] == "v1"

    document = json.loads(files.json.read_text())
    assert document["summary"]["landing"] == "/data/history"
    assert document["summary"]["all_days"]["days_without_labels"] == 3
    assert [list(d) for d in document["days"]] == [names] * len(DAYS)
    assert document["days"][2]["champion_ndcg"] is None  # nan, stored as null
    assert document["days"][0]["run_ids"] == ["a", "b"]
    assert "NaN" not in files.json.read_text()


def test_the_html_page_has_the_plot_and_never_says_nan():
    summary = summarise(DAYS, shift=2, verdicts=[("a promise", False)])
    page = to_html(DAYS, summary, "taste-shift")
    assert "<svg" in page and "NDCG@10 over the days" in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    assert "no labels" in page and "2026-09-03, 2026-09-04" in page
    assert "labelled_users" in page  # an unknown scalar field gets its own column
    # Each scored day says how many users (and positives) its NDCG@10 averages over.
    assert "<th>users (positives)</th>" in page and "<td>1,250 (1,400)</td>" in page
    assert "✗ a promise" in page
    # Records without the newer fields (or without any score) still render.
    bare = [_day(0), _day(1)]
    page = to_html(bare, summarise(bare), "steady")
    assert "<svg" in page and not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_csv_of_no_records_is_empty_but_valid():
    assert to_csv([]) == "\n"
