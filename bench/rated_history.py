"""A landing zone shaped like a public ratings history, not like our simulator: to measure the
ranker where popularity is most of the signal, as on the real histories replayed for issue 16.

MovieLens-100k's size (943 users, 1,682 items, 1997 dates, a few hundred ratings a day, some days
without any): popularity fixed and Zipf-like, each user a favourite genre weighted 4x, a rating
uniform 1-5 read as one event (5 a purchase, 4 a favourite, 3 a click, else a view), one CSV per
day. Items carry their genre as style and tag and nothing else (one medium, no colours, price 0).

`--sessions` writes what a real ratings history has and the draws above lack: each user arrives
on some day and rates most of their films in that first session, the rest on later days; nobody
rates a film twice; a rating follows the film's quality and the user's genre; and each rating is
converted as `docs/automation.md` describes (a `view`, plus a `click` at 4 and above and a
`favourite` at 5, at the rating's time).

    python -m bench.rated_history DIR [--days 60] [--seed 3] [--sessions]
    python -m bench.rated_history DIR --items 10000 --users 3000 --events-per-day 30  # sparse
    SANDS_HOME=HOME sands replay --landing DIR --days 8
    python -m bench ranker_ablation --home HOME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

GENRES = [
    "drama",
    "comedy",
    "action",
    "thriller",
    "romance",
    "adventure",
    "children",
    "crime",
    "sci-fi",
    "horror",
    "war",
    "mystery",
    "musical",
    "documentary",
    "animation",
    "western",
    "film-noir",
    "fantasy",
]
ITEMS, USERS = 1_682, 943
FIRST_DAY = "1997-09-20"


def write_history(
    folder: Path,
    days: int,
    seed: int,
    items: int = ITEMS,
    users: int = USERS,
    events_per_day: float = 200.0,
    sessions: bool = False,
) -> int:
    """Write the landing zone into `folder` (`events_per_day` on average, gamma-distributed);
    the number of events written."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, len(GENRES), items)
    popularity = rng.permutation(1 / np.arange(1, items + 1) ** 0.9)
    taste = rng.integers(0, len(GENRES), users)
    _reference(folder, genre, users, rng)
    if sessions:
        ratings = _sessions(rng, genre, popularity, taste, days, events_per_day)
        return _write_converted(folder, ratings)
    written = 0
    for day in pd.date_range(FIRST_DAY, periods=days, freq="D", tz="UTC"):
        if rng.random() < 0.1:  # days without ratings, as real histories have
            continue
        raters = rng.integers(0, users, int(rng.gamma(2, events_per_day / 2)) + 1)
        weights = popularity[None, :] * np.where(genre[None, :] == taste[raters, None], 4.0, 1.0)
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        rated = (cumulative < rng.random((len(raters), 1))).sum(axis=1).clip(max=items - 1)
        rating = rng.integers(1, 6, len(raters))
        kinds = np.array(["view", "view", "view", "click", "favourite", "purchase"])[rating]
        events = pd.DataFrame(
            {
                "event_id": [f"r{written + i}" for i in range(len(raters))],
                "user_id": [f"u{u}" for u in raters],
                "artwork_id": [f"m{i}" for i in rated],
                "event_type": kinds,
                "event_ts": day + pd.to_timedelta(rng.integers(0, 86_400, len(raters)), unit="s"),
            }
        )
        day_folder = folder / "interactions" / day.strftime("%Y-%m-%d")
        day_folder.mkdir(parents=True, exist_ok=True)
        events.to_csv(day_folder / "ratings.csv", index=False)
        written += len(events)
    return written


# Of a user's ratings, the share given on later days than their first, and the chance a later
# one comes on each next day (geometric): MovieLens users rate most films on the day they join.
LATER_SHARE, LATER_DAILY = 0.3, 0.15


