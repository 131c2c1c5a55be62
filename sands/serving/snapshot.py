"""What the recommendation service holds in memory, and how it answers one request.

A `ServingSnapshot` is immutable: the models of both arms, the catalogue's precomputed artwork
inputs, neighbours, segment favourites and popularity. The service swaps whole snapshots, so a
request sees one consistent state however often models or data change under it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.features.engagement import ENGAGED_INPUT, engaged_map
from sands.features.offline import ARTWORK_FEATURES, FEATURE_TS, latest_snapshot
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import USERS
from sands.lake import delta
from sands.lake.timetravel import read_as_of
from sands.models import model_store
from sands.models.aliases import CHALLENGER, CHAMPION, CHAMPION_POLICY, POPULARITY_POLICY
from sands.models.candidates import candidates
from sands.models.ranking import (
    CATEGORY_INPUTS,
    NUMERIC_INPUTS,
    SHARE_INPUTS,
    RankerModel,
    feature_matrix,
    input_columns,
)
from sands.models.segments import SegmentModel
from sands.serving.exploration import Exploration, Uniform
from sands.serving.prediction_log import POPULAR, RANKED, sources_key

Vector = Mapping[str, object]


class SegmentCache:
    """Segment assignments per (user, feature time): a user's vector changes once per feature
    build, while assigning costs as much as the rest of the feature matrix."""

    def __init__(self, model: SegmentModel | None, capacity: int = 200_000) -> None:
        self.model = model
        self.capacity = capacity
        self._seen: dict[tuple[object, object], int] = {}

    def segment(self, vector: Vector) -> int | None:
        if self.model is None:
            return None
        key = (vector.get("user_id"), vector.get("feature_ts"))
        found = self._seen.get(key)
        if found is None:
            if len(self._seen) >= self.capacity:
                self._seen.clear()
            found = self._seen[key] = int(self.model.assign(vector)[0])
        return found


def canary_bucket(user_id: str) -> float:
    """A stable position in [0, 1) per user: users below the canary share see the challenger."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def arm_for(user_id: str, canary_share: float) -> str:
    """The arm serving this user under the current canary share."""
    return CHALLENGER if canary_bucket(user_id) < canary_share else CHAMPION


