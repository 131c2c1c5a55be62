"""Engagement weights and recent popularity: the baseline recommender every model must beat."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from sands.engines import duck
from sands.features.dbt_vars import event_weights


def weights_sql(weights: dict[str, float]) -> str:
    """A SQL expression: the engagement weight of `event_type`."""
    cases = " ".join(f"when '{event}' then {weight}" for event, weight in weights.items())
    return f"case event_type {cases} else 0 end"


def engagement(events: pa.Table, weights: dict[str, float] | None = None) -> pa.Table:
    """Summed engagement weight per (user_id, artwork_id), in no particular order (sorting 4.5M
    pairs took 2 s; the similarity's sparse matrix is canonical whatever the order)."""
    con = duck.connect()
    con.register("events", events)
    return con.sql(
        f"""select user_id, artwork_id, sum({weights_sql(weights or event_weights())}) as weight
            from events group by all having weight > 0"""
    ).to_arrow_table()


def recent_popularity(
    events: pa.Table,
    catalogue: pa.Table,
    as_of: datetime,
    window_days: int,
    weights: dict[str, float] | None = None,
) -> pa.Table:
    """Weighted events per catalogue artwork in the `window_days` before `as_of`.

    Every catalogue artwork gets a row (zero when unseen); `rank` 1 is the most popular, ties
    broken by artwork id so the list is deterministic.
    """
    con = duck.connect()
    con.register("events", events)
    con.register("catalogue", catalogue.select(["artwork_id"]))
    since = as_of - timedelta(days=window_days)
    scored = con.sql(
        f"""with recent as (
                select artwork_id, sum({weights_sql(weights or event_weights())}) as score
                from events where event_ts >= ? and event_ts < ? group by artwork_id)
            select c.artwork_id, coalesce(r.score, 0)::double as score,
                   row_number() over (order by coalesce(r.score, 0) desc, c.artwork_id)::int
                     as rank
            from catalogue as c left join recent as r using (artwork_id) order by rank""",
        params=[since, as_of],
    )
    return scored.to_arrow_table()
