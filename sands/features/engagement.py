"""The user's own events on an artwork before a day: the ranker's one pair input.

Every other input is the user's, the artwork's or a cross of their categories; this one says
whether *this* user already engaged with *this* artwork, counted over the `WINDOW` before the UTC
day being ranked (what the feature snapshots of the last complete day hold). Nobody rates a film
twice, while marketplace buyers come back to an artwork before buying it: the trees learn which
way it goes on each history (docs/models.md, "The user's own events on the artwork").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.engines import duck
from sands.ingest.contract import INTERACTIONS, LANDING_DAY_COLUMN
from sands.lake import delta, layout

ENGAGED_INPUT = "pair_engaged_28d"
WINDOW = timedelta(days=28)
EVENT_COLUMNS = ["user_id", "artwork_id", "event_ts"]
Engaged = Mapping[str, Mapping[str, float]]  # user -> artwork -> events in the window


def window_start(at: datetime) -> datetime:
    """The first instant counted for labels or rankings on `at`'s UTC day."""
    return datetime.combine(at.date(), time(), tzinfo=at.tzinfo) - WINDOW


def engagement_events(
    interactions_uri: str,
    since: datetime,
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """Bronze events (user, artwork, time) from `since` on, at the interactions' `version`
    (default: latest). An event never follows its landing day, so older days are not read."""
    table = delta.open_table(interactions_uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {interactions_uri}: materialize it first")
    if version is not None:
        table.load_as_version(version)
    stamp = pa.scalar(since, pa.timestamp("us", tz="UTC"))
    first: date = since.date()
    return delta.files_where(table, LANDING_DAY_COLUMN, ">=", first).to_table(
        columns=EVENT_COLUMNS,
        filter=(pc.field(LANDING_DAY_COLUMN) >= first) & (pc.field("event_ts") >= stamp),
    )


def events_before(
    lake_root: str,
    at: datetime,
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """The bronze events an evaluation on `at`'s day reads for the pair input (and any later)."""
    uri = layout.bronze(lake_root, INTERACTIONS.name)
    return engagement_events(uri, window_start(at), version, storage_options)


def engaged_counts(keys: pa.Table, events: pa.Table) -> pa.Array:
    """Per row of `keys` (`user_id`, `artwork_id`, `label_ts`), in order: the user's events on the
    artwork in the `WINDOW` before the label's UTC day (float64)."""
    con = duck.connect()
    numbered = keys.select(["user_id", "artwork_id", "label_ts"]).append_column(
        "__row", pa.array(np.arange(keys.num_rows), pa.int64())
    )
    con.register("keys", numbered)
    con.register("events", events.select(EVENT_COLUMNS))
    days = WINDOW.days
    counted = con.sql(
        f"""with k as (select *, date_trunc('day', label_ts) as __day from keys)
            select k.__row, count(e.user_id) as n
            from k left join events as e
              on e.user_id = k.user_id and e.artwork_id = k.artwork_id
             and e.event_ts < k.__day and e.event_ts >= k.__day - to_days({days})
            group by k.__row order by k.__row"""
    ).to_arrow_table()
    return counted["n"].cast(pa.float64()).combine_chunks()


def with_engaged(labels: pa.Table, events: pa.Table) -> pa.Table:
    """`labels` with `ENGAGED_INPUT` (replaced if present)."""
    if ENGAGED_INPUT in labels.column_names:
        labels = labels.drop_columns([ENGAGED_INPUT])
    return labels.append_column(ENGAGED_INPUT, engaged_counts(labels, events))


def engaged_by_user(events: pa.Table, users: Collection[str], at: datetime) -> dict:
    """Per user of `users` with any: their events per artwork in the `WINDOW` before `at`'s UTC
    day, counted as serving's `engaged_lists` count them."""
    wanted = events.filter(pc.is_in(events["user_id"], pa.array(sorted(users), pa.string())))
    return {row["user_id"]: engaged_map(row) for row in engaged_lists(wanted, at).to_pylist()}


def engaged_lists(events: pa.Table, at: datetime) -> pa.Table:
    """Per user with any, for the online store: the artworks they engaged with in the `WINDOW`
    before `at`'s UTC day (`engaged`, by id) and how often (`engaged_n`, in the same order)."""
    con = duck.connect()
    con.register("events", _within(events.select(EVENT_COLUMNS), at))
    return con.sql(
        """with pairs as (select user_id, artwork_id, count(*) as n from events group by all)
           select user_id, list(artwork_id order by artwork_id) as engaged,
                  list(cast(n as double) order by artwork_id) as engaged_n
           from pairs group by user_id order by user_id"""
    ).to_arrow_table()


def _within(events: pa.Table, at: datetime) -> pa.Table:
    """The events in the `WINDOW` before `at`'s UTC day."""
    start, ts = window_start(at), events["event_ts"]
    return events.filter(
        pc.and_(
            pc.greater_equal(ts, pa.scalar(start, ts.type)),
            pc.less(ts, pa.scalar(start + WINDOW, ts.type)),
        )
    )


def histories_with_engaged(histories: pa.Table, lists: pa.Table) -> pa.Table:
    """Online-store histories (one row per user) with `engaged_lists`' columns; empty lists for
    users who engaged with nothing in the window, and rows for those who only did there."""
    con = duck.connect()
    con.register("histories", histories)
    con.register("lists", lists)
    return con.sql(
        """select coalesce(h.user_id, l.user_id) as user_id,
                  coalesce(h.seeds, []) as seeds, coalesce(h.converted, []) as converted,
                  coalesce(l.engaged, []) as engaged,
                  coalesce(l.engaged_n, []::double[]) as engaged_n
           from histories as h full join lists as l using (user_id)
           order by user_id"""
    ).to_arrow_table()


def engaged_map(history: Mapping[str, object] | None) -> dict[str, float] | None:
    """A user's online-store history as artwork -> events; None when it predates the pair input
    or is damaged (unknown), empty when the user engaged with nothing."""
    if history is None:
        return {}
    ids, counts = history.get("engaged"), history.get("engaged_n")
    if not isinstance(ids, list) or not isinstance(counts, list) or len(ids) != len(counts):
        return None  # published before the input, or not as written: unknown, never a failure
    try:
        return {str(a): float(n) for a, n in zip(ids, counts, strict=True)}
    except (TypeError, ValueError):
        return None


def engaged_grid(
    engaged: Engaged, users: Sequence[str], position: Mapping[str, int], artworks: int
) -> np.ndarray:
    """(users, artworks) counts of each user's events on each catalogue artwork (0 if none)."""
    grid = np.zeros((len(users), artworks), np.float64)
    for row, user in enumerate(users):
        for artwork, n in engaged.get(user, {}).items():
            column = position.get(artwork)
            if column is not None:
                grid[row, column] = n
    return grid