def _sessions(
    rng: np.random.Generator,
    genre: np.ndarray,
    popularity: np.ndarray,
    taste: np.ndarray,
    days: int,
    events_per_day: float,
) -> pd.DataFrame:
    """(user, item, day, second, rating) per rating: users join on a random day and rate distinct
    films, most on that day; ratings beyond the last day are not written."""
    items, users = len(genre), len(taste)
    quality = rng.normal(0, 1, items)
    joined = rng.integers(0, days, users)
    # Lognormal counts (sigma 0.9) whose mean gives `events_per_day` ratings a day overall.
    mean = events_per_day * days / users
    counts = np.clip(rng.lognormal(np.log(max(mean, 1.0)) - 0.405, 0.9, users), 1, items)
    parts = []
    for user in range(users):
        weights = popularity * np.where(genre == taste[user], 4.0, 1.0)
        rated = rng.choice(items, size=int(counts[user]), replace=False, p=weights / weights.sum())
        later = rng.random(len(rated)) < LATER_SHARE
        day = joined[user] + np.where(later, rng.geometric(LATER_DAILY, len(rated)), 0)
        score = 3.5 + 0.8 * quality[rated] + 0.5 * (genre[rated] == taste[user])
        parts.append(
            pd.DataFrame(
                {
                    "user": user,
                    "item": rated,
                    "day": day,
                    "second": rng.integers(0, 86_400, len(rated)),
                    "rating": np.clip(np.round(score + rng.normal(0, 1, len(rated))), 1, 5),
                }
            )
        )
    ratings = pd.concat(parts, ignore_index=True)
    return ratings[ratings["day"] < days].sort_values(["day", "second"], ignore_index=True)


def _write_converted(folder: Path, ratings: pd.DataFrame) -> int:
    """One CSV per day of the ratings read as events (a view, a click at 4+, a favourite at 5);
    the number of events written."""
    kinds = [("view", 1), ("click", 4), ("favourite", 5)]
    events = pd.concat(
        [ratings[ratings["rating"] >= floor].assign(event_type=kind) for kind, floor in kinds]
    ).sort_index(kind="stable")
    start = pd.Timestamp(FIRST_DAY, tz="UTC")
    events["event_ts"] = start + pd.to_timedelta(events["day"] * 86_400 + events["second"], "s")
    # One id per rating (its row) and kind: unique over the whole history.
    events["event_id"] = "r" + events.index.astype(str) + "-" + events["event_type"]
    events["user_id"] = "u" + events["user"].astype(str)
    events["artwork_id"] = "m" + events["item"].astype(str)
    columns = ["event_id", "user_id", "artwork_id", "event_type", "event_ts"]
    for day, rows in events.groupby("day"):
        day_folder = (
            folder / "interactions" / (start + pd.Timedelta(days=int(day))).strftime("%Y-%m-%d")
        )
        day_folder.mkdir(parents=True, exist_ok=True)
        rows[columns].to_csv(day_folder / "ratings.csv", index=False)
    return len(events)


def _reference(folder: Path, genre: np.ndarray, users: int, rng: np.random.Generator) -> None:
    items = len(genre)
    listed = pd.Timestamp("1995-01-01", tz="UTC")
    artworks = pd.DataFrame(
        {
            "artwork_id": [f"m{i}" for i in range(items)],
            "artist_id": "studio",
            "created_ts": listed,
            "title": [f"Movie {i}" for i in range(items)],
            "description": None,
            "style": [GENRES[g] for g in genre],
            "medium": "film",
            "colours": [[] for _ in range(items)],
            "tags": [[GENRES[g]] for g in genre],
            "price": 0.0,
            "updated_ts": listed,
        }
    )
    joined = pd.Timestamp("1997-01-01", tz="UTC")
    people = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(users)],
            "signup_ts": joined,
            "age": rng.integers(13, 70, users).astype("int32"),
            "gender": rng.choice(["M", "F"], users),
            "country": "US",
            "interests": [[] for _ in range(users)],
            "updated_ts": joined,
        }
    )
    for feed, table in (("artworks", artworks), ("users", people)):
        (folder / feed).mkdir(parents=True, exist_ok=True)
        table.to_parquet(folder / feed / f"{feed}.parquet")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rated_history")
    parser.add_argument("folder", type=Path, help="the landing zone to write (new or empty)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--events-per-day", type=float, default=200.0, help="ratings a day (mean)")
    parser.add_argument(
        "--sessions", action="store_true", help="users rating distinct films in sessions"
    )
    args = parser.parse_args(argv)
    events = write_history(
        args.folder,
        args.days,
        args.seed,
        args.items,
        args.users,
        args.events_per_day,
        args.sessions,
    )
    print(f"{events:,} rating events over {args.days} days from {FIRST_DAY} in {args.folder}")


if __name__ == "__main__":
    main(sys.argv[1:])
