"""How long a window the popularity baseline should count, measured on a landing zone.

The baseline ranks artworks by engagement-weighted events over the last `popularity_window_days`
(7). On a sparse history seven days hold a couple of events an artwork and its top ten is noise;
after a change of taste a long window lags. Each judged day, every window's list is scored as the
evaluation scores popularity (NDCG@10 of the day's conversions over every artwork the zone's
events name, each user's conversions of the training set's earlier label days left out, and a
second conversion on an artwork no positive), with no pipeline: only the landing zone.

    python -m bench.popularity_windows DIR --start 1997-10-18 --days 30 [--windows 3 7 14 28]
        [--evidence-users 100]

`--evidence-users` adds the rule the popularity asset serves by (`sands.monitoring.
popularity_window`), scored the same way: 7 days unless another window won beyond chance on the
newest labelled days holding that many user-days.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from sands.features.dbt_vars import event_weights
from sands.features.training_store import days_holding
from sands.ingest.contract import CONVERSION_EVENTS
from sands.monitoring.popularity_window import WindowRule, choose_window

K = 10


def label_days(conversions_per_day: pd.Series, day: pd.Timestamp) -> int:
    """How many landing days up to `day` the training set labels (`training_examples`, with its
    defaults): the evaluation's positives are the first conversion of a pair among them."""
    from assets.training import TrainingSetConfig

    config = TrainingSetConfig()
    most = max(config.max_label_days, config.label_days)
    newest_first = [
        int(conversions_per_day.get(day - pd.Timedelta(days=i), 0)) for i in range(most)
    ]
    return days_holding(newest_first, config.label_days, config.min_positives, most)


def read_events(folder: Path) -> pd.DataFrame:
    """Every interaction of the zone's CSV and Parquet files: user, artwork, kind, UTC day."""
    files = sorted((folder / "interactions").glob("*/*"))
    parts = [pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files]
    events = pd.concat(parts, ignore_index=True)[
        ["user_id", "artwork_id", "event_type", "event_ts"]
    ]
    events["day"] = pd.to_datetime(events["event_ts"], utc=True, format="ISO8601").dt.normalize()
    return events


def ndcg(scores: np.ndarray, relevant: np.ndarray) -> float:
    """NDCG@10 of one user's ranking against their relevant item indices."""
    ranked = np.argsort(-scores, kind="stable")
    top = ranked[np.isfinite(scores[ranked])][:K]  # -inf: not ranked for this user
    gains = np.isin(top, relevant) / np.log2(np.arange(2, len(top) + 2))
    ideal = (1 / np.log2(np.arange(2, min(K, len(relevant)) + 2))).sum()
    return float(gains.sum() / ideal)


def judge(events: pd.DataFrame, days: pd.DatetimeIndex, windows: list[int]) -> pd.DataFrame:
    """One row per (day, user with a conversion): each window's NDCG@10."""
    items = {a: i for i, a in enumerate(sorted(events["artwork_id"].unique()))}
    events = events.assign(
        item=events["artwork_id"].map(items),
        weight=events["event_type"].map(event_weights()).fillna(0.0),
        converted=events["event_type"].isin(CONVERSION_EVENTS),
    )
    per_day = events[events["converted"]].groupby("day").size()
    rows = []
    for day in days:
        before, today = events[events["day"] < day], events[events["day"] == day]
        labels = today[today["converted"]]
        if labels.empty:
            continue
        counts = {}
        for window in windows:
            recent = before[before["day"] >= day - pd.Timedelta(days=window)]
            counts[window] = np.bincount(recent["item"], recent["weight"], len(items))
        # As the evaluation: conversions of the training set's other label days are not ranked
        # again (older ones are forgotten), and a second conversion among them is no positive.
        held = label_days(per_day, day)
        recent = before[before["day"] > day - pd.Timedelta(days=held)]
        done = recent[recent["converted"]].groupby("user_id")["item"].apply(np.unique)
        for user, theirs in labels.groupby("user_id"):
            # A second conversion on an artwork (a favourite bought later) is no new positive:
            # it cannot be recommended, and the training labels leave it out.
            wanted = np.setdiff1d(theirs["item"].unique(), done.get(user, []))
            if len(wanted) == 0:
                continue
            row = {"day": day, "user": user}
            for window, count in counts.items():
                # Ties by artwork id, as the baseline breaks them.
                scores = np.log1p(count) - 1e-9 * np.arange(len(items))
                scores[done.get(user, [])] = -np.inf
                row[window] = ndcg(scores, wanted)
            rows.append(row)
    return pd.DataFrame(rows)


