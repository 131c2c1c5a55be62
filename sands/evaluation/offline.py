"""Offline evaluation: a temporal split and full-catalogue ranking, overall, by slice and by day.

Every recommender ranks every artwork listed by the split time for every user with a positive in
the evaluation window, using features as of the split (no sampled negatives: those can reverse
conclusions). Artworks a user already converted on before the split are not ranked for them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, reduce
from itertools import pairwise
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sands.evaluation import metrics
from sands.features.dbt_vars import event_weights
from sands.features.engagement import engaged_by_user, engaged_grid
from sands.features.offline import CREATED_TS, FEATURE_TS
from sands.features.pit import point_in_time_join
from sands.models.ranking import GRID_KERNEL_PAIRS, RankerModel, platt_probabilities, side_inputs
from sands.models.segments import SegmentModel

PRIMARY = "ndcg_at_10"
# Registry tag: the newest label day a version's gate judged it on. Monitoring judges it on later
# days only: it was promoted *because* it did well on those, so they flatter it.
USER_DIMENSIONS = ("segment", "user_type", "country")
ITEM_DIMENSION = "artwork_style"


@dataclass(frozen=True)
class EvaluationSpec:
    """Cut-off rank, evaluation window, what counts as a new user, and batch sizes."""

    k: int = 10
    new_user_days: float = 7.0
    popularity_window_days: int = 7
    user_batch: int = 256
    # Users of a batch times the catalogue: a batch's score grid (8 bytes a pair) stays ~32 MB.
    batch_pairs: int = 4_000_000
    reliability_bins: int = 10
    # Full-catalogue ranking costs users x catalogue scores: past this many pairs, a stable hash
    # sample of the labelled users is evaluated (the same users for every recommender)...
    max_scored_pairs: int | None = 10_000_000
    # ...but never fewer than these: a verdict on 42 users (10M pairs of a 235,000-artwork
    # catalogue) could pass no gate, whose intervals are over users.
    min_sampled_users: int = 300

    def user_limit(self, catalogue: int) -> int | None:
        """How many judged users to rank against a catalogue of this size (None: all)."""
        if not self.max_scored_pairs:
            return None
        return max(self.max_scored_pairs // max(catalogue, 1), self.min_sampled_users, 1)

    def batch_users(self, catalogue: int) -> int:
        """Users scored at once against a catalogue of this size."""
        return max(1, min(self.user_batch, self.batch_pairs // max(catalogue, 1)))


class Recommender(Protocol):
    """Anything that scores joined (`user_*`, `artwork_*`) rows."""

    name: str

    def scores(self, rows: pa.Table) -> np.ndarray: ...

    def probabilities(self, rows: pa.Table) -> np.ndarray | None: ...


@runtime_checkable
class GridRecommender(Recommender, Protocol):
    """A recommender that scores users against a whole catalogue without crossing rows."""

    def grid_scores(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray:
        """Scores of shape (users, catalogue), equal to `scores` of `cross_rows`."""
        ...


@dataclass
class RankerRecommender:
    """A trained ranker under a display name (challenger, champion)."""

    name: str
    model: RankerModel
    # The pointwise metrics ask for the scores, then the probabilities, of the same held-out rows:
    # the last rows scored (held, so never mistaken for new ones) and their scores.
    _scored: tuple[pa.Table, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def scores(self, rows: pa.Table) -> np.ndarray:
        if self._scored is None or self._scored[0] is not rows:
            self._scored = (rows, self.model.scores(rows))
        return self._scored[1].copy()

    def probabilities(self, rows: pa.Table) -> np.ndarray | None:
        return platt_probabilities(self.scores(rows), self.model.spec.calibration)

    def grid_scores(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray:
        return self.model.grid_scores(users, setup.catalogue_inputs, setup.engaged_grid(users))

    def grid_scores_at(
        self, users: pa.Table, setup: EvaluationSetup, columns: np.ndarray
    ) -> np.ndarray:
        """`grid_scores` of the catalogue's `columns` only."""
        items = {name: values[columns] for name, values in setup.catalogue_inputs.items()}
        engaged = setup.engaged_grid(users)
        return self.model.grid_scores(
            users, items, None if engaged is None else engaged[:, columns]
        )

    def grid_bounds(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray | None:
        """Per catalogue artwork, a score no user reaches (`RankerModel.score_bounds`); None for
        a model that cannot bound its scores (an ensemble of rankers, say)."""
        bounds = getattr(self.model, "score_bounds", None)
        return (
            None
            if bounds is None
            else bounds(users, setup.catalogue_inputs, setup.engaged_grid(users))
        )


@dataclass
class PopularityRecommender:
    """Recent popularity: weighted event counts of the artwork's trailing window features."""

    window_days: int = 7
    name: str = "popularity"

    def scores(self, rows: pa.Table) -> np.ndarray:
        return popularity_scores(rows, self.window_days, prefix="artwork_")

    def probabilities(self, rows: pa.Table) -> np.ndarray | None:
        return None

    def grid_scores(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray:
        scores = popularity_scores(setup.catalogue, self.window_days, prefix="artwork_")
        return np.tile(scores, (users.num_rows, 1))


def popularity_column(event: str, window_days: int, prefix: str = "") -> str:
    """The feature column counting `event`s over the trailing `window_days` (dbt's naming)."""
    return f"{prefix}n_{event}_{window_days}d"


def popularity_scores(rows: pa.Table, window_days: int, prefix: str = "") -> np.ndarray:
    """Sum over event types of weight x count in the trailing `window_days` (a feature window)."""
    total = np.zeros(rows.num_rows)
    for event, weight in event_weights().items():
        counts = rows[popularity_column(event, window_days, prefix)].cast(pa.float64())
        total += weight * np.nan_to_num(counts.to_numpy(zero_copy_only=False), nan=0.0)
    return total


def label_day_count(examples: pa.Table) -> int:
    """Distinct UTC label days in a training set."""
    if examples.num_rows == 0:
        return 0
    days = pc.cast(examples["label_ts"], pa.timestamp("us", tz="UTC")).cast(pa.date32())
    return len(pc.unique(days))


def split_time(examples: pa.Table, eval_days: int) -> datetime:
    """Midnight UTC starting the last `eval_days` label days."""
    first, last = (pc.min(examples["label_ts"]).as_py(), pc.max(examples["label_ts"]).as_py())
    if last is None:
        raise ValueError("no training examples to split")
    first_eval_day = last.date() - timedelta(days=eval_days - 1)
    if first_eval_day <= first.date():
        days = (last.date() - first.date()).days + 1
        raise ValueError(
            f"the training set covers {days} label day(s); holding out {eval_days} for "
            f"evaluation needs at least {eval_days + 1}"
        )
    return datetime.combine(first_eval_day, time(), tzinfo=UTC)


def evaluation_split(
    examples: pa.Table, min_days: int, min_positives: int, max_days: int, min_users: int = 0
) -> tuple[datetime, int]:
    """The split holding out the newest label days: at least `min_days`, more until the held-out
    days hold `min_positives` positives and `min_users` users with a positive (counted per day:
    the units a per-user verdict averages), at most `max_days` and at most half the label days
    (the rest must be enough to train on). Returns the split and the positives held out."""
    from sands.features.training_store import days_holding

    labelled = examples.select(["label_ts", "user_id"]).filter(pc.equal(examples["label"], 1))
    days = pc.cast(labelled["label_ts"], pa.timestamp("us", tz="UTC")).cast(pa.date32())
    grouped = (
        pa.table({"day": days, "user_id": labelled["user_id"]})
        .group_by("day")
        .aggregate([([], "count_all"), ("user_id", "count_distinct")])
    )
    counts = {row["day"]: row["count_all"] for row in grouped.to_pylist()}
    users = {row["day"]: row["user_id_count_distinct"] for row in grouped.to_pylist()}
    first, last = pc.min(examples["label_ts"]).as_py(), pc.max(examples["label_ts"]).as_py()
    if last is None:
        raise ValueError("no training examples to split")
    span = (last.date() - first.date()).days + 1
    newest_first = [last.date() - timedelta(days=i) for i in range(span)]
    per_day = [counts.get(day, 0) for day in newest_first]
    users_per_day = [users.get(day, 0) for day in newest_first]
    # At most half the label days: a young history must keep enough to train on.
    most = max(min(max_days, span // 2), 1)
    held = days_holding(per_day, min_days, min_positives, most, users_per_day, min_users)
    return split_time(examples, held), sum(per_day[:held])


def temporal_split(examples: pa.Table, split: datetime) -> tuple[pa.Table, pa.Table]:
    """Examples labelled before `split` (training) and from it on (evaluation)."""
    return labelled_between(examples, None, split), labelled_between(examples, split, None)


def positive_pairs(rows: pa.Table) -> dict[str, set[str]]:
    """Each user's positively labelled artworks in `rows`."""
    positives = rows.filter(pc.equal(rows["label"], 1))
    pairs: dict[str, set[str]] = defaultdict(set)
    for user, item in zip(
        positives["user_id"].to_pylist(), positives["artwork_id"].to_pylist(), strict=True
    ):
        pairs[user].add(item)
    return dict(pairs)


class NothingToRank(ValueError):
    """No artwork had features by an evaluation's split: labels older than the feature log
    (a history whose events are all dated before their landing days, say)."""

    day: str = ""  # the label day that could not be ranked, where the caller says


def rankable_days(days: Sequence[date], artwork_features: pa.Table) -> list[date]:
    """The label days by whose midnight some artwork's features were available: a history's
    first label day has none before it, so nothing was ranked then."""
    stamped, created = artwork_features[FEATURE_TS], artwork_features[CREATED_TS]
    available = pc.if_else(pc.fill_null(pc.greater(created, stamped), False), created, stamped)
    first = pc.min(available).as_py()
    return [d for d in days if first is not None and utc_midnight(d) >= first]


def utc_midnight(day: date) -> datetime:
    """The UTC instant a day starts: where its labels begin and what is known by them."""
    return datetime.combine(day, time(), tzinfo=UTC)


# Catalogue rows one join of several evaluation windows gathers at most (a few hundred MB of
# features at the widest catalogue; a join per window was most of judging popularity on 14 days).
JOINED_ROWS = 1_000_000


def entities_as_of(
    ids: list[str], key: str, features: pa.Table, split: datetime, prefix: str
) -> pa.Table:
    """One row per id with its newest feature row at or before `split` (nulls when none)."""
    return entities_as_of_each([(ids, split)], key, features, prefix)[0]


def entities_as_of_each(
    requests: Sequence[tuple[list[str], datetime]], key: str, features: pa.Table, prefix: str
) -> list[pa.Table]:
    """`entities_as_of` for each (ids, time) request, joined in one pass: a join per request
    was most of judging several days (two joins a day, 28 of them on a 14-day window)."""
    ids = [i for wanted, _ in requests for i in wanted]
    # Repeated in numpy: a million datetimes built one by one cost a second.
    at = np.array([t.astimezone(UTC).replace(tzinfo=None) for _, t in requests], "datetime64[us]")
    times = np.repeat(at, [len(wanted) for wanted, _ in requests])
    entities = pa.table(
        {
            key: pa.array(ids, pa.string()),
            "label_ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )
    joined = point_in_time_join(entities, features, key, timedelta(days=3650), prefix=prefix)
    offsets = np.cumsum([0, *(len(wanted) for wanted, _ in requests)]).tolist()
    return [joined.slice(a, b - a) for a, b in pairwise(offsets)]


@dataclass
class EvaluationSetup:
    """What every recommender is evaluated on: the same users, catalogue, labels and slices."""

    split: datetime
    users: pa.Table
    catalogue: pa.Table
    relevant: dict[str, set[str]]
    relevant_by_day: dict[date, dict[str, set[str]]]
    exclude: dict[str, set[str]]
    user_slices: dict[str, dict[str, str]]
    artwork_style: dict[str, str]
    percentile: dict[str, float]
    holdout: pa.Table
    spec: EvaluationSpec = field(default_factory=EvaluationSpec)
    # Each user's events per artwork in the window before the split (the ranker's pair input);
    # None where no events were given: then it is unknown (NaN) to every model.
    engaged: dict[str, dict[str, float]] | None = None

    @cached_property
    def labelled_users(self) -> int:
        """Users with a positive in the holdout: `relevant` is a sample of them past the budget."""
        positives = self.holdout.filter(pc.equal(self.holdout["label"], 1))
        return len(pc.unique(positives["user_id"]))

    @cached_property
    def catalogue_inputs(self) -> dict[str, np.ndarray]:
        """The catalogue's ranker inputs, read once for every recommender and user batch."""
        return side_inputs(self.catalogue, "artwork_")

    @cached_property
    def catalogue_position(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.catalogue["artwork_id"].to_pylist())}

    def engaged_grid(self, users: pa.Table) -> np.ndarray | None:
        """The pair input of `users` against the catalogue, (users, catalogue); None: unknown."""
        if self.engaged is None:
            return None
        ids = users["user_id"].to_pylist()
        return engaged_grid(self.engaged, ids, self.catalogue_position, self.catalogue.num_rows)


def sampled_users(relevant: dict[str, set[str]], limit: int | None) -> dict[str, set[str]]:
    """At most `limit` users, chosen by a stable hash of their id (all of them when fewer)."""
    if limit is None or len(relevant) <= limit:
        return relevant

    def rank(user: str) -> bytes:
        return hashlib.blake2b(user.encode(), digest_size=8).digest()

    return {u: relevant[u] for u in sorted(relevant, key=rank)[:limit]}


def labelled_between(
    examples: pa.Table | ds.Dataset,
    start: datetime | None,
    end: datetime | None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The rows of `examples` labelled in [`start`, `end`) (open where None), in their order,
    `columns` of them when given; from a dataset only those columns, and the row groups that
    can hold such label times, are read."""

    def within(ts):  # a column (a mask) or a field (an expression): the same terms
        terms = [pc.greater_equal(ts, _utc(start))] if start is not None else []
        terms += [pc.less(ts, _utc(end))] if end is not None else []
        return reduce(pc.and_kleene, terms) if terms else None

    if isinstance(examples, ds.Dataset):
        return examples.to_table(columns=columns, filter=within(pc.field("label_ts")))
    mask = within(examples["label_ts"])
    chosen = examples if columns is None else examples.select(columns)
    return chosen if mask is None else chosen.filter(mask)


def _utc(at: datetime) -> pa.Scalar:
    return pa.scalar(at, pa.timestamp("us", tz="UTC"))


def evaluation_setup(
    examples: pa.Table | ds.Dataset,
    user_features: pa.Table,
    artwork_features: pa.Table,
    segments: SegmentModel | None,
    split: datetime,
    spec: EvaluationSpec,
    until: datetime | None = None,
    events: pa.Table | None = None,
) -> EvaluationSetup:
    """Split the examples at `split` and gather users and catalogue as of that time; with `until`,
    the holdout ends before it. `events` (user, artwork, time; `engagement_events`) give the
    pair input as of the split."""
    return next(
        evaluation_setups(
            examples, user_features, artwork_features, segments, [(split, until)], spec, events
        )
    )


def day_windows(days: Sequence[date]) -> list[tuple[datetime, datetime]]:
    """Each label day as an evaluation window: from its UTC midnight to the next."""
    return [(utc_midnight(d), utc_midnight(d) + timedelta(days=1)) for d in days]


def evaluation_setups(
    examples: pa.Table | ds.Dataset,
    user_features: pa.Table,
    artwork_features: pa.Table,
    segments: SegmentModel | None,
    windows: Sequence[tuple[datetime, datetime | None]],
    spec: EvaluationSpec,
    events: pa.Table | None = None,
) -> Iterator[EvaluationSetup]:
    """`evaluation_setup` at each (split, until) window, in order, the users and catalogues of
    several windows gathered in one join per side (at most `JOINED_ROWS` catalogue rows)."""
    listed = sorted(set(artwork_features["artwork_id"].to_pylist()))
    per_join = max(JOINED_ROWS // max(len(listed), 1), 1)
    for first in range(0, len(windows), per_join):
        chunk = windows[first : first + per_join]
        catalogues = entities_as_of_each(
            [(listed, split) for split, _ in chunk], "artwork_id", artwork_features, "artwork_"
        )
        parts = [
            _window(examples, split, until, catalogue, spec)
            for (split, until), catalogue in zip(chunk, catalogues, strict=True)
        ]
        users = entities_as_of_each(
            [(sorted(relevant), split) for split, _, _, relevant in parts],
            "user_id",
            user_features,
            "user_",
        )
        for (split, catalogue, holdout, relevant), people in zip(parts, users, strict=True):
            # Training rows only say what each user had converted on: three columns, not the
            # feature rows (filtering those costs seconds at a million rows).
            train = labelled_between(examples, None, split, ["user_id", "artwork_id", "label"])
            yield _setup(split, catalogue, train, holdout, relevant, people, segments, spec, events)


def _window(
    examples: pa.Table | ds.Dataset,
    split: datetime,
    until: datetime | None,
    catalogue: pa.Table,
    spec: EvaluationSpec,
) -> tuple[datetime, pa.Table, pa.Table, dict[str, set[str]]]:
    """A window's catalogue (what has features by the split), holdout and judged users."""
    catalogue = catalogue.filter(pc.is_valid(catalogue["artwork_feature_date"]))
    if catalogue.num_rows == 0:
        raise NothingToRank(
            f"no artwork has features as of {split:%Y-%m-%d %H:%M} UTC: there is nothing to "
            "rank (the artwork feature log holds no snapshot before that time)"
        )
    holdout = labelled_between(examples, split, until)
    limit = spec.user_limit(catalogue.num_rows)
    return split, catalogue, holdout, sampled_users(positive_pairs(holdout), limit)


def _setup(
    split: datetime,
    catalogue: pa.Table,
    train: pa.Table,
    holdout: pa.Table,
    relevant: dict[str, set[str]],
    users: pa.Table,
    segments: SegmentModel | None,
    spec: EvaluationSpec,
    events: pa.Table | None,
) -> EvaluationSetup:
    """One window's setup from its parts."""
    by_day: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    positives = holdout.filter(pc.equal(holdout["label"], 1))
    for user, item, ts in zip(
        positives["user_id"].to_pylist(),
        positives["artwork_id"].to_pylist(),
        positives["label_ts"].to_pylist(),
        strict=True,
    ):
        if user in relevant:
            by_day[ts.date()][user].add(item)
    return EvaluationSetup(
        split=split,
        users=users,
        catalogue=catalogue,
        relevant=relevant,
        relevant_by_day={d: dict(u) for d, u in sorted(by_day.items())},
        exclude=positive_pairs(train),
        user_slices=user_slices(users, segments, spec.new_user_days),
        artwork_style=dict(
            zip(
                catalogue["artwork_id"].to_pylist(),
                catalogue["artwork_style"].to_pylist(),
                strict=True,
            )
        ),
        percentile=metrics.popularity_percentiles(
            dict(
                zip(
                    catalogue["artwork_id"].to_pylist(),
                    popularity_scores(catalogue, spec.popularity_window_days, "artwork_"),
                    strict=True,
                )
            )
        ),
        holdout=holdout,
        spec=spec,
        engaged=None if events is None else engaged_by_user(events, relevant, split),
    )


def user_slices(
    users: pa.Table, segments: SegmentModel | None, new_user_days: float
) -> dict[str, dict[str, str]]:
    """Slice value per user for each user dimension: segment, new/returning, country."""
    ids = users["user_id"].to_pylist()
    tenure = users["user_tenure_days"].to_pylist()
    kinds = ["new" if t is None or t < new_user_days else "returning" for t in tenure]
    countries = [c or "unknown" for c in users["user_country"].to_pylist()]
    slices = {
        "user_type": dict(zip(ids, kinds, strict=True)),
        "country": dict(zip(ids, countries, strict=True)),
    }
    if segments is not None:
        assigned = segments.assign(users, prefix="user_")
        slices["segment"] = {u: f"segment {s}" for u, s in zip(ids, assigned, strict=True)}
    return slices


def cross_rows(users: pa.Table, catalogue: pa.Table) -> pa.Table:
    """Every (user, artwork) pair, users outer: row u * |catalogue| + i is user u, artwork i."""
    n_users, n_items = users.num_rows, catalogue.num_rows
    left = users.take(pa.array(np.repeat(np.arange(n_users), n_items)))
    right = catalogue.take(pa.array(np.tile(np.arange(n_items), n_users)))
    columns = {name: left[name] for name in left.column_names}
    columns.update({name: right[name] for name in right.column_names if name not in columns})
    return pa.table(columns)


def _batch_scores(recommender: Recommender, users: pa.Table, setup: EvaluationSetup) -> np.ndarray:
    if isinstance(recommender, GridRecommender):
        return recommender.grid_scores(users, setup)
    scores = recommender.scores(cross_rows(users, setup.catalogue))
    return np.asarray(scores, dtype=np.float64).reshape(users.num_rows, setup.catalogue.num_rows)


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k best columns, best first, ties in column order: the first k of a stable sort
    of the negated scores, without sorting whole rows (a sort of every row was seconds of an
    evaluation at 4k artworks)."""
    negated = -scores
    if k >= scores.shape[1] or np.isnan(negated).any():
        return np.argsort(negated, axis=1, kind="stable")[:, :k]
    kth = np.partition(negated, k - 1, axis=1)[:, k - 1]
    out = np.empty((len(scores), k), np.int64)
    for row, (values, limit) in enumerate(zip(negated, kth, strict=True)):
        # Every column tied with the k-th is a candidate, in column order, so the stable sort of
        # the candidates orders ties as the sort of the whole row would.
        candidates = np.flatnonzero(values <= limit)
        out[row] = candidates[np.argsort(values[candidates], kind="stable")[:k]]
    return out


def top_k(
    recommender: Recommender,
    setup: EvaluationSetup,
    allowed: Mapping[str, Collection[str]] | None = None,
) -> dict[str, list[str]]:
    """Each user's top k catalogue artworks, best first; ties go to the smaller artwork id. With
    `allowed`, each user's list holds only their allowed artworks (and may be shorter than k)."""
    return scored_top_k(recommender, setup, allowed)[0]


def scored_top_k(
    recommender: Recommender,
    setup: EvaluationSetup,
    allowed: Mapping[str, Collection[str]] | None = None,
    wanted: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, list[str]], dict[str, dict[str, float]]]:
    """`top_k`, and with `wanted` each user's scores of their listed and wanted catalogue
    artworks (as the model scored them, before exclusions): what a click model calibrates on."""
    k = setup.spec.k
    items = np.asarray(setup.catalogue["artwork_id"].to_pylist(), dtype=object)
    position = {item: i for i, item in enumerate(items)}
    ranked: dict[str, list[str]] = {}
    scored: dict[str, dict[str, float]] = {}
    step = setup.spec.batch_users(len(items))
    bounds = _score_bounds(recommender, setup)
    order = None if bounds is None else np.argsort(-bounds, kind="stable")
    for start in range(0, setup.users.num_rows, step):
        batch = setup.users.slice(start, step)
        users = batch["user_id"].to_pylist()
        eligible = np.ones((len(users), len(items)), bool)
        for row, user in enumerate(users):
            if allowed is not None:
                eligible[row] = False
                eligible[row, [position[i] for i in allowed.get(user, ()) if i in position]] = True
            seen = [position[i] for i in setup.exclude.get(user, ()) if i in position]
            eligible[row, seen] = False
        wished = [[position[i] for i in (wanted or {}).get(u, ()) if i in position] for u in users]
        if order is None:
            raw = np.array(_batch_scores(recommender, batch, setup), dtype=np.float64)
        else:
            raw = _pruned_scores(recommender, batch, setup, (bounds, order), eligible, wished)
        scores = np.where(eligible, raw, -np.inf)
        chosen = best_first(scores, k)
        if order is not None and wanted is not None:
            # Only a user with fewer than k eligible artworks lists unscored ones.
            listed = raw[np.arange(len(users))[:, None], chosen]
            missing = np.unique(chosen[np.isneginf(listed)])
            if len(missing):
                raw[:, missing] = recommender.grid_scores_at(batch, setup, missing)
        for row, user in enumerate(users):
            mine = chosen[row]
            if allowed is not None:
                mine = mine[np.isfinite(scores[row, mine])]
            ranked[user] = list(items[mine])
            if wanted is not None:
                at = dict.fromkeys([*mine.tolist(), *wished[row]])
                scored[user] = {items[j]: float(raw[row, j]) for j in at}
    return ranked, scored


@runtime_checkable
class BoundedRecommender(Protocol):
    """A recommender that bounds each artwork's score over all users, and scores a few."""

    def grid_bounds(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray | None: ...

    def grid_scores_at(
        self, users: pa.Table, setup: EvaluationSetup, columns: np.ndarray
    ) -> np.ndarray: ...


def _score_bounds(recommender: Recommender, setup: EvaluationSetup) -> np.ndarray | None:
    """The recommender's bounds where ranking the whole catalogue for every user would take the
    grid kernel (below that, scoring everything is as quick); None: score everything."""
    pairs = setup.users.num_rows * setup.catalogue.num_rows
    bounded = isinstance(recommender, BoundedRecommender) and setup.spec.k > 0
    if not bounded or pairs < GRID_KERNEL_PAIRS:
        return None
    return recommender.grid_bounds(setup.users.slice(0, 1), setup)


def _pruned_scores(
    recommender: BoundedRecommender,
    users: pa.Table,
    setup: EvaluationSetup,
    bounded: tuple[np.ndarray, np.ndarray],
    eligible: np.ndarray,
    wished: list[list[int]],
) -> np.ndarray:
    """The batch's scores where they can matter, -inf elsewhere: each user's eligible artworks
    by falling bound until the next bound is below the user's k-th best score (twice as far
    each time it is not), and the wished ones. Nothing left unscored could reach the k-th place
    or tie with it, so the top k is the top k of every score; at 235,061 artworks about 20 a
    user are scored, not all (`docs/benchmarks.md`)."""
    bounds, order = bounded
    k = setup.spec.k
    raw = np.full(eligible.shape, -np.inf)
    scored = np.zeros(eligible.shape[1], bool)
    candidates = [order[row[order]] for row in eligible]
    reach = [2 * k] * len(candidates)
    pending = list(range(len(candidates)))
    extra = np.asarray([j for row in wished for j in row], np.int64)
    while pending:
        columns = np.unique(np.concatenate([extra, *(candidates[u][: reach[u]] for u in pending)]))
        columns = columns[~scored[columns]]
        if len(columns):
            raw[:, columns] = recommender.grid_scores_at(users, setup, columns)
            scored[columns] = True
        extra, still = extra[:0], []
        for u in pending:
            mine, m = candidates[u], reach[u]
            if m < len(mine) and bounds[mine[m]] >= np.partition(raw[u, mine[:m]], m - k)[m - k]:
                reach[u] = 2 * m
                still.append(u)
        pending = still
    return raw


@dataclass(frozen=True)
class SliceResult:
    """A metric on one slice of users (or of relevant artworks)."""

    dimension: str
    value: str
    users: int
    ndcg: float
    recall: float


@dataclass
class Evaluation:
    """Everything measured for one recommender."""

    name: str
    overall: dict[str, float]
    pointwise: dict[str, float]
    reliability: list[metrics.ReliabilityBin]
    slices: list[SliceResult]
    by_day: list[tuple[date, int, float]]
    recommendations: dict[str, list[str]] = field(repr=False, default_factory=dict)
    version: int | None = None
    # NDCG@k per evaluated user: what paired comparisons (the gate, the serving guard) resample.
    user_ndcg: dict[str, float] = field(repr=False, default_factory=dict)

    @property
    def positives(self) -> int:
        """Relevant (user, artwork) pairs behind the ranking metrics."""
        return int(self.overall.get("positives", 0))

    @property
    def users(self) -> int:
        return int(self.overall.get("users", 0))

    def slice_map(self) -> dict[tuple[str, str], SliceResult]:
        return {(s.dimension, s.value): s for s in self.slices}


def _mean(values: Sequence[float] | np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _per_user(
    ranked: dict[str, list[str]], relevant: dict[str, set[str]], k: int
) -> tuple[list[str], dict[str, np.ndarray]]:
    users = [u for u in relevant if u in ranked]
    per_user = metrics.ranking_metrics_per_user(
        [ranked[u] for u in users], [relevant[u] for u in users], k
    )
    return users, per_user


def ranking_metrics(
    ranked: dict[str, list[str]], relevant: dict[str, set[str]], k: int
) -> dict[str, float]:
    """Mean NDCG, recall, MAP and hit rate at k over users with relevant items."""
    users, per_user = _per_user(ranked, relevant, k)
    return _means(per_user, len(users), k)


def _means(per_user: dict[str, np.ndarray], users: int, k: int) -> dict[str, float]:
    return {
        f"ndcg_at_{k}": _mean(per_user["ndcg"]),
        f"recall_at_{k}": _mean(per_user["recall"]),
        f"map_at_{k}": _mean(per_user["map"]),
        f"hit_rate_at_{k}": _mean(per_user["hit"]),
        "users": float(users),
    }


def _slices(setup: EvaluationSetup, ranked: dict[str, list[str]]) -> list[SliceResult]:
    k = setup.spec.k
    results = []
    for dimension, labels in setup.user_slices.items():
        groups: dict[str, dict[str, set[str]]] = defaultdict(dict)
        for user, items in setup.relevant.items():
            groups[labels.get(user, "unknown")][user] = items
        for value, relevant in sorted(groups.items()):
            m = ranking_metrics(ranked, relevant, k)
            results.append(
                SliceResult(dimension, value, len(relevant), m[f"ndcg_at_{k}"], m[f"recall_at_{k}"])
            )
    by_style: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for user, items in setup.relevant.items():
        for item in items:
            by_style[setup.artwork_style.get(item, "unlisted")][user].add(item)
    for value, relevant in sorted(by_style.items()):
        m = ranking_metrics(ranked, relevant, k)
        results.append(
            SliceResult(
                ITEM_DIMENSION, value, len(relevant), m[f"ndcg_at_{k}"], m[f"recall_at_{k}"]
            )
        )
    return results


def pointwise_metrics(
    recommender: Recommender, holdout: pa.Table, bins: int
) -> tuple[dict[str, float], list[metrics.ReliabilityBin]]:
    """AUC on the held-out labelled rows; log loss, Brier and reliability when calibrated."""
    labels = holdout["label"].to_numpy(zero_copy_only=False).astype(float)
    result = {"auc": metrics.roc_auc(labels, recommender.scores(holdout))}
    probabilities = recommender.probabilities(holdout)
    if probabilities is None:
        return result, []
    result["log_loss"] = metrics.log_loss(labels, probabilities)
    result["brier"] = metrics.brier_score(labels, probabilities)
    return result, metrics.reliability_curve(labels, probabilities, bins)


def evaluate(
    recommender: Recommender,
    setup: EvaluationSetup,
    ranked: dict[str, list[str]] | None = None,
) -> Evaluation:
    """Rank the catalogue for every evaluation user (unless `ranked` already holds its `top_k`
    lists) and measure the result."""
    k = setup.spec.k
    ranked = top_k(recommender, setup) if ranked is None else ranked
    users, per_user = _per_user(ranked, setup.relevant, k)
    overall = _means(per_user, len(users), k)
    overall["positives"] = float(sum(len(items) for items in setup.relevant.values()))
    overall["catalogue_coverage"] = metrics.catalogue_coverage(
        list(ranked.values()), setup.catalogue.num_rows
    )
    overall["popularity_bias"] = metrics.popularity_bias(list(ranked.values()), setup.percentile)
    pointwise, reliability = pointwise_metrics(
        recommender, setup.holdout, setup.spec.reliability_bins
    )
    by_day = []
    for day, relevant in setup.relevant_by_day.items():
        m = ranking_metrics(ranked, relevant, k)
        by_day.append((day, len(relevant), m[f"ndcg_at_{k}"]))
    return Evaluation(
        name=recommender.name,
        overall=overall,
        pointwise=pointwise,
        reliability=reliability,
        slices=_slices(setup, ranked),
        by_day=by_day,
        recommendations=ranked,
        user_ndcg=dict(zip(users, per_user["ndcg"].tolist(), strict=True)),
    )
