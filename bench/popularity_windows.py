"""How long a window the popularity baseline should count, measured on a landing zone.

The baseline ranks artworks by engagement-weighted events over the last `popularity_window_days`
(7). On a sparse history seven days hold a couple of events an artwork and its top ten is noise;
after a change of taste a long window lags. Each judged day, every window's list is scored as the
evaluation scores popularity (NDCG@10 of the day's conversions over every artwork the zone's
events name, each user's conversions of the last 28 days left out), with no pipeline: only the
landing zone.

    python -m bench.popularity_windows DIR --start 1997-10-18 --days 30 [--windows 3 7 14 28]
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
from sands.features.engagement import WINDOW
from sands.ingest.contract import CONVERSION_EVENTS

K = 10


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
        # As the evaluation and serving: conversions within the engagement window are not
        # ranked again (older ones are forgotten).
        recent = before[before["day"] >= day - WINDOW]
        done = recent[recent["converted"]].groupby("user_id")["item"].apply(np.unique)
        for user, theirs in labels.groupby("user_id"):
            row = {"day": day, "user": user}
            for window, count in counts.items():
                # Ties by artwork id, as the baseline breaks them.
                scores = np.log1p(count) - 1e-9 * np.arange(len(items))
                scores[done.get(user, [])] = -np.inf
                row[window] = ndcg(scores, theirs["item"].unique())
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.popularity_windows")
    parser.add_argument("folder", type=Path, help="a landing zone (interactions/<day>/...)")
    parser.add_argument("--start", required=True, help="first judged day (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--windows", type=int, nargs="+", default=[3, 7, 14, 28])
    args = parser.parse_args(argv)
    days = pd.date_range(args.start, periods=args.days, freq="D", tz="UTC")
    scored = judge(read_events(args.folder), days, args.windows)
    by_day = scored.groupby("day")[args.windows].mean()
    table = Table(title=f"popularity windows, {len(by_day)} labelled days from {args.start}")
    for column in ("window (days)", "mean of days", "mean of user-days"):
        table.add_column(column, justify="right")
    for window in args.windows:
        table.add_row(str(window), f"{by_day[window].mean():.4f}", f"{scored[window].mean():.4f}")
    Console().print(table)
    print(f"{len(scored):,} user-days with a conversion judged")


if __name__ == "__main__":
    main(sys.argv[1:])