def chosen_by_evidence(
    scored: pd.DataFrame, day: pd.Timestamp, windows: list[int], rule: WindowRule
) -> int:
    """The window the popularity asset would serve on `day` (`choose_window`): judged on the
    newest labelled days before `day` holding `rule.min_users` user-days. Stricter than the asset
    where fewer are found within `rule.max_days`: the default, where the asset judges them."""
    before = scored[scored["day"] < day]
    counts = before.groupby("day").size().sort_index(ascending=False)
    users = [int(n) for n in counts]
    taken = days_holding(users, 1, 0, rule.max_days, users, rule.min_users) if users else 0
    held = list(counts.index[:taken])
    if sum(users[:taken]) < rule.min_users or rule.default not in windows:
        return rule.default
    pool = before[before["day"].isin(held)]
    keys = [f"{d}|{u}" for d, u in zip(pool["day"], pool["user"], strict=True)]
    user_ndcg = {w: dict(zip(keys, pool[w], strict=True)) for w in windows}
    return choose_window(user_ndcg, rule)[0]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.popularity_windows")
    parser.add_argument("folder", type=Path, help="a landing zone (interactions/<day>/...)")
    parser.add_argument("--start", required=True, help="first judged day (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--windows", type=int, nargs="+", default=[3, 7, 14, 28])
    parser.add_argument(
        "--evidence-users",
        type=int,
        default=0,
        help="also score a rule that serves 7 days unless another window won beyond chance on "
        "the newest labelled days holding this many user-days (0: not scored)",
    )
    args = parser.parse_args(argv)
    if not any((args.folder / "interactions").glob("*/*")):
        parser.error(f"{args.folder} holds no interactions/<day>/ files: not a landing zone")
    days = pd.date_range(args.start, periods=args.days, freq="D", tz="UTC")
    # The rule looks back up to 28 days: those are scored too, not averaged.
    before = pd.date_range(end=days[0] - pd.Timedelta(days=1), periods=28, freq="D", tz="UTC")
    looked_at = before.append(days) if args.evidence_users else days
    everything = judge(read_events(args.folder), looked_at, args.windows)
    scored = everything[everything["day"] >= days[0]].copy()
    rows = [(str(w), w) for w in args.windows]
    if args.evidence_users:
        chosen = {
            d: chosen_by_evidence(
                everything, d, args.windows, WindowRule(min_users=args.evidence_users)
            )
            for d in scored["day"].unique()
        }
        picked = scored["day"].map(chosen)
        scored["rule"] = [scored.at[i, w] for i, w in zip(scored.index, picked, strict=True)]
        served = pd.Series(chosen).value_counts().sort_index()
        rows.append(
            (f"by evidence ({', '.join(f'{w} d on {n}' for w, n in served.items())})", "rule")
        )
    by_day = scored.groupby("day")[[column for _, column in rows]].mean()
    table = Table(title=f"popularity windows, {len(by_day)} labelled days from {args.start}")
    for column in ("window (days)", "mean of days", "mean of user-days"):
        table.add_column(column, justify="right")
    for label, column in rows:
        table.add_row(label, f"{by_day[column].mean():.4f}", f"{scored[column].mean():.4f}")
    Console().print(table)
    print(f"{len(scored):,} user-days with a conversion judged")


if __name__ == "__main__":
    main(sys.argv[1:])
