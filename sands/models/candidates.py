"""Candidate generation: which ~200 artworks the ranker orders for one user.

Three sources, interleaved best-first so none crowds the others out: neighbours (by artwork
similarity) of what the user engaged with recently, what the user's segment engages with, and
recent popularity. The per-user and per-segment lists are computed offline (`serving_candidates`)
and looked up at request time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest

import pyarrow as pa

from sands.engines import duck
from sands.features.dbt_vars import event_weights
from sands.ingest.contract import positive_events
from sands.models.popularity import weights_sql

USER_HISTORY = "user_history"  # the online-store entity holding each user's seeds and conversions


@dataclass(frozen=True)
class CandidateSpec:
    """How many candidates, seeds and per-segment artworks; the windows they come from."""

    total: int = 200
    seeds: int = 10  # recently engaged artworks whose neighbours become candidates
    recent_days: int = 28
    per_segment: int = 200
    segment_days: int = 7


def user_histories(
    events: pa.Table,
    seeds: int,
    weights: dict[str, float] | None = None,
    positives: tuple[str, ...] | None = None,
) -> pa.Table:
    """Per user: up to `seeds` engaged artworks, most recent first, and every one converted on
    (a `positives` event: default the home's, `positive_events`)."""
    con = duck.connect()
    con.register("events", events)
    conversions = ", ".join(f"'{e}'" for e in positives or positive_events())
    return con.sql(
        f"""with engaged as (
                select user_id, artwork_id, max(event_ts) as last_ts,
                       bool_or(event_type in ({conversions})) as converted
                from events where {weights_sql(weights or event_weights())} > 0 group by all)
            select user_id,
                   list(artwork_id order by last_ts desc, artwork_id)[1:{seeds}] as seeds,
                   coalesce(list(artwork_id order by artwork_id) filter (where converted), [])
                     as converted
            from engaged group by user_id order by user_id"""
    ).to_arrow_table()


def segment_favourites(
    events: pa.Table,
    segments: pa.Table,
    per_segment: int,
    days: int,
    weights: dict[str, float] | None = None,
) -> pa.Table:
    """Per segment: its `per_segment` most engaged-with artworks (weighted) over the last `days`
    days of events, best first."""
    con = duck.connect()
    con.register("events", events)
    con.register("segments", segments.select(["user_id", "segment"]))
    return con.sql(
        f"""with scored as (
                select s.segment, e.artwork_id, sum({weights_sql(weights or event_weights())})
                  as score
                from events as e join segments as s using (user_id)
                where e.event_ts > (select max(event_ts) from events) - to_days({days})
                group by all
                having score > 0)
            select segment, list(artwork_id order by score desc, artwork_id)[1:{per_segment}]
                     as artwork_ids
            from scored group by segment order by segment"""
    ).to_arrow_table()


def interleaved(
    sources: Iterable[Sequence[str]], total: int, exclude: Collection[str]
) -> list[str]:
    """Up to `total` distinct ids taking one from each source in turn (earlier sources first),
    skipping `exclude`."""
    chosen: dict[str, None] = {}
    for rank in zip_longest(*sources):
        for item in rank:
            if item is not None and item not in exclude:
                chosen[item] = None
                if len(chosen) == total:
                    return list(chosen)
    return list(chosen)


def neighbour_candidates(seeds: Sequence[str], neighbours: dict[str, Sequence[str]]) -> list[str]:
    """Neighbours of the seeds, rank by rank: every seed's nearest first, then every second..."""
    ranks = zip_longest(*(neighbours.get(s, ()) for s in seeds))
    return list(dict.fromkeys(a for rank in ranks for a in rank if a is not None))


def candidates(
    seeds: Sequence[str],
    converted: Collection[str],
    neighbours: dict[str, Sequence[str]],
    segment_top: Sequence[str],
    popular: Sequence[str],
    total: int,
) -> list[str]:
    """The candidate list for one user: similarity, segment and popularity interleaved."""
    similar = neighbour_candidates(seeds, neighbours)
    return interleaved([similar, segment_top, popular], total, exclude=set(converted))
