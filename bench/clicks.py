"""Simulated response to served lists: per-list CTR and conversion of a good, a popularity and a
random recommender, measured the way `online_performance` measures the service.

Each recommender is attached to the same marketplace (same seed, same organic browsing) for a few
days; every list it serves becomes an impression, and `sands.monitoring.online_quality`
attributes the simulated interactions to them (1 h window, as `sands demo`, and the default
24 h). That join also credits a list with organic clicks on its artworks in the window; "on the
list" counts only actions in the sessions that opened on the served lists (the click model itself).

    python -m bench.clicks [--days 4] [--events-per-day 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from sands.monitoring.online_quality import AttributionSpec, attributed_impressions, quality_by_arm
from sands.serving.prediction_log import Impression, impressions_table
from sands.sim.marketplace import (
    EVENTS_PER_VIEW,
    MEAN_VIEWS_PER_SESSION,
    Marketplace,
    SimulationConfig,
)

K = 10


def good(market: Marketplace) -> Callable[[int, int], list[int]]:
    """The user's best-matching artworks today: their favourite style's, most popular first."""

    def top(user: int, day_index: int) -> list[int]:
        taste = market._taste_today(day_index)[user]
        match = taste[market.artworks.style] + 1e-6 * market.artworks.popularity / (
            1 + market.artworks.popularity
        )
        return list(np.argsort(-match, kind="stable")[:K])

    return top


def popularity(market: Marketplace) -> Callable[[int, int], list[int]]:
    """The same ten artworks for everyone: the most popular of the catalogue."""
    return lambda user, day_index: list(np.argsort(-market.artworks.popularity)[:K])


def uniform(market: Marketplace) -> Callable[[int, int], list[int]]:
    """Ten artworks drawn at random for each list (its own generator)."""
    rng = np.random.default_rng(0)
    return lambda user, day_index: list(rng.choice(market.artworks.size, K, replace=False))


POLICIES = {"good": good, "popularity": popularity, "random": uniform}


def measure(config: SimulationConfig, policy: str) -> dict[str, float]:
    """Play `config` with `policy` serving: per-list CTR and conversion as `online_performance`
    reports them (1 h and 24 h windows), and on the lists themselves (their sessions only)."""
    market = Marketplace(config)
    pick = POLICIES[policy](market)
    served: list[Impression] = []

    def recommender(user_id: str, at: datetime) -> list[str]:
        day_index = (at.date() - config.start).days
        items = [f"a{a:07d}" for a in pick(int(user_id[1:]), day_index)]
        served.append(
            Impression(f"i{len(served):07d}", user_id, items, [0.0] * K, 1, "champion", at)
        )
        return items

    market.recommender = recommender
    drops = list(market.days())
    events = pa.concat_tables([t for d in drops for t in (d.late_interactions, d.interactions)])
    impressions = impressions_table(served)
    as_of = pc.max(events["event_ts"]).as_py()
    views = max(int(config.events_per_day / EVENTS_PER_VIEW), 1)
    organic = max(int(views / MEAN_VIEWS_PER_SESSION), 1)  # served sessions are numbered after
    number = pc.cast(pc.utf8_slice_codeunits(events["session_id"], 10), pa.int64())
    on_lists = events.filter(pc.greater_equal(number, organic))
    out: dict[str, float] = {"lists": len(served)}
    for name, rows, hours in (
        ("list", on_lists, 1.0),
        ("1h", events, 1.0),
        ("24h", events, 24.0),
    ):
        spec = AttributionSpec(window_hours=hours)
        row = quality_by_arm(attributed_impressions(impressions, rows, spec, as_of)).to_pylist()
        out[f"ctr_{name}"] = row[0]["ctr"]
        out[f"conversion_{name}"] = row[0]["conversion_rate"]
    clicks = pc.sum(pc.equal(on_lists["event_type"], "click")).as_py()
    out["per_item"] = clicks / (len(served) * K)
    return out


def run(days: int, events_per_day: int, seed: int) -> Table:
    config = SimulationConfig(seed=seed, days=days, events_per_day=events_per_day)
    table = Table(title=f"Served lists, {days} days of {events_per_day:,} events/day, seed {seed}")
    columns = {
        "lists": "lists",
        "ctr_list": "CTR on the list",
        "conversion_list": "conversion on the list",
        "per_item": "clicks per shown item",
        "ctr_1h": "reported CTR, 1 h",
        "conversion_1h": "reported conversion, 1 h",
        "ctr_24h": "reported CTR, 24 h",
        "conversion_24h": "reported conversion, 24 h",
    }
    table.add_column("recommender")
    for title in columns.values():
        table.add_column(title, justify="right")
    for policy in POLICIES:
        r = measure(config, policy)
        table.add_row(
            policy,
            *(f"{r[c]:,}" if c == "lists" else f"{r[c]:.2%}" for c in columns),
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv or [])
    Console().print(run(args.days, args.events_per_day, args.seed))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
