"""A vectorised digital-art marketplace: users with latent tastes browse, click, favourite and buy.

Each simulated day writes one drop per feed into the landing zone, following the data contract:
new and updated users and artworks, and that day's interactions (plus a few late events from the
day before). Named scenarios move the distribution from a chosen day so drift can be exercised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.ingest.contract import EVENT_TYPES, PRICE_TYPE

STYLES = (
    "abstract",
    "impressionism",
    "pop-art",
    "minimalism",
    "surrealism",
    "cubism",
    "photorealism",
    "street-art",
    "ukiyo-e",
    "pixel-art",
)
TREND_STYLE = "generative"
ALL_STYLES = (*STYLES, TREND_STYLE)
MEDIA = ("oil", "acrylic", "watercolour", "digital", "photography", "ink", "mixed-media")
MEDIUM_PRICE = np.array([900.0, 600.0, 350.0, 120.0, 250.0, 200.0, 450.0])
COLOURS = (
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "indigo",
    "violet",
    "pink",
    "brown",
    "black",
    "white",
    "gold",
    "grey",
)
TAGS = (
    "portrait",
    "landscape",
    "urban",
    "nature",
    "ocean",
    "night",
    "animals",
    "figurative",
    "geometric",
    "floral",
    "architecture",
    "music",
    "space",
    "retro",
    "dream",
    "city",
    "mountains",
    "still-life",
    "texture",
    "light",
    "motion",
    "nostalgia",
    "bold",
    "calm",
)
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "JP", "CA", "AU")
COUNTRY_WEIGHTS = np.array([0.30, 0.14, 0.11, 0.09, 0.07, 0.07, 0.05, 0.07, 0.06, 0.04])
SHIFT_COUNTRY = "BR"
# Where tastes drift in the taste-shift scenario.
TASTE_SHIFT_TARGETS = ("minimalism", "ukiyo-e", "surrealism")
GENDERS = np.array(["female", "male", "non-binary"], dtype=object)
ADJECTIVES = np.array(
    [
        "Quiet",
        "Burning",
        "Hidden",
        "Silver",
        "Broken",
        "Endless",
        "Golden",
        "Falling",
        "Electric",
        "Velvet",
        "Distant",
        "Wild",
        "Frozen",
        "Secret",
        "Lucid",
        "Crimson",
    ],
    dtype=object,
)
NOUNS = np.array(
    [
        "Harbour",
        "Garden",
        "Signal",
        "Memory",
        "Horizon",
        "Tide",
        "Orchard",
        "Circuit",
        "Echo",
        "Lantern",
        "Meadow",
        "Skyline",
        "Mirror",
        "Window",
        "Dune",
        "Forest",
    ],
    dtype=object,
)
# Evening-heavy browsing, by UTC hour.
HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 5, 5, 6, 7, 9, 10, 10, 9, 6, 4], dtype=float
)
HOUR_WEIGHTS /= HOUR_WEIGHTS.sum()
MEAN_VIEWS_PER_SESSION = 6.0
P_CLICK, P_FAVOURITE, P_PURCHASE = 0.14, 0.22, 0.07
# Events per view once taste-driven lift is applied to the funnel (measured on the simulator).
EVENTS_PER_VIEW = 1.40


class Scenario(StrEnum):
    """Named ways the marketplace changes from the scenario's start day."""

    steady = "steady"
    taste_shift = "taste-shift"
    new_trend = "new-trend"
    demographic_shift = "demographic-shift"


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of a simulation run; the same config and seed always give the same drops."""

    seed: int = 7
    start: date = date(2026, 9, 1)
    days: int = 14
    events_per_day: int = 20_000
    initial_users: int = 2_000
    initial_artworks: int = 1_000
    new_users_per_day: int = 40
    new_artworks_per_day: int = 20
    scenario: Scenario = Scenario.steady
    scenario_day: int | None = None
    bad_rows: float = 0.0
    late_share: float = 0.02
    update_share: float = 0.01
    # With a recommender attached: the share of sessions that open on a served list.
    served_share: float = 0.3
    # How users respond to a served list (a position-based model, as obp's "pbm"): they examine
    # the item at position k (1-based) with probability (1/k) ** served_examination, and click an
    # examined item with probability served_click times its taste lift (0.2 for a style they
    # never look at, 1 on average, 3 for their favourite style; the lift of organic browsing).
    # Calibrated so lists of a user's favourite style get about 7 % clicks per list (0.7 % per
    # shown item) and random lists about 2 %: `python -m bench.clicks`, docs/serving.md.
    served_examination: float = 1.0
    served_click: float = 0.008

    @property
    def shift_day(self) -> int:
        """Day index (0-based) from which the scenario applies; the middle by default."""
        return self.days // 2 if self.scenario_day is None else self.scenario_day


@dataclass
class DayDrop:
    """Everything one simulated day writes to the landing zone."""

    day: date
    interactions: pa.Table
    late_interactions: pa.Table
    bad_interactions: list[dict] | None
    users: pa.Table
    artworks: pa.Table
    bad_users: list[dict] | None = None
    bad_artworks: list[dict] | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _ts_array(day: date, seconds: np.ndarray) -> pa.Array:
    base = int(_utc(day).timestamp() * 1_000_000)
    return pa.array(base + (seconds * 1_000_000).astype(np.int64), pa.timestamp("us", tz="UTC"))


def _ids(prefix: str, numbers: np.ndarray, width: int = 7) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


# Asked for one user's list at a simulated time; the served artwork ids, best first.
Recommender = Callable[[str, datetime], list[str]]


def examination(positions: int, eta: float) -> np.ndarray:
    """Chance a user examines each position of a served list: (1/k) ** eta for k = 1, 2, ..."""
    return (1.0 / np.arange(1, positions + 1)) ** eta


def taste_lift(share: np.ndarray) -> np.ndarray:
    """How much a style's share of a user's taste scales their chance to engage (1 at an average
    share, 0.2 for a style they never look at, at most 3)."""
    return np.clip(0.4 + 0.6 * (share * len(STYLES)), 0.2, 3.0)


class Marketplace:
    """The evolving population of users and artworks, and their behaviour day by day.

    With a `recommender` attached, a share of each day's sessions open on a list it serves:
    users examine each position with a probability falling with its rank, click an examined
    artwork with a small probability scaled by how well it matches their taste today, and
    favourite and buy what they clicked through the funnel of organic browsing. What was served
    shapes the next day's interactions.
    """

    def __init__(self, config: SimulationConfig, recommender: Recommender | None = None) -> None:
        self.config = config
        self.recommender = recommender
        self.served_rng = np.random.default_rng([config.seed, 1])
        self.rng = np.random.default_rng(config.seed)
        self.n_styles = len(ALL_STYLES)
        self.users = _Population()
        self.artworks = _Population()
        self.n_artists = max(config.initial_artworks // 4, 10)
        # The day's newcomers: the first index and each one's second of the day it appeared
        # (negative on the first day: long before), so no event predates its user or artwork.
        self._born_today: dict[str, tuple[int, np.ndarray]] = {}

    # -- population -------------------------------------------------------------------------
    def _new_users(self, n: int, day_index: int, day: date, initial: bool) -> pa.Table:
        rng, cfg = self.rng, self.config
        shifted = cfg.scenario == Scenario.demographic_shift and day_index >= cfg.shift_day
        taste = rng.dirichlet(np.full(len(STYLES), 0.35), size=n)
        taste = np.hstack([taste, np.zeros((n, 1))])
        countries = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS).astype(object)
        countries = np.array(COUNTRIES, dtype=object)[countries.astype(int)]
        ages = np.clip(rng.normal(38, 12, size=n), 16, 85).round()
        if shifted:
            joined = rng.random(n) < 0.7
            countries[joined] = SHIFT_COUNTRY
            ages[joined] = rng.integers(18, 25, size=int(joined.sum()))
            young = np.zeros(self.n_styles)
            young[[STYLES.index("pixel-art"), STYLES.index("street-art")]] = 1.0
            taste[joined] = 0.3 * taste[joined] + 0.7 * young / young.sum()
        activity = rng.lognormal(0.0, 1.0, size=n)
        start = self.users.size
        ids = _ids("u", np.arange(start, start + n))
        signup = rng.uniform(-86400 * 365, 0, size=n) if initial else rng.uniform(0, 86400, size=n)
        top = np.argsort(-taste, axis=1)[:, :2]
        interests = [[ALL_STYLES[a], ALL_STYLES[b]] for a, b in top]
        extra_tag = rng.integers(0, len(TAGS), size=n)
        for i, tag in enumerate(extra_tag):
            if rng.random() < 0.5:
                interests[i].append(TAGS[tag])
        age_missing = rng.random(n) < 0.1
        gender = GENDERS[rng.choice(3, size=n, p=[0.48, 0.46, 0.06])]
        gender[rng.random(n) < 0.15] = None
        self.users.append(taste=taste, activity=activity)
        self._born_today["users"] = (start, signup)
        signup_ts = _ts_array(day, signup)
        return pa.table(
            {
                "user_id": ids,
                "signup_ts": signup_ts,
                "age": pa.array(np.where(age_missing, 0, ages).astype(np.int32), mask=age_missing),
                "gender": pa.array(gender, pa.string()),
                "country": pa.array(countries, pa.string()),
                "interests": pa.array(interests, pa.list_(pa.string())),
                "updated_ts": signup_ts,
            }
        )

    def _new_artworks(self, n: int, day_index: int, day: date, initial: bool) -> pa.Table:
        rng, cfg = self.rng, self.config
        style = rng.integers(0, len(STYLES), size=n)
        if cfg.scenario == Scenario.new_trend and day_index >= cfg.shift_day:
            style[rng.random(n) < 0.4] = ALL_STYLES.index(TREND_STYLE)
        medium = rng.integers(0, len(MEDIA), size=n)
        price = np.round(MEDIUM_PRICE[medium] * rng.lognormal(0, 0.6, size=n), 2)
        popularity = rng.pareto(1.3, size=n) + 0.05
        artist = (rng.zipf(1.6, size=n) - 1) % self.n_artists
        colours = [
            list(rng.choice(COLOURS, size=k, replace=False)) for k in rng.integers(1, 4, size=n)
        ]
        tags = [list(rng.choice(TAGS, size=k, replace=False)) for k in rng.integers(2, 6, size=n)]
        titles = (
            ADJECTIVES[rng.integers(0, len(ADJECTIVES), n)]
            + " "
            + NOUNS[rng.integers(0, len(NOUNS), n)]
        )
        descriptions = [
            f"A {MEDIA[m]} {ALL_STYLES[s]} piece in {' and '.join(c)} tones, "
            f"about {' and '.join(t[:2])}."
            for m, s, c, t in zip(medium, style, colours, tags, strict=True)
        ]
        start = self.artworks.size
        self.artworks.append(style=style, popularity=popularity, price=price)
        created = rng.uniform(-86400 * 365, 0, size=n) if initial else rng.uniform(0, 86400, size=n)
        self._born_today["artworks"] = (start, created)
        created_ts = _ts_array(day, created)
        return pa.table(
            {
                "artwork_id": _ids("a", np.arange(start, start + n)),
                "artist_id": _ids("artist", artist, width=5),
                "created_ts": created_ts,
                "title": pa.array(titles, pa.string()),
                "description": pa.array(descriptions, pa.string()),
                "style": pa.array([ALL_STYLES[s] for s in style], pa.string()),
                "medium": pa.array([MEDIA[m] for m in medium], pa.string()),
                "colours": pa.array(colours, pa.list_(pa.string())),
                "tags": pa.array(tags, pa.list_(pa.string())),
                "price": pa.array(price).cast(PRICE_TYPE),
                "updated_ts": created_ts,
            }
        )

    def _updated_users(self, day: date, previous: pa.Table) -> pa.Table:
        """A few existing users edit their profile (new interests) during the day."""
        rng = self.rng
        n = int(self.users.size * self.config.update_share)
        if n == 0 or previous.num_rows == 0:
            return previous.slice(0, 0)
        rows = rng.choice(previous.num_rows, size=min(n, previous.num_rows), replace=False)
        picked = previous.take(np.sort(rows))
        interests = [
            [ALL_STYLES[i] for i in rng.choice(len(STYLES), 2, replace=False)] for _ in rows
        ]
        picked = picked.set_column(
            picked.schema.get_field_index("interests"),
            "interests",
            pa.array(interests, pa.list_(pa.string())),
        )
        updated = _ts_array(day, rng.uniform(0, 86400, size=len(rows)))
        return picked.set_column(picked.schema.get_field_index("updated_ts"), "updated_ts", updated)

    def _repriced_artworks(self, day: date, previous: pa.Table) -> pa.Table:
        """A few artworks get a new price during the day."""
        rng = self.rng
        n = int(self.artworks.size * self.config.update_share)
        if n == 0 or previous.num_rows == 0:
            return previous.slice(0, 0)
        rows = np.sort(rng.choice(previous.num_rows, size=min(n, previous.num_rows), replace=False))
        picked = previous.take(rows)
        factor = rng.uniform(0.7, 1.2, size=len(rows))
        old = picked.column("price").cast(pa.float64()).to_numpy()
        price = pa.array(np.round(old * factor, 2)).cast(PRICE_TYPE)
        ids = picked.column("artwork_id").to_numpy(zero_copy_only=False)
        self.artworks.price[np.array([int(i[1:]) for i in ids])] = np.round(old * factor, 2)
        picked = picked.set_column(picked.schema.get_field_index("price"), "price", price)
        updated = _ts_array(day, rng.uniform(0, 86400, size=len(rows)))
        return picked.set_column(picked.schema.get_field_index("updated_ts"), "updated_ts", updated)

    # -- behaviour --------------------------------------------------------------------------
    def _taste_today(self, day_index: int) -> np.ndarray:
        cfg = self.config
        taste = self.users.taste
        since = day_index - cfg.shift_day
        if cfg.scenario == Scenario.taste_shift and since >= 0:
            weight = min(0.8, 0.3 + 0.1 * since)
            target = np.zeros(self.n_styles)
            target[[ALL_STYLES.index(s) for s in TASTE_SHIFT_TARGETS]] = 1 / len(
                TASTE_SHIFT_TARGETS
            )
            taste = (1 - weight) * taste + weight * target
        if cfg.scenario == Scenario.new_trend and since >= 0:
            hype = 0.7 / (1 + np.exp(-(since - 3) / 1.5))
            taste = taste.copy()
            taste[:, : len(STYLES)] *= 1 - hype
            taste[:, -1] = hype
        return taste / taste.sum(axis=1, keepdims=True)

    def _pick_artworks(self, style: np.ndarray) -> np.ndarray:
        """For each view, an artwork of the wanted style drawn by (power-law) popularity."""
        rng = self.rng
        chosen = np.empty(len(style), dtype=np.int64)
        art_style, popularity = self.artworks.style, self.artworks.popularity
        everything = np.arange(self.artworks.size)
        for s in range(self.n_styles):
            wanted = np.flatnonzero(style == s)
            if len(wanted) == 0:
                continue
            pool = np.flatnonzero(art_style == s)
            pool = pool if len(pool) else everything
            cumulative = np.cumsum(popularity[pool])
            draws = rng.random(len(wanted)) * cumulative[-1]
            chosen[wanted] = pool[np.minimum(np.searchsorted(cumulative, draws), len(pool) - 1)]
        return chosen

    def _events(self, day_index: int, day: date, signed_up: int) -> pa.Table:
        rng, cfg = self.rng, self.config
        n_views = max(int(cfg.events_per_day / EVENTS_PER_VIEW), 1)
        n_sessions = max(int(n_views / MEAN_VIEWS_PER_SESSION), 1)
        activity = self.users.activity[:signed_up]
        session_user = rng.choice(signed_up, size=n_sessions, p=activity / activity.sum())
        lengths = rng.geometric(1 / MEAN_VIEWS_PER_SESSION, size=n_sessions)
        user = np.repeat(session_user, lengths)
        session = np.repeat(np.arange(n_sessions), lengths)
        taste = self._taste_today(day_index)[user]
        style = (rng.random((len(user), 1)) > np.cumsum(taste, axis=1)).sum(axis=1)
        style = np.minimum(style, self.n_styles - 1)
        artwork = self._pick_artworks(style)
        served_start = np.empty(0)
        organic = len(user)
        if self.recommender is not None:
            served_user, served_artwork, served_lengths, served_start = self._served_views(
                day, session_user
            )
            user = np.concatenate([user, served_user])
            artwork = np.concatenate([artwork, served_artwork])
            session = np.concatenate(
                [session, n_sessions + np.repeat(np.arange(len(served_lengths)), served_lengths)]
            )
            lengths = np.concatenate([lengths, served_lengths])
            taste = self._taste_today(day_index)[user]
        lift = taste_lift(taste[np.arange(len(user)), self.artworks.style[artwork]])
        clicked = rng.random(len(user)) < P_CLICK * lift
        if self.recommender is not None:  # served views: clicks by the list's response model
            chance = cfg.served_click * lift[organic:]
            clicked[organic:] = self.served_rng.random(len(user) - organic) < chance
        favourited = clicked & (rng.random(len(user)) < P_FAVOURITE * lift)
        price = self.artworks.price[artwork]
        bought = clicked & (rng.random(len(user)) < P_PURCHASE * lift * 300 / (300 + price))
        start = rng.choice(24, size=n_sessions, p=HOUR_WEIGHTS) * 3600.0 + rng.uniform(
            0, 3600, n_sessions
        )
        start = np.concatenate([start, served_start])
        offset = rng.exponential(40.0, size=len(user))
        first = np.r_[0, np.cumsum(lengths)[:-1]]
        offset = np.cumsum(offset) - np.repeat(np.cumsum(offset)[first] - offset[first], lengths)
        view_s = self._after_birth(np.minimum(start[session] + offset, 86400 - 1e-3), user, artwork)
        click_s = np.minimum(view_s + rng.exponential(8.0, len(user)), 86400 - 1e-3)
        fav_s = np.minimum(click_s + rng.exponential(20.0, len(user)), 86400 - 1e-3)
        buy_s = np.minimum(click_s + rng.exponential(90.0, len(user)), 86400 - 1e-3)
        steps = [
            (None, view_s, 0),
            (clicked, click_s, 1),
            (favourited, fav_s, 2),
            (bought, buy_s, 3),
        ]
        parts = [
            (np.arange(len(user)) if mask is None else np.flatnonzero(mask), seconds, kind)
            for mask, seconds, kind in steps
        ]
        rows = np.concatenate([p[0] for p in parts])
        kinds = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
        seconds = np.concatenate([p[1][p[0]] for p in parts])
        order = np.argsort(seconds, kind="stable")
        rows, kinds, seconds = rows[order], kinds[order], seconds[order]
        purchase = kinds == 3
        # `price` is per viewed row already: the artwork's price when this row was viewed.
        prices = pa.array(np.where(purchase, price[rows], 0.0), mask=~purchase).cast(PRICE_TYPE)
        session_ids = _ids(f"s{day:%Y%m%d}-", session[rows])
        return pa.table(
            {
                "event_id": _ids(f"e{day:%Y%m%d}-", np.arange(len(rows)), width=8),
                "user_id": _ids("u", user[rows]),
                "artwork_id": _ids("a", artwork[rows]),
                "event_type": pa.array(np.array(EVENT_TYPES, dtype=object)[kinds], pa.string()),
                "event_ts": _ts_array(day, seconds),
                "session_id": session_ids,
                "price": prices,
            }
        )

    def _after_birth(
        self, seconds: np.ndarray, user: np.ndarray, artwork: np.ndarray
    ) -> np.ndarray:
        """Event seconds moved to just after their user signed up or artwork was listed, when
        that was later the same day (sessions are drawn over the whole day)."""
        born = np.full(len(seconds), -np.inf)
        for population, ids in (("users", user), ("artworks", artwork)):
            first, appeared = self._born_today[population]
            today = ids >= first
            born[today] = np.maximum(born[today], appeared[ids[today] - first])
        return np.where(born >= seconds, born + np.minimum(1.0, (86400 - born) / 2), seconds)

    def _served_views(
        self, day: date, session_user: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sessions that open on a served list: per examined item (a view) its user and artwork,
        and per session its length and start second. A separate random stream, so a run without
        a recommender draws exactly what it always did."""
        rng, cfg = self.served_rng, self.config
        n = int(len(session_user) * cfg.served_share)
        who = session_user[rng.choice(len(session_user), size=n)]
        when = rng.choice(24, size=n, p=HOUR_WEIGHTS) * 3600.0 + rng.uniform(0, 3600, n)
        users, artworks, lengths, starts = [], [], [], []
        for person, second in zip(who, when, strict=True):
            listed = self.recommender(f"u{person:07d}", _utc(day) + timedelta(seconds=second))
            looked = rng.random(len(listed)) < examination(len(listed), cfg.served_examination)
            seen = [
                a
                for a in (int(i[1:]) for i, x in zip(listed, looked, strict=True) if x)
                if a < self.artworks.size
            ]
            if seen:  # a list nobody looked at leaves no events (its impression still counts)
                users += [person] * len(seen)
                artworks += seen
                lengths.append(len(seen))
                starts.append(second)
        return (
            np.asarray(users, dtype=np.int64),
            np.asarray(artworks, dtype=np.int64),
            np.asarray(lengths, dtype=np.int64),
            np.asarray(starts, dtype=np.float64),
        )

    def served_click_chance(
        self, users: np.ndarray, artworks: np.ndarray, day_index: int
    ) -> np.ndarray:
        """The chance a user clicks an artwork of a served list once examined, on a given day:
        what `_events` draws served clicks from (the ground truth off-policy estimates aim at)."""
        taste = self._taste_today(day_index)
        return self.config.served_click * taste_lift(taste[users, self.artworks.style[artworks]])

    # -- corruption -------------------------------------------------------------------------
    def _bad_interactions(self, good: pa.Table) -> list[dict] | None:
        """Malformed rows of every kind the contract must catch, as a messy JSON-lines feed."""
        n = round(self.config.bad_rows * good.num_rows)
        if n == 0:
            return None
        rng = self.rng
        rows = good.take(rng.choice(good.num_rows, size=n, replace=False)).to_pylist()
        kinds = ("wrong_type", "unknown_event_type", "missing_id", "duplicate", "future_ts")
        out = []
        for i, row in enumerate(rows):
            kind = kinds[i % len(kinds)]
            row = dict(row)
            row["event_ts"] = row["event_ts"].isoformat()
            row["price"] = float(row["price"]) if row["price"] is not None else None
            if kind == "wrong_type":
                row["event_ts"] = "not-a-timestamp"
            elif kind == "unknown_event_type":
                row["event_id"] += "-x"
                row["event_type"] = "hover"
            elif kind == "missing_id":
                row["event_id"] += "-m"
                row["user_id"] = None
            elif kind == "future_ts":
                row["event_id"] += "-f"
                row["event_ts"] = (
                    datetime.fromisoformat(row["event_ts"]) + timedelta(days=2)
                ).isoformat()
            out.append(row)
        return out

    def _bad_reference(self, good: pa.Table, key: str) -> list[dict] | None:
        n = max(1, round(self.config.bad_rows * good.num_rows)) if self.config.bad_rows > 0 else 0
        if n == 0 or good.num_rows == 0:
            return None
        rows = good.slice(0, min(n, good.num_rows)).to_pylist()
        out = []
        for i, row in enumerate(rows):
            row = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            row = {k: (float(v) if k == "price" and v is not None else v) for k, v in row.items()}
            if i % 2 == 0:
                row[key] = None
            elif "age" in row:
                row["age"] = "unknown"
            else:
                row["price"] = -1.0
            out.append(row)
        return out

    # -- the day loop -----------------------------------------------------------------------
    def days(self) -> Iterator[DayDrop]:
        """Simulate every configured day in order, yielding what each day drops."""
        cfg = self.config
        users_so_far = pa.table({})
        artworks_so_far = pa.table({})
        late: pa.Table | None = None
        for index in range(cfg.days):
            day = cfg.start + timedelta(days=index)
            initial = index == 0
            n_users = cfg.initial_users if initial else cfg.new_users_per_day
            if cfg.scenario == Scenario.demographic_shift and index >= cfg.shift_day:
                n_users *= 3
            n_art = cfg.initial_artworks if initial else cfg.new_artworks_per_day
            updated_users = self._updated_users(day, users_so_far) if not initial else None
            repriced = self._repriced_artworks(day, artworks_so_far) if not initial else None
            users = self._new_users(n_users, index, day, initial)
            artworks = self._new_artworks(n_art, index, day, initial)
            users_so_far = users if initial else pa.concat_tables([users_so_far, users])
            artworks_so_far = artworks if initial else pa.concat_tables([artworks_so_far, artworks])
            events = self._events(index, day, self.users.size)
            is_late = (
                self.rng.random(events.num_rows) < cfg.late_share if index < cfg.days - 1 else None
            )
            on_time = events if is_late is None else events.filter(pa.array(~is_late))
            tomorrow = events.slice(0, 0) if is_late is None else events.filter(pa.array(is_late))
            drop = DayDrop(
                day=day,
                interactions=on_time,
                late_interactions=late if late is not None else events.slice(0, 0),
                bad_interactions=self._bad_interactions(on_time),
                users=users if updated_users is None else pa.concat_tables([users, updated_users]),
                artworks=artworks if repriced is None else pa.concat_tables([artworks, repriced]),
            )
            drop.bad_users = self._bad_reference(users, "user_id") if cfg.bad_rows else None
            drop.bad_artworks = (
                self._bad_reference(artworks, "artwork_id") if cfg.bad_rows else None
            )
            drop.counts = {
                "events": on_time.num_rows + drop.late_interactions.num_rows,
                "late_events": drop.late_interactions.num_rows,
                "bad_events": len(drop.bad_interactions or []),
                "new_users": users.num_rows,
                "updated_users": 0 if updated_users is None else updated_users.num_rows,
                "new_artworks": artworks.num_rows,
                "repriced_artworks": 0 if repriced is None else repriced.num_rows,
            }
            late = tomorrow
            yield drop