@dataclass(frozen=True)
class Catalogue:
    """Every listed artwork's ranker inputs as arrays, so a request only indexes them."""

    ids: list[str]
    index: dict[str, int]
    inputs: dict[str, np.ndarray]

    @classmethod
    def from_vectors(cls, vectors: pa.Table) -> Catalogue:
        """From the latest artwork feature vectors (unprefixed columns, as the feature log)."""
        ids = vectors["artwork_id"].to_pylist()
        inputs: dict[str, np.ndarray] = {}
        for name in (*NUMERIC_INPUTS, *CATEGORY_INPUTS):
            if name.startswith("artwork_"):
                stored = name.removeprefix("artwork_")
                if stored not in vectors.column_names and name in SHARE_INPUTS:
                    continue  # a log published before these existed: they read as 0
                column = vectors[stored]
                numeric = name in NUMERIC_INPUTS
                values = column.cast(pa.float64()) if numeric else column
                inputs[name] = values.to_numpy(zero_copy_only=False)
        return cls(ids=ids, index={a: i for i, a in enumerate(ids)}, inputs=inputs)

    def rows(self, artwork_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of the known ids, in order (unknown ids are dropped)."""
        return np.fromiter((self.index[a] for a in artwork_ids if a in self.index), np.int64)

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[rows] for name, values in self.inputs.items()}


def user_inputs(vector: Vector) -> dict[str, object]:
    """A user's ranker inputs from their online feature vector (scalars, broadcast over rows)."""
    inputs: dict[str, object] = {}
    for name in NUMERIC_INPUTS:
        if name.startswith("user_"):
            value = vector.get(name.removeprefix("user_"))
            inputs[name] = np.nan if value is None else float(value)
    for name in CATEGORY_INPUTS:
        if name.startswith("user_"):
            inputs[name] = vector.get(name.removeprefix("user_"))
    return inputs


@dataclass(frozen=True)
class ArmModel:
    """A registered ranker version loaded for one arm."""

    version: int
    ranker: RankerModel
    segments: SegmentCache
    columns: np.ndarray | None = None  # the model's inputs within feature_matrix's layout
    registered_at: datetime | None = None  # when the version was registered

    @classmethod
    def of(
        cls, version: int, ranker: RankerModel, registered_at: datetime | None = None
    ) -> ArmModel:
        # One thread per prediction: 200 rows are too few to split, and concurrent requests (and
        # worker processes) already use every core.
        ranker.booster.set_param({"nthread": 1})
        segments = SegmentCache(ranker.spec.segments())
        k = segments.model.k if segments.model else 0
        columns = input_columns(ranker.spec.features, k)
        return cls(version, ranker, segments, columns, registered_at)

    def inputs(
        self,
        vector: Vector,
        catalogue: Catalogue,
        rows: np.ndarray,
        engaged: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """The model input matrix for one user against catalogue rows; `engaged`: the user's
        events per artwork (`engaged_map`; None: unknown)."""
        k = self.segments.model.k if self.segments.model else 0
        raw = {**user_inputs(vector), **catalogue.take(rows)}
        if engaged is not None:
            ids = catalogue.ids
            raw[ENGAGED_INPUT] = np.array([engaged.get(ids[r], 0.0) for r in rows], np.float64)
        matrix = feature_matrix(raw, len(rows), self.segments.segment(vector), k)
        return matrix if self.columns is None else matrix[:, self.columns]

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        """Ranking scores of model-input rows."""
        return self.ranker.margins(matrix)

    def scores(
        self,
        vector: Vector,
        catalogue: Catalogue,
        rows: np.ndarray,
        engaged: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Ranking scores (margins) for one user against catalogue rows."""
        return self.margins(self.inputs(vector, catalogue, rows, engaged))


@dataclass(frozen=True)
class ServingData:
    """Everything besides the models: catalogue, neighbours, segments, popularity, known users."""

    catalogue: Catalogue
    neighbours: dict[str, list[str]]
    popular: list[str]
    popular_scores: list[float]
    segments: SegmentCache
    segment_top: dict[int, list[str]]
    known_users: frozenset[str]
    versions: dict[str, int] = field(default_factory=dict)
    features_as_of: datetime | None = None  # the newest feature_ts of the catalogue's vectors
    sources: str | None = None  # `versions` as the prediction log records them


def data_versions(lake_root: str, storage_options: dict[str, str] | None = None) -> dict[str, int]:
    """The Delta versions `ServingData` is built from (-1 when a table does not exist yet)."""
    uris = {
        "artwork_features": ARTWORK_FEATURES.uri(lake_root),
        "users": bronze_uri(lake_root, USERS),
        **{
            name: model_store.model_uri(lake_root, name)
            for name in (
                model_store.ARTWORK_SIMILARITY,
                model_store.POPULARITY,
                model_store.USER_SEGMENTS,
                model_store.SEGMENT_FAVOURITES,
            )
        },
    }
    versions = {}
    for name, uri in uris.items():
        table = delta.open_table(uri, storage_options)
        versions[name] = table.version() if table is not None else -1
    return versions


def load_serving_data(
    lake_root: str,
    storage_options: dict[str, str] | None = None,
    versions: Mapping[str, int] | None = None,
) -> ServingData:
    """Read the catalogue, neighbours, segments, favourites, popularity and user ids: the latest,
    or the Delta `versions` (`data_versions`) an earlier snapshot was built from."""
    versions = dict(versions) if versions is not None else data_versions(lake_root, storage_options)
    missing = [name for name, version in versions.items() if version < 0]
    if missing:
        raise FileNotFoundError(f"nothing to serve yet; materialize: {', '.join(missing)}")

    def model_table(name: str) -> pa.Table:
        uri = model_store.model_uri(lake_root, name)
        return read_as_of(uri, versions[name], storage_options=storage_options)[0]

    vectors, _ = latest_snapshot(
        ARTWORK_FEATURES.uri(lake_root),
        ARTWORK_FEATURES.key,
        versions["artwork_features"],
        storage_options,
    )
    similar = model_table(model_store.ARTWORK_SIMILARITY)
    popular = model_table(model_store.POPULARITY).sort_by("rank")
    favourites = model_table(model_store.SEGMENT_FAVOURITES)
    segment_model, _ = model_store.read_segment_model(
        lake_root, versions[model_store.USER_SEGMENTS], storage_options
    )
    users, _ = read_as_of(
        bronze_uri(lake_root, USERS), versions["users"], None, ["user_id"], storage_options
    )
    return ServingData(
        catalogue=Catalogue.from_vectors(vectors),
        neighbours=dict(
            zip(
                similar["artwork_id"].to_pylist(),
                similar["neighbour_ids"].to_pylist(),
                strict=True,
            )
        ),
        popular=popular["artwork_id"].to_pylist(),
        popular_scores=popular["score"].to_pylist(),
        segments=SegmentCache(segment_model),
        segment_top=dict(
            zip(
                favourites["segment"].to_pylist(),
                favourites["artwork_ids"].to_pylist(),
                strict=True,
            )
        ),
        known_users=frozenset(users["user_id"].to_pylist()),
        versions=versions,
        features_as_of=(
            pc.max(vectors[FEATURE_TS]).as_py() if FEATURE_TS in vectors.column_names else None
        ),
        sources=sources_key(versions),
    )


@dataclass(frozen=True)
class ServingSnapshot:
    """One consistent state of the service: both arms' models, the canary share, what the
    champion arm serves (its model, or popularity while the serving guard says so) and the data."""

    data: ServingData
    champion: ArmModel | None
    challenger: ArmModel | None
    canary_share: float
    policy: str = CHAMPION_POLICY

    def model_for(self, arm: str) -> tuple[str, ArmModel | None]:
        """The arm actually serving and its model (the champion when there is no challenger)."""
        if arm == CHALLENGER and self.challenger is not None:
            return CHALLENGER, self.challenger
        return CHAMPION, self.champion


@dataclass(frozen=True)
class Recommendation:
    """A served list and where it came from."""

    artwork_ids: list[str]
    scores: list[float]
    arm: str
    model_version: int | None
    strategy: str
    propensities: list[float] | None = None  # None: every item was certain
    explored: list[bool] | None = None


def popular_fallback(
    data: ServingData, k: int, exclude: Collection[str]
) -> list[tuple[str, float]]:
    """The popularity list serving falls back to: the k most popular artworks not in `exclude`,
    with their scores."""
    pairs = zip(data.popular, data.popular_scores, strict=True)
    return list(itertools.islice(((a, float(s)) for a, s in pairs if a not in exclude), k))


def _popularity(data: ServingData, arm: str, k: int, exclude: set[str]) -> Recommendation:
    chosen = popular_fallback(data, k, exclude)
    return Recommendation([a for a, _ in chosen], [s for _, s in chosen], arm, None, POPULAR)


def candidate_ids(
    data: ServingData,
    segment: int | None,
    seeds: Sequence[str],
    converted: Collection[str],
    total: int,
) -> list[str]:
    """The user's candidates that are listed: similarity, segment and popularity interleaved."""
    segment_top = data.segment_top.get(segment, []) if segment is not None else []
    pool = candidates(seeds, converted, data.neighbours, segment_top, data.popular, total)
    return [a for a in pool if a in data.catalogue.index]


def candidate_rows(
    data: ServingData, vector: Vector, seeds: Sequence[str], converted: set[str], total: int
) -> np.ndarray:
    """Catalogue rows of the user's candidates."""
    segment = data.segments.segment(vector)
    return data.catalogue.rows(candidate_ids(data, segment, seeds, converted, total))


def recommend(
    snapshot: ServingSnapshot,
    user_id: str,
    vector: Vector | None,
    history: Vector | None,
    k: int,
    total_candidates: int,
    exploration: Exploration | None = None,
    rng: Uniform | None = None,
) -> Recommendation:
    """Top-k artworks for one user: the arm's model ranks the user's candidates, or, without a
    model or a feature vector (new since the last build), the popularity list. With
    `exploration` and an `rng`, ranked lists explore some slots and carry each item's
    propensity."""
    data = snapshot.data
    arm, model = snapshot.model_for(arm_for(user_id, snapshot.canary_share))
    seeds = list(history.get("seeds") or []) if history else []
    converted = set(history.get("converted") or []) if history else set()
    guarded = arm == CHAMPION and snapshot.policy == POPULARITY_POLICY
    # The fallback is the popularity list every challenger is judged against, so a replay's
    # "popularity served" is what users saw; segment favourites alone lost to it (docs/serving.md).
    if vector is None or guarded or model is None:
        return _popularity(data, arm, k, converted)
    # Without recent engagement there are no seeds: the model ranks segment favourites and
    # popularity, as the gate judged it on such users.
    rows = candidate_rows(data, vector, seeds, converted, total_candidates)
    if not len(rows):  # every candidate converted on or delisted
        return _popularity(data, arm, k, converted)
    engaged = engaged_map(history)
    scores = model.scores(vector, data.catalogue, rows, engaged)
    order = np.argsort(-scores, kind="stable")
    if exploration is None or rng is None or not exploration.active(len(order), k):
        top = order[:k]
        ids = [data.catalogue.ids[rows[i]] for i in top]
        return Recommendation(ids, [float(scores[i]) for i in top], arm, model.version, RANKED)
    ranked = order[: k + exploration.pool]
    ids = data.catalogue.ids
    score_of = dict(
        zip([ids[r] for r in rows[ranked].tolist()], scores[ranked].tolist(), strict=True)
    )
    known = data.catalogue.index
    popular = (a for a in data.popular if a in known and a not in converted)
    shown = exploration.show(
        list(score_of), k, rng, list(itertools.islice(popular, exploration.popular))
    )
    unscored = [a for a in shown.artwork_ids if a not in score_of]  # popular, not a candidate
    if unscored:
        extra = data.catalogue.rows(unscored)
        found = model.scores(vector, data.catalogue, extra, engaged)
        score_of |= {data.catalogue.ids[r]: float(f) for r, f in zip(extra, found, strict=True)}
    return Recommendation(
        shown.artwork_ids,
        [score_of[a] for a in shown.artwork_ids],
        arm,
        model.version,
        RANKED,
        shown.propensities,
        shown.explored,
    )
