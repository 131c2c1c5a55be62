"""Training examples for the ranker: labelled (user, artwork, time) rows with PIT features.

Positives are the first favourite or purchase (configurable) of a user for an artwork. Negatives
are artworks the user viewed without ever converting on, and random catalogue artworks drawn at
each positive's time, uniformly or weighted by popularity. Features are joined as of each label's
time (see `sands.features.pit`).

Which negatives decides what the score means (docs/models.md has the measured comparison):
popularity-weighted draws divide the popularity prior out, so the ranker learns lift and loses to
plain popularity when a trend moves; viewed ones follow exposure, so what trends is what users
were shown and passed over; uniform draws keep the prior, so "popular now" can be learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.engines import duck
from sands.features.pit import Source, point_in_time_join
from sands.ingest.contract import CONVERSION_EVENTS

POSITIVE, VIEWED, POPULAR, UNIFORM = "positive", "viewed", "popular", "uniform"
# Negatives drawn from the catalogue rather than from the user's own views.
DRAWN = (POPULAR, UNIFORM)


@dataclass(frozen=True)
class LabelSpec:
    """Which events are positives and how many negatives of each kind per positive."""

    positive_events: tuple[str, ...] = CONVERSION_EVENTS
    # Measured (docs/models.md, `python -m bench ranker_ablation`): uniform catalogue draws only.
    # Viewed negatives follow exposure, so after a shift the trending items are the negatives.
    viewed_negatives: int = 0
    popular_negatives: int = 0
    uniform_negatives: int = 4
    seed: int = 0


def _column(values: pa.Array | pa.ChunkedArray | list, type_: pa.DataType) -> pa.Array:
    """`values` as one Arrow array of `type_`: Arrow input is cast, never converted through Python
    objects (seconds a million rows)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values.cast(type_) if isinstance(values, pa.Array) else pa.array(values, type_)


def _labels(user: pa.Array, artwork: pa.Array, ts: pa.Array, label: int, source: str) -> pa.Table:
    n = len(user)
    return pa.table(
        {
            "user_id": _column(user, pa.string()),
            "artwork_id": _column(artwork, pa.string()),
            "label_ts": _column(ts, pa.timestamp("us", tz="UTC")),
            "label": pa.array(np.full(n, label, dtype=np.int8)),
            "sample_source": pa.repeat(pa.scalar(source, pa.string()), n),
        }
    )


def positive_labels(events: pa.Table, positive_events: tuple[str, ...]) -> pa.Table:
    """One positive per (user, artwork): the first positive event's time."""
    con = duck.connect()
    con.register("events", events)
    kinds = ", ".join(f"'{e}'" for e in positive_events)
    pairs = con.sql(
        f"""select user_id, artwork_id, min(event_ts) as label_ts from events
            where event_type in ({kinds}) group by all order by label_ts, user_id, artwork_id"""
    ).to_arrow_table()
    return _labels(pairs["user_id"], pairs["artwork_id"], pairs["label_ts"], 1, POSITIVE)


def viewed_negatives(
    events: pa.Table, positive_events: tuple[str, ...], count: int, rng: np.random.Generator
) -> pa.Table:
    """Up to `count` (user, artwork) pairs viewed but never converted on, at their first view."""
    if count == 0:  # the default: the query is seconds a million events, and draws nothing
        return _labels([], [], [], 0, VIEWED)
    con = duck.connect()
    con.register("events", events)
    kinds = ", ".join(f"'{e}'" for e in positive_events)
    pairs = con.sql(
        f"""select v.user_id, v.artwork_id, min(v.event_ts) as label_ts
            from events as v
            anti join (select distinct user_id, artwork_id from events
                       where event_type in ({kinds})) as p using (user_id, artwork_id)
            where v.event_type = 'view'
            group by all order by v.user_id, v.artwork_id"""
    ).to_arrow_table()
    if pairs.num_rows > count:
        pairs = pairs.take(np.sort(rng.choice(pairs.num_rows, size=count, replace=False)))
    return _labels(pairs["user_id"], pairs["artwork_id"], pairs["label_ts"], 0, VIEWED)