class _Population:
    """Column arrays that grow as members join (latent attributes never leave the simulator)."""

    def __init__(self) -> None:
        self.columns: dict[str, np.ndarray] = {}

    @property
    def size(self) -> int:
        return 0 if not self.columns else len(next(iter(self.columns.values())))

    def append(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.columns[name] = (
                values if name not in self.columns else np.concatenate([self.columns[name], values])
            )

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][name]
        except KeyError as missing:
            raise AttributeError(name) from missing


def write_drop(
    drop: DayDrop,
    landing_root: str,
    storage_options: dict[str, str] | None = None,
    file_format: str = "parquet",
) -> list[str]:
    """Write one day's drop into the landing zone (each file atomically); returns the paths."""
    from sands.ingest import landing

    fs, root = landing.filesystem(landing_root, storage_options)
    stamp = drop.day.isoformat()
    events = pa.concat_tables([drop.late_interactions, drop.interactions])
    planned = [
        (f"interactions/{stamp}/events.{file_format}", events),
        (f"users/users-{stamp}.{file_format}", drop.users),
        (f"artworks/artworks-{stamp}.{file_format}", drop.artworks),
        (f"interactions/{stamp}/feed-b.jsonl", drop.bad_interactions),
        (f"users/users-{stamp}-feed-b.jsonl", drop.bad_users),
        (f"artworks/artworks-{stamp}-feed-b.jsonl", drop.bad_artworks),
    ]
    written = []
    for relative, rows in planned:
        if rows is None or len(rows) == 0:
            continue
        path = f"{root.rstrip('/')}/{relative}"
        if isinstance(rows, pa.Table):
            landing.write_table(fs, path, rows)
        else:
            landing.write_records(fs, path, rows)
        written.append(path)
    return written
