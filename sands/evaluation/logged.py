"""The prediction log as off-policy estimators read it: per list and position, the shown artwork,
whether its user clicked it, and the logging policy's propensity for it there.

A shown artwork is clicked when its user clicked (or favourited or bought) that artwork within
the attribution window after the list was served (`AttributionSpec`, as the online SLIs count).
Only lists whose window has closed count. Logs written before propensities were logged read as
greedy: every item certain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pyarrow as pa

from sands.engines import duck
from sands.evaluation.off_policy import LoggedLists
from sands.monitoring.online_quality import AttributionSpec, sql_list
from sands.serving.exploration import exposure, reach


def item_clicks(
    impressions: pa.Table, interactions: pa.Table, spec: AttributionSpec, as_of: datetime
) -> pa.Table:
    """One row per shown artwork of every list whose window closed by `as_of`: impression, user,
    arm, model version, position, artwork, propensity, explored, clicked."""
    con = duck.connect()
    con.register("impressions", impressions)
    con.register("events", interactions.select(["user_id", "artwork_id", "event_type", "event_ts"]))
    window = f"to_microseconds(cast({spec.window_hours * 3_600_000_000} as bigint))"
    fields = {f.name for f in impressions.schema.field("items").type.value_type}
    logged = {
        name: f"coalesce(s.{name}, {default})" if name in fields else default
        for name, default in (("propensity", "1.0"), ("explored", "false"))
    }
    return con.sql(
        f"""with shown as (
                select impression_id, user_id, arm, model_version, strategy, served_ts,
                       unnest(items, recursive := true)
                from impressions where served_ts + {window} <= ?),
            clicked as (
                select distinct s.impression_id, s.artwork_id
                from shown as s join events as e
                  on e.user_id = s.user_id and e.artwork_id = s.artwork_id
                 and e.event_type in ({sql_list(spec.clicks)})
                 and e.event_ts > s.served_ts and e.event_ts <= s.served_ts + {window})
            select s.impression_id, s.user_id, s.arm, s.model_version, s.strategy, s.served_ts,
                   s.position, s.artwork_id,
                   {logged["propensity"]} as propensity, {logged["explored"]} as explored,
                   c.artwork_id is not null as clicked
            from shown as s left join clicked as c using (impression_id, artwork_id)
            order by s.served_ts, s.impression_id, s.position""",
        params=[as_of],
    ).to_arrow_table()


@dataclass(frozen=True)
class LoggedDay:
    """Lists x positions of the log: who was served, what, and the estimators' arrays."""

    impressions: list[str]
    users: list[str]
    served: list[date]  # the day each list was served (UTC)
    items: np.ndarray  # artwork ids, "" where a list was shorter than k
    explored: np.ndarray  # an exploration slot held the artwork
    lists: LoggedLists

    def take(self, rows: Sequence[int]) -> LoggedDay:
        """Only the lists at `rows`, in that order."""
        at = np.asarray(rows, dtype=np.int64)
        logged = self.lists
        return LoggedDay(
            [self.impressions[i] for i in at],
            [self.users[i] for i in at],
            [self.served[i] for i in at],
            self.items[at],
            self.explored[at],
            LoggedLists(
                logged.clicks[at],
                logged.propensity[at],
                logged.exposure[at],
                logged.shown[at],
                None if logged.reach is None else logged.reach[at],
                None if logged.groups is None else logged.groups[at],
            ),
        )


def logged_lists(rows: pa.Table, k: int, examination: np.ndarray) -> LoggedDay:
    """`item_clicks` rows (one logging policy's lists) as (lists x k) arrays."""
    ids = rows["impression_id"].to_pylist()
    order = list(dict.fromkeys(ids))
    row_of = {impression: i for i, impression in enumerate(order)}
    n = len(order)
    items = np.full((n, k), "", dtype=object)
    clicks, propensity = np.zeros((n, k)), np.ones((n, k))
    explored, shown = np.zeros((n, k), bool), np.zeros((n, k), bool)
    users: dict[int, str] = {}
    served = dict(zip(ids, (ts.date() for ts in rows["served_ts"].to_pylist()), strict=True))
    columns = [rows[c].to_pylist() for c in ("user_id", "position", "artwork_id")]
    extras = [rows[c].to_pylist() for c in ("clicked", "propensity", "explored")]
    for impression, user, position, artwork, hit, p, e in zip(ids, *columns, *extras, strict=True):
        if not 1 <= position <= k:
            continue
        i, j = row_of[impression], position - 1
        users[i] = user
        items[i, j], clicks[i, j], propensity[i, j] = artwork, float(hit), p
        explored[i, j], shown[i, j] = e, True
    who = [users.get(i, "") for i in range(n)]
    return LoggedDay(
        order,
        who,
        [served[impression] for impression in order],
        items,
        explored,
        LoggedLists(
            clicks,
            propensity,
            exposure(propensity, explored, examination),
            shown,
            reach(propensity, explored),
            np.array(who, dtype=object),
        ),
    )


def target_positions(day: LoggedDay, lists: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Where a target policy puts each logged artwork in its list for that user (1-based; 0 when
    it does not show it, or has no list for the user)."""
    return positions_in(day, [lists.get(user, ()) for user in day.users])


def positions_in(day: LoggedDay, per_list: Sequence[Sequence[str]]) -> np.ndarray:
    """Where each logged list's target list (one per logged list, in order) puts its artworks."""
    out = np.zeros(day.items.shape, np.int64)
    for i, target in enumerate(per_list):
        where = {artwork: p for p, artwork in enumerate(target, start=1)}
        out[i] = [where.get(artwork, 0) for artwork in day.items[i]]
    return out