def drawn_negatives(
    positives: pa.Table,
    popularity: pa.Table,
    per_positive: int,
    rng: np.random.Generator,
    exclude: pa.Table | None = None,
    source: str = POPULAR,
) -> pa.Table:
    """For each positive, `per_positive` artworks drawn by `weight`, at the positive's time.

    `popularity` has `artwork_id` and `weight`; draws that hit a (`user_id`, `artwork_id`) pair of
    `exclude` are dropped.
    """
    if positives.num_rows == 0 or per_positive == 0 or popularity.num_rows == 0:
        return _labels([], [], [], 0, source)
    weights = np.asarray(popularity["weight"].to_numpy(zero_copy_only=False), dtype=float)
    draws = rng.choice(
        popularity.num_rows, size=positives.num_rows * per_positive, p=weights / weights.sum()
    )
    rows = np.repeat(np.arange(positives.num_rows), per_positive)
    users = positives["user_id"].take(pa.array(rows))
    artworks = popularity["artwork_id"].take(pa.array(draws))
    mask = pa.array(np.ones(len(rows), dtype=bool))
    if exclude is not None and exclude.num_rows:
        mask = pc.invert(_pairs_in(users, artworks, exclude))
    return _labels(
        pc.filter(users, mask),
        pc.filter(artworks, mask),
        pc.filter(positives["label_ts"].take(pa.array(rows)), mask),
        0,
        source,
    )


def _pairs_in(users: pa.Array, artworks: pa.Array, pairs: pa.Table) -> pa.Array:
    """Whether each (user, artwork) is one of `pairs`: both ids coded against `pairs`' own ids and
    compared as one integer, in Arrow (a Python set of tuples is seconds a million rows)."""
    known_users = pc.unique(pairs["user_id"]).drop_null()
    known_works = pc.unique(pairs["artwork_id"]).drop_null()
    width = len(known_works)

    def codes(user: pa.Array, work: pa.Array) -> np.ndarray:
        # As float64: exact far past any catalogue, and an id the pairs never hold codes as NaN.
        u = pc.index_in(user, value_set=known_users).cast(pa.float64()).to_numpy(False)
        w = pc.index_in(work, value_set=known_works).cast(pa.float64()).to_numpy(False)
        return u * width + w

    mine = codes(users, artworks)
    theirs = codes(pairs["user_id"], pairs["artwork_id"])
    return pa.array(np.isin(mine, theirs[~np.isnan(theirs)]) & ~np.isnan(mine))


def artwork_popularity(events: pa.Table, catalogue: pa.Table) -> pa.Table:
    """Views per catalogue artwork plus one, so unseen artworks can still be drawn."""
    con = duck.connect()
    con.register("events", events)
    con.register("catalogue", catalogue)
    return con.sql(
        """select c.artwork_id, 1 + count(e.artwork_id) as weight
           from catalogue as c left join events as e
             on e.artwork_id = c.artwork_id and e.event_type = 'view'
           group by c.artwork_id order by c.artwork_id"""
    ).to_arrow_table()


def training_labels(events: pa.Table, catalogue: pa.Table, spec: LabelSpec) -> pa.Table:
    """Positives, viewed, popular and uniform negatives, ordered by label time."""
    rng = np.random.default_rng(spec.seed)
    positives = positive_labels(events, spec.positive_events)
    viewed = viewed_negatives(
        events, spec.positive_events, spec.viewed_negatives * positives.num_rows, rng
    )
    engaged = positives.select(["user_id", "artwork_id"])
    popular = drawn_negatives(
        positives, artwork_popularity(events, catalogue), spec.popular_negatives, rng, engaged
    )
    # Draws index rows: in the catalogue's read order (Delta file order, which a merge can
    # change) the same seed would pick different artworks for the same data.
    flat = (
        catalogue.select(["artwork_id"])
        .sort_by("artwork_id")
        .append_column("weight", pa.array(np.ones(catalogue.num_rows)))
    )
    uniform = drawn_negatives(positives, flat, spec.uniform_negatives, rng, engaged, UNIFORM)
    labels = pa.concat_tables([positives, viewed, popular, uniform])
    return labels.sort_by([("label_ts", "ascending"), ("user_id", "ascending")])


def training_examples(
    labels: pa.Table, user_features: Source, artwork_features: Source, ttl: timedelta
) -> pa.Table:
    """Labels joined to user and artwork features as of each label's time (the feature logs hold
    complete daily snapshots: see `sands.features.pit`).

    Drawn negatives whose artwork had no features at that time (not yet listed) are dropped:
    they are not artworks the user could have been shown.
    """
    # Artworks first, dropping in the join (a filter after it copies every column), on the
    # labels' narrow columns; the user columns then come before the artwork ones, as always.
    drawn = pc.is_in(labels["sample_source"], pa.array(DRAWN))
    known = point_in_time_join(
        labels,
        artwork_features,
        "artwork_id",
        ttl,
        prefix="artwork_",
        must_match=drawn,
        snapshots=True,
    )
    joined = point_in_time_join(
        known, user_features, "user_id", ttl, prefix="user_", snapshots=True
    )
    works = [c for c in known.column_names if c not in labels.column_names]
    return joined.select([c for c in joined.column_names if c not in works] + works)
