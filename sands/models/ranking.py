"""The ranker: features from point-in-time rows, XGBoost learning-to-rank, Platt calibration.

`rank:ndcg` optimises the order within a query group, here one user on one day, which is what the
service does: order candidates for one user now. Its scores are not probabilities, so a
two-parameter logistic (Platt) map fitted on the training scores gives calibrated probabilities
for the pointwise view (AUC is unaffected; log loss and Brier need it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sands.engines.cores import usable_cores
from sands.features.dbt_vars import event_weights
from sands.features.engagement import ENGAGED_INPUT
from sands.models.segments import SegmentModel

if TYPE_CHECKING:
    from datetime import datetime

    import xgboost as xgb

    from sands.models.grid_scoring import PaddedTrees

# Heavy-tailed counts and amounts enter as log1p; rates, recencies and small counts as they are.
LOG_FEATURES = (
    "user_n_view_7d",
    "user_n_click_7d",
    "user_n_favourite_28d",
    "user_n_purchase_28d",
    "user_spend_28d",
    "user_tenure_days",
    "artwork_n_view_1d",
    "artwork_n_click_1d",
    "artwork_n_view_7d",
    "artwork_n_click_7d",
    "artwork_n_favourite_7d",
    "artwork_n_purchase_28d",
    "artwork_revenue_28d",
    "artwork_price",
    "artwork_age_days",
)
PLAIN_FEATURES = (
    "user_active_days_28d",
    "user_days_since_view",
    "user_days_since_favourite",
    "user_days_since_purchase",
    "user_age",
    "artwork_click_rate_7d",
    "artwork_favourite_rate_7d",
    "artwork_purchase_rate_28d",
    "artwork_n_tags",
    "artwork_n_colours",
)
# Cross features; the affinities are constrained to raise scores (see `monotone_constraints`).
# `declared_style_match`: the artwork's style is the one the user declared (dbt's
# `declared_style`), which is all there is to know about a newcomer's taste. `engaged_before`:
# log1p of the user's own events on the artwork (`sands.features.engagement`), the one input of
# the pair itself; NaN where it is not known (rows of training sets written before it).
CROSS_FEATURES = (
    "style_affinity",
    "medium_affinity",
    "style_match",
    "price_vs_spend",
    "declared_style_match",
    "engaged_before",
)
INCREASING = ("style_affinity", "medium_affinity")
# Having engaged with an artwork may only lower its score: a list is for what the user would not
# find again on their own. Left free, the simulator's returning buyers taught the trees to favour
# it and a new trend lost 7.6 % on one seed (docs/models.md, the user's own events).
DECREASING = ("engaged_before",)
# What is trending, from the artwork's own windowed counts: engagement-weighted popularity (the
# baseline's score, so the ranker can learn it rather than be judged against it) and how the last
# day compares with the 7- and 28-day daily rates (log ratios: scale-free across volumes).
TREND_FEATURES = (
    "popularity_1d",
    "popularity_7d",
    "conversions_1d",
    "conversion_velocity_7d",
    "conversion_velocity_28d",
    "view_velocity_7d",
)
# The input a ranker's margin starts from, times `RankerParams.popularity_prior`: log1p of the
# artwork's 7-day engagement-weighted popularity, the popularity baseline's own order.
PRIOR_INPUT = "popularity_7d"
# Whether the artwork's style and medium are trending: their share of all conversions over the
# last day and week (dbt), and the day against the week. Less noisy than one artwork's counts,
# so a tail artwork of a rising style rises with it.
SHARE_FEATURES = (
    "style_share_1d",
    "style_share_7d",
    "style_trend",
    "medium_share_1d",
    "medium_share_7d",
    "medium_trend",
)
# The trend and share inputs, which `RankerConfig.trend_inputs: false` leaves out. At 20,000
# events/day they measured within noise to slightly worse (docs/models.md), but without them the
# small CI taste-shift (3,000 events/day) served worse than popularity: kept on at low volume.
TRENDING_INPUTS = (*TREND_FEATURES, *SHARE_FEATURES)
SHARE_INPUTS = tuple(
    f"artwork_{attribute}_conversion_share_{days}d"
    for attribute in ("style", "medium")
    for days in (1, 7)
)
CONVERSIONS = ("favourite", "purchase")
_WINDOWS = (1, 7, 28)


def feature_names(segments: int) -> list[str]:
    """Model input columns, in order, for a segment model with `segments` segments."""
    one_hot = [f"segment_{s}" for s in range(segments)]
    return [
        *LOG_FEATURES,
        *PLAIN_FEATURES,
        *CROSS_FEATURES,
        *TREND_FEATURES,
        *SHARE_FEATURES,
        *one_hot,
    ]


# Raw inputs the features are computed from: numbers, and the categories the crosses compare.
NUMERIC_INPUTS = tuple(
    dict.fromkeys(
        [
            *LOG_FEATURES,
            *PLAIN_FEATURES,
            *("user_top_style_share", "user_top_medium_share", "user_n_purchase_28d"),
            *("user_spend_28d", "artwork_price"),
            *(f"artwork_n_{e}_{d}d" for e in event_weights() for d in _WINDOWS),
            *SHARE_INPUTS,
            ENGAGED_INPUT,
        ]
    )
)
CATEGORY_INPUTS = (
    "user_top_style",
    "user_top_medium",
    "user_declared_style",
    "artwork_style",
    "artwork_medium",
)
# Category inputs that feature logs published before they existed lack: they read as unknown.
LATER_CATEGORY_INPUTS = ("user_declared_style",)
Inputs = Mapping[str, "np.ndarray | float | str | None"]


def raw_inputs(rows: pa.Table) -> dict[str, np.ndarray]:
    """The columns `feature_matrix` reads, as numpy (numbers as float64, categories as objects)."""
    return side_inputs(rows, "")


def _same(left: object, right: object) -> np.ndarray:
    # Missing never matches missing, as SQL's NULL = NULL is not true.
    return (left == right) & pd.notna(left) & pd.notna(right)


def feature_matrix(
    inputs: Inputs, rows: int, segment: np.ndarray | int | None, segments: int
) -> np.ndarray:
    """Model inputs (float32, `feature_names(segments)` order) for `rows` rows of raw inputs.

    Any input may be a scalar (one user's value against many artworks), so training, evaluation
    and serving all compute features here, and score identically.
    """
    width = len(feature_names(0))
    out = np.empty((rows, width + segments), np.float32)
    # One block per kind, transformed in one pass: serving calls this once per request.
    logged = np.empty((rows, len(LOG_FEATURES)), np.float64)
    for i, name in enumerate(LOG_FEATURES):
        logged[:, i] = inputs[name]
    np.clip(logged, 0, None, out=logged)
    out[:, : len(LOG_FEATURES)] = np.log1p(logged, out=logged)
    column = len(LOG_FEATURES)
    for name in PLAIN_FEATURES:
        out[:, column] = inputs[name]
        column += 1
    style = _same(inputs["user_top_style"], inputs["artwork_style"])
    medium = _same(inputs["user_top_medium"], inputs["artwork_medium"])
    declared = _same(inputs["user_declared_style"], inputs["artwork_style"])
    for values in cross_columns(style, medium, declared, inputs):
        out[:, column] = values
        column += 1
    for block in (trend_block(inputs, rows), share_block(inputs, rows)):
        out[:, column : column + block.shape[1]] = block
        column += block.shape[1]
    if segments:
        out[:, column:] = np.equal.outer(
            np.broadcast_to(np.asarray(segment), (rows,)), np.arange(segments)
        )
    return out


def cross_columns(
    style: np.ndarray, medium: np.ndarray, declared: np.ndarray, inputs: Inputs
) -> tuple[np.ndarray, ...]:
    """`CROSS_FEATURES` in order, from whether the user's top style and medium (and declared
    style) match the artwork's and the inputs they weigh; inputs may be shaped to broadcast."""
    style_share = np.nan_to_num(np.asarray(inputs["user_top_style_share"], np.float64), nan=0.0)
    medium_share = np.nan_to_num(np.asarray(inputs["user_top_medium_share"], np.float64), nan=0.0)
    purchases = np.asarray(inputs["user_n_purchase_28d"], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        average_spend = np.asarray(inputs["user_spend_28d"], np.float64) / np.where(
            purchases > 0, purchases, np.nan
        )
        price_vs_spend = np.log1p(np.asarray(inputs["artwork_price"], np.float64)) - np.log1p(
            average_spend
        )
    engaged = np.log1p(np.asarray(inputs.get(ENGAGED_INPUT, np.nan), np.float64))
    return (
        np.where(style, style_share, 0.0),
        np.where(medium, medium_share, 0.0),
        style,
        price_vs_spend,
        declared,
        np.broadcast_to(engaged, np.broadcast_shapes(engaged.shape, price_vs_spend.shape)),
    )


def feature_side(name: str) -> str:
    """Which inputs a model feature depends on: `user`, `artwork` or both (`cross`)."""
    if name in CROSS_FEATURES:
        return "cross"
    return "user" if name.startswith(("user_", "segment_")) else "artwork"


def _matches(user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """(users, items) booleans: the user's category equals the item's (`_same` on a grid)."""
    # Missing is coded -1 and never pairs: as SQL's NULL = NULL is not true.
    codes, _ = pd.factorize(np.concatenate([user, item]))
    user_codes, item_codes = codes[: len(user)], codes[len(user) :]
    return np.equal.outer(user_codes, item_codes) & (user_codes >= 0)[:, None] & (item_codes >= 0)


def grid_item_rows(items: Inputs, user_names: Iterable[str], segments: int) -> np.ndarray:
    """The items' rows of `grid_sides` (user and cross columns blank): the same for every batch
    of users ranked against one catalogue."""
    blank_user = {name: (np.nan if name in NUMERIC_INPUTS else None) for name in user_names}
    return feature_matrix({**blank_user, **items}, len(next(iter(items.values()))), -1, segments)


def grid_sides(
    users: Inputs,
    items: Inputs,
    segment: np.ndarray | None,
    segments: int,
    item_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each side's inputs once, in `feature_names(segments)` layout (float32): the users' rows,
    the items' rows (cross columns blank in both; `grid_item_rows`, unless given), and the
    crosses as (crosses, users, items). The pair input, when known, is a (users, items) array
    under `ENGAGED_INPUT` in `users`."""
    pair = users.get(ENGAGED_INPUT)
    users = {name: v for name, v in users.items() if name != ENGAGED_INPUT}
    n_users = len(next(iter(users.values())))
    n_items = len(next(iter(items.values())))
    blank_item = {name: (np.nan if name in NUMERIC_INPUTS else None) for name in items}
    if item_rows is None:
        item_rows = grid_item_rows(items, users, segments)
    user_rows = feature_matrix({**users, **blank_item}, n_users, segment, segments)
    style = _matches(users["user_top_style"], items["artwork_style"])
    medium = _matches(users["user_top_medium"], items["artwork_medium"])
    declared = _matches(users["user_declared_style"], items["artwork_style"])
    shaped = {name: np.asarray(v)[:, None] for name, v in users.items() if name in NUMERIC_INPUTS}
    shaped |= {name: np.asarray(v)[None, :] for name, v in items.items() if name in NUMERIC_INPUTS}
    if pair is not None:
        shaped[ENGAGED_INPUT] = np.asarray(pair, np.float64).reshape(n_users, n_items)
    crosses = np.empty((len(CROSS_FEATURES), n_users, n_items), np.float32)
    for index, values in enumerate(cross_columns(style, medium, declared, shaped)):
        crosses[index] = values
    return user_rows, item_rows, crosses


def grid_matrix(
    users: Inputs, items: Inputs, segment: np.ndarray | None, segments: int
) -> np.ndarray:
    """`feature_matrix` of every (user, item) pair, users outer (row u * items + i), built from
    each side's columns once: only the crosses are computed per pair."""
    user_rows, item_rows, crosses = grid_sides(users, items, segment, segments)
    n_users, n_items = crosses.shape[1], crosses.shape[2]
    names = feature_names(segments)
    blocks = {"artwork": item_rows[None, :, :], "user": user_rows[:, None, :]}
    cross = iter(crosses)
    out = np.empty((n_users, n_items, len(names)), np.float32)
    # Runs of adjacent columns from one side are broadcast copies; crosses are per pair.
    start = 0
    for side, run in groupby(names, key=feature_side):
        end = start + len(list(run))
        if side == "cross":
            for column in range(start, end):
                out[:, :, column] = next(cross)
        else:
            out[:, :, start:end] = blocks[side][:, :, start:end]
        start = end
    return out.reshape(n_users * n_items, len(names))


def _counts(inputs: Inputs, events: tuple[str, ...], days: int) -> np.ndarray:
    total = sum(np.asarray(inputs[f"artwork_n_{e}_{days}d"], np.float64) for e in events)
    return np.clip(np.nan_to_num(total, nan=0.0), 0, None)


def trend_block(inputs: Inputs, rows: int) -> np.ndarray:
    """`TREND_FEATURES` for `rows` rows, in order."""
    weights = event_weights()
    popularity = {
        days: sum(w * _counts(inputs, (e,), days) for e, w in weights.items()) for days in (1, 7)
    }
    conversions = {days: _counts(inputs, CONVERSIONS, days) for days in _WINDOWS}
    views = {days: _counts(inputs, ("view",), days) for days in (1, 7)}
    columns = (
        np.log1p(popularity[1]),
        np.log1p(popularity[7]),
        np.log1p(conversions[1]),
        np.log1p(conversions[1]) - np.log1p(conversions[7] / 7),
        np.log1p(conversions[1]) - np.log1p(conversions[28] / 28),
        np.log1p(views[1]) - np.log1p(views[7] / 7),
    )
    return np.column_stack([np.broadcast_to(c, (rows,)) for c in columns])


def share_block(inputs: Inputs, rows: int) -> np.ndarray:
    """`SHARE_FEATURES` for `rows` rows, in order; logs published before they existed read 0."""
    columns = []
    for a in ("style", "medium"):
        day, week = (
            np.nan_to_num(
                np.asarray(inputs.get(f"artwork_{a}_conversion_share_{d}d", np.nan), float)
            )
            for d in (1, 7)
        )
        # A share of a few hundredths is already a trend; the floor keeps empty days finite.
        columns += [day, week, np.log((day + 0.01) / (week + 0.01))]
    return np.column_stack([np.broadcast_to(c, (rows,)) for c in columns])


def side_inputs(rows: pa.Table, prefix: str) -> dict[str, np.ndarray]:
    """The `raw_inputs` columns whose names start with `prefix` (`user_`, `artwork_`, or all).
    Share inputs missing from logs published before they existed read NaN."""
    names = [n for n in NUMERIC_INPUTS if n.startswith(prefix)]
    columns = {
        name: np.asarray(rows[name].cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
        if name in rows.column_names or name not in (*SHARE_INPUTS, ENGAGED_INPUT)
        else np.full(rows.num_rows, np.nan)
        for name in names
    }
    for name in CATEGORY_INPUTS:
        if not name.startswith(prefix):
            continue
        if name in rows.column_names or name not in LATER_CATEGORY_INPUTS:
            columns[name] = rows[name].to_numpy(zero_copy_only=False)
        else:
            columns[name] = np.full(rows.num_rows, None, object)
    return columns


def ranker_features(rows: pa.Table, segments: SegmentModel | None) -> pd.DataFrame:
    """The model input for point-in-time joined rows (`user_*` and `artwork_*` columns)."""
    k = segments.k if segments else 0
    assigned = segments.assign(rows, prefix="user_") if segments else None
    matrix = feature_matrix(raw_inputs(rows), rows.num_rows, assigned, k)
    return pd.DataFrame(matrix, columns=feature_names(k))


def input_columns(features: list[str], segments: int) -> np.ndarray | None:
    """Where a model's inputs sit in `feature_matrix`'s layout; None when they are all of it.
    Models trained before a feature was added, or without some, keep scoring."""
    layout = feature_names(segments)
    if features == layout:
        return None
    position = {name: i for i, name in enumerate(layout)}
    missing = [name for name in features if name not in position]
    if missing:
        raise ValueError(f"the model needs inputs this code does not compute: {missing}")
    return np.array([position[name] for name in features])


def monotone_constraints(names: list[str]) -> str:
    """XGBoost's constraint string: scores may only rise with the affinity inputs and only fall
    with the user's own events on the artwork."""
    signs = {**dict.fromkeys(INCREASING, "1"), **dict.fromkeys(DECREASING, "-1")}
    return "(" + ",".join(signs.get(n, "0") for n in names) + ")"


@dataclass(frozen=True)
class RankerParams:
    """XGBoost hyperparameters that matter here; everything else stays at XGBoost's default."""

    # With margins starting from popularity, 100 trees ranked as well as 300 or better at every
    # volume measured (500 to 20k events/day, the rated history) at a third of the scoring cost;
    # 50 were level with 100 (docs/models.md, "Trees").
    trees: int = 100
    # Trees without a better validation NDCG@10 before the search stops (then `trees` is the
    # most); None: always `trees`. Off: the sampled-negative validation NDCG flattens after a
    # few dozen trees, and those models went stale faster (new-trend served -10 %, docs/models.md).
    early_stopping_rounds: int | None = None
    # The newest training label days held out to choose the trees: at least one, more until they
    # hold this many positives, at most `validation_max_days` and half the days. Fewer positives
    # than this (sparse data): no search, `trees` trees, since a noisy validation would choose.
    validation_positives: int = 300
    validation_max_days: int = 7
    # Depth 4 over 6: better NDCG@10 on the demo (0.1355 vs 0.1208) and 40 % cheaper to score
    # per request (0.72 vs 1.20 ms for 200 candidates), which the serving target needs.
    max_depth: int = 4
    learning_rate: float = 0.1
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    seed: int = 0
    threads: int = 2
    # Trees grown per round on their own row/column samples and averaged (a boosted forest):
    # less of a model's score is the luck of one draw. On ratings histories of 13,000 training
    # rows, 3 gained +0.003 and +0.004 NDCG@10 over one (docs/models.md, "Three trees a round").
    parallel_trees: int = 3
    # Past this many training rows, one tree a round: at 55,000 (20k events a day) the forest
    # was a wash in the loop and made its days slower (three times the trees to fit and to
    # rank the catalogue with), and at 1M events a day it would cost the latency target.
    forest_max_rows: int | None = 30_000
    # Inputs left out of the model; scoring selects the spec's columns by name.
    excluded_features: tuple[str, ...] = ()
    # Newer days count more, so a retrain after tastes change learns the new ones; None: equal.
    half_life_days: float | None = 1.5
    # Popularity as the trees' starting point: each margin starts at this weight times the
    # `PRIOR_INPUT` input, and the trees learn what popularity misses. Uniform negatives teach
    # trees popular against unpopular, not the order among popular artworks, which is the top
    # of a full-catalogue ranking: on small histories that top fell to noise (docs/models.md).
    # 0: no prior. Without the trend inputs there is no `PRIOR_INPUT` and no prior.
    popularity_prior: float = 1.0
    # A compute budget, not a model choice: past this many rows, train on a sample drawn in
    # proportion to the recency weights (`training_rows`), which keeps the expected loss. At
    # 1M events/day the 7-day set holds 2.8M rows, most of them weighing under a third.
    max_rows: int | None = 1_000_000

    def xgboost(self, names: list[str]) -> dict[str, object]:
        return {
            "objective": "rank:ndcg",
            "eval_metric": "ndcg@10",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "seed": self.seed,
            "nthread": self.threads,
            "num_parallel_tree": self.parallel_trees,
            "monotone_constraints": monotone_constraints(names),
        }


def trained_features(segments: int, params: RankerParams) -> list[str]:
    """The inputs a model trained with `params` uses, in `feature_names` order."""
    return [n for n in feature_names(segments) if n not in params.excluded_features]


@dataclass(frozen=True)
class RankerSpec:
    """Everything besides the trees needed to score rows: inputs, segments and calibration."""

    features: list[str]
    segment_model: str | None
    calibration: tuple[float, float]
    params: dict[str, object] = field(default_factory=dict)

    def segments(self) -> SegmentModel | None:
        return SegmentModel.from_json(self.segment_model) if self.segment_model else None

    def prior(self) -> float:
        """The weight of `PRIOR_INPUT` in every margin; 0 for models trained without one."""
        if PRIOR_INPUT not in self.features:
            return 0.0
        return float(self.params.get("popularity_prior") or 0.0)

    def prior_margins(self, inputs: pd.DataFrame | np.ndarray) -> np.ndarray | float:
        """What the prior adds to the trees' margins of model-input rows (`features` columns)."""
        weight = self.prior()
        if not weight:
            return 0.0
        if isinstance(inputs, pd.DataFrame):
            column = inputs[PRIOR_INPUT].to_numpy()
        else:
            column = inputs[:, self.features.index(PRIOR_INPUT)]
        return prior_term(weight, column)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RankerSpec:
        data = json.loads(text)
        data["calibration"] = tuple(data["calibration"])
        return cls(**data)


# From this many pairs per call the ranker scores a grid with `grid_scoring`'s kernel (identical
# margins, no pair matrix); below it XGBoost's own predictor, with nothing to compile or load.
GRID_KERNEL_PAIRS = 500_000


@dataclass
class RankerModel:
    """A trained booster with its spec; scores and probabilities for joined rows."""

    booster: xgb.Booster
    spec: RankerSpec
    _kernel: PaddedTrees | None = field(default=None, init=False, repr=False, compare=False)
    _kernel_checked: bool = field(default=False, init=False, repr=False, compare=False)
    _catalogue: tuple[Inputs, np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def inputs(self, rows: pa.Table) -> pd.DataFrame:
        full = ranker_features(rows, self.spec.segments())
        return full if list(full.columns) == self.spec.features else full[self.spec.features]

    def scores(self, rows: pa.Table) -> np.ndarray:
        """Ranking scores (margins); higher ranks first."""
        return self.margins(self.inputs(rows))

    def margins(self, inputs: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The margins of model-input rows (`spec.features` columns): the trees' and the prior's."""
        trees = self.booster.inplace_predict(inputs, predict_type="margin")
        return trees + self.spec.prior_margins(inputs)

    def grid_scores(
        self,
        users: pa.Table,
        items: Mapping[str, np.ndarray],
        engaged: np.ndarray | None = None,
    ) -> np.ndarray:
        """Scores of every user (`user_*` rows) against every item (`side_inputs` of the
        artwork side), shape (users, items); equal to `scores` of the crossed rows. `engaged`:
        each user's events on each item (`sands.features.engagement.engaged_grid`)."""
        trees = self._tree_grid(users, items, engaged)
        prior = self._item_prior(items)
        return trees if prior is None else trees + prior[None, :]

    def _item_prior(self, items: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """What the popularity prior adds to each item's margins; None without a prior."""
        weight = self.spec.prior()
        if not weight:
            return None
        n_items = len(next(iter(items.values())))
        return prior_term(weight, trend_block(items, n_items)[:, TREND_FEATURES.index(PRIOR_INPUT)])

    def _user_side(
        self, users: pa.Table, engaged: np.ndarray | None
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None, int]:
        """The users' inputs (with the pair input, when given), segments and segment count."""
        segments = self.spec.segments()
        assigned = segments.assign(users, prefix="user_") if segments else None
        inputs: dict[str, np.ndarray] = side_inputs(users, "user_")
        if engaged is not None:
            inputs[ENGAGED_INPUT] = engaged
        return inputs, assigned, segments.k if segments else 0

    def _tree_grid(
        self, users: pa.Table, items: Mapping[str, np.ndarray], engaged: np.ndarray | None
    ) -> np.ndarray:
        inputs, assigned, k = self._user_side(users, engaged)
        n_items = len(next(iter(items.values())))
        if users.num_rows * n_items >= GRID_KERNEL_PAIRS:
            trees = self.kernel_trees(inputs, items, assigned, k)
            if trees is not None:
                # Imported on use: compiling (or loading) the kernel only pays off at volume.
                from sands.models.grid_scoring import grid_margins

                item_rows, outcomes = self._catalogue_side(trees, inputs, items, k)
                sides = grid_sides(inputs, items, assigned, k, item_rows)
                return grid_margins(trees, *sides, threads=usable_cores(), outcomes=outcomes)
        return self._xgboost_grid(inputs, items, assigned, k)

    def score_bounds(
        self,
        users: pa.Table,
        items: Mapping[str, np.ndarray],
        engaged: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Per item, a score above any `grid_scores` of it for any user (the trees' best leaves
        its own splits leave open, plus the prior), so a top-k need not score the rest; None
        where the trees are not the kernel's (`users` and `engaged`, as for `grid_scores`: any
        users, for the kernel's first check)."""
        inputs, assigned, k = self._user_side(users, engaged)
        trees = self.kernel_trees(inputs, items, assigned, k)
        if trees is None:
            return None
        from sands.models.grid_scoring import margin_bounds

        bounds = margin_bounds(trees, self._catalogue_side(trees, inputs, items, k)[1])
        prior = self._item_prior(items)
        if prior is not None:
            # The float32 sum of margin and prior rounds once more.
            bounds = bounds + prior + 2.0**-22 * (np.abs(bounds) + np.abs(prior))
        return None if np.isnan(bounds).any() else bounds

    def _catalogue_side(
        self, trees: PaddedTrees, users: Inputs, items: Inputs, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The items' rows and split outcomes, kept for the next batch of users ranked against
        the same catalogue (the same `items` object)."""
        if self._catalogue is None or self._catalogue[0] is not items:
            from sands.models.grid_scoring import artwork_outcomes

            rows = grid_item_rows(items, users, k)
            self._catalogue = (items, rows, artwork_outcomes(trees, rows))
        return self._catalogue[1], self._catalogue[2]

    def _xgboost_grid(
        self, users: Inputs, items: Inputs, assigned: np.ndarray | None, k: int
    ) -> np.ndarray:
        matrix = grid_matrix(users, items, assigned, k)
        columns = input_columns(self.spec.features, k)
        matrix = matrix if columns is None else matrix[:, columns]
        margins = self.booster.inplace_predict(matrix, predict_type="margin")
        return np.asarray(margins).reshape(-1, len(next(iter(items.values()))))

    def kernel_trees(
        self, users: Inputs, items: Inputs, assigned: np.ndarray | None, k: int
    ) -> PaddedTrees | None:
        """The trees in `grid_scoring`'s layout once they have scored a first user exactly as
        XGBoost does; None (for good) where they cannot, or did not: an XGBoost release whose
        model format or arithmetic the kernel does not match scores as before, only slower."""
        if not self._kernel_checked:
            from sands.models.grid_scoring import grid_margins, padded_trees

            sides = [feature_side(name) for name in feature_names(k)]
            trees = padded_trees(self.booster, input_columns(self.spec.features, k), sides)
            if trees is not None:
                one = {name: np.asarray(values)[:1] for name, values in users.items()}
                first = None if assigned is None else assigned[:1]
                # The catalogue's side once, for this check and what follows it.
                rows, outcomes = self._catalogue_side(trees, users, items, k)
                sides = grid_sides(one, items, first, k, rows)
                margins = grid_margins(trees, *sides, threads=1, outcomes=outcomes)
                if not np.array_equal(margins, self._xgboost_grid(one, items, first, k)):
                    trees, self._catalogue = None, None
            self._kernel, self._kernel_checked = trees, True
        return self._kernel

    def probabilities(self, rows: pa.Table) -> np.ndarray:
        """Calibrated probabilities of a positive."""
        return platt_probabilities(self.scores(rows), self.spec.calibration)

    def model_bytes(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))

    def scoring_bytes(self) -> bytes:
        """The trees and the spec: equal bytes score every row identically (the trees alone do
        not: the spec holds the popularity prior and the calibration)."""
        return self.model_bytes() + self.spec.to_json().encode()


def _label_days(rows: pa.Table) -> np.ndarray:
    """Each row's label day as an integer day number."""
    day = pc.floor_temporal(rows["label_ts"], unit="day").cast(pa.int64()).to_numpy()
    return day // 86_400_000_000  # microseconds per day


def labelled_before(rows: pa.Table, split: datetime) -> pa.ChunkedArray:
    """Whether each row's label time is before `split` (the training side of a temporal split);
    a row without a label time is on neither side."""
    before = pc.less(rows["label_ts"], pa.scalar(split, pa.timestamp("us", tz="UTC")))
    return pc.fill_null(before, False)


def query_groups(rows: pa.Table) -> np.ndarray:
    """A query id per row: one per (user, label day), numbered in first-seen order."""
    day = _label_days(rows)
    user = pc.dictionary_encode(rows["user_id"].combine_chunks()).indices.to_numpy()
    # Integer keys: building "user|day" strings cost seconds a million rows.
    day_index = day - day.min() if len(day) else day
    keys = day_index.astype(np.int64) * (int(user.max()) + 1 if len(user) else 1) + user
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    first_seen_rank = np.empty(len(first), np.int64)
    first_seen_rank[np.argsort(first)] = np.arange(len(first))
    return first_seen_rank[group.ravel()]


def group_weights(
    rows: pa.Table, half_life_days: float | None, kept: Mapping[int, float] | None = None
) -> np.ndarray | None:
    """A weight per query group (in `query_groups` order) halving every `half_life_days` of
    label age before the newest label day, over the share `kept` of its day's groups that a
    sample kept; None when unweighted and unsampled."""
    if half_life_days is None and not kept:
        return None
    day = _label_days(rows)[np.unique(query_groups(rows), return_index=True)[1]]
    weight = np.ones(len(day))
    if half_life_days is not None:
        weight = np.power(0.5, (day.max() - day) / half_life_days)
    if kept:
        weight = weight / np.array([kept[int(d)] for d in day])
    return weight


def day_shares(
    rows_per_day: Mapping[int, int], half_life_days: float | None, max_rows: int
) -> dict[int, float]:
    """The share of each day's groups to keep so that about `max_rows` rows remain: in proportion
    to the day's recency weight (`min(1, c * weight)`): newer days keep more, whole if room."""
    days = sorted(rows_per_day)
    counts = np.array([rows_per_day[d] for d in days], dtype=float)
    newest = days[-1] if days else 0
    weight = np.array(
        [0.5 ** ((newest - d) / half_life_days) if half_life_days else 1.0 for d in days]
    )
    if counts.sum() <= max_rows:
        return dict.fromkeys(days, 1.0)
    low, high = 0.0, 1.0 / weight.min()
    for _ in range(60):  # bisection on c: the kept rows rise with it
        middle = (low + high) / 2
        low, high = (
            (middle, high)
            if (np.minimum(1, middle * weight) * counts).sum() <= max_rows
            else (low, middle)
        )
    return {d: float(max(min(1.0, low * w), 1e-9)) for d, w in zip(days, weight, strict=True)}


def _group_draws(user: pa.ChunkedArray, day: np.ndarray) -> np.ndarray:
    """A uniform draw in [0, 1) per row, the same for every row of a (user, day) group and the
    same whatever the row order or the rest of the set: a hash of the user id and the day."""
    encoded = pc.dictionary_encode(user.combine_chunks())
    ids = np.array(
        [
            int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(), "little")
            for u in encoded.dictionary.to_pylist()
        ],
        dtype=np.uint64,
    )
    key = ids[encoded.indices.to_numpy()] ^ (day.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    # splitmix64's finaliser: mixes the day into every bit.
    with np.errstate(over="ignore"):
        key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        key = key ^ (key >> np.uint64(31))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class TrainingRows:
    """The rows a ranker trains on, in training order, and the share of each label day's query
    groups they keep (all 1.0 when nothing was sampled)."""

    rows: pa.Table
    kept: dict[int, float]

    @property
    def sampled(self) -> bool:
        return any(share < 1.0 for share in self.kept.values())


# The canonical order of training rows: contiguous per (user, label day) group.
TRAINING_ORDER = ("user_id", "artwork_id", "label_ts", "sample_source")


def training_rows(
    examples: pa.Table, params: RankerParams, before: datetime | None = None
) -> TrainingRows:
    """The rows of `examples` labelled before `before` (all when None), sorted for training;
    past `params.max_rows`, whole (user, day) groups kept with a chance in proportion to their
    recency weight (`day_shares`), so that reweighting the kept ones by one over that chance
    (`group_weights`) leaves the expected loss unchanged. Chosen and ordered on the key columns,
    then taken once: each copy of a wide 3M-row set costs seconds (allocating its memory)."""
    index = np.arange(examples.num_rows)
    if before is not None:
        index = np.flatnonzero(labelled_before(examples, before).to_numpy(zero_copy_only=False))
    keys = examples.select(list(TRAINING_ORDER)).take(index)
    kept: dict[int, float] = {}
    if params.max_rows is not None and keys.num_rows > params.max_rows:
        day = _label_days(keys)
        found, counts = np.unique(day, return_counts=True)
        kept = day_shares(
            dict(zip(found.tolist(), counts.tolist(), strict=True)),
            params.half_life_days,
            params.max_rows,
        )
        chance = np.array([kept[d] for d in found.tolist()])[np.searchsorted(found, day)]
        sampled = _group_draws(keys["user_id"], day) < chance
        index, keys = index[sampled], keys.filter(pa.array(sampled))
    return TrainingRows(examples.take(index[training_order(keys)]), kept)


def training_order(examples: pa.Table) -> np.ndarray:
    """Indices of `examples` in the canonical training order (stable: ties keep their order)."""
    day = pc.floor_temporal(examples["label_ts"], unit="day")
    keyed = examples.select(list(TRAINING_ORDER)).append_column("__day", day)
    return pc.sort_indices(
        keyed, sort_keys=[("__day", "ascending")] + [(k, "ascending") for k in TRAINING_ORDER]
    ).to_numpy()


def sorted_for_training(examples: pa.Table) -> pa.Table:
    """Rows in a canonical order, contiguous per (user, day) group, so training is repeatable."""
    return examples.take(training_order(examples))


def fit_platt(scores: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Slope and intercept of p = sigmoid(a * score + b), by Newton's method on the log loss.

    Targets are Platt's (positives (n+ + 1) / (n+ + 2), negatives 1 / (n- + 2)): with 0/1
    targets, scores that separate the labels drive the slope to infinity (a replay with one
    item taking 90 % of events fitted 4e10), and every probability to 0 or 1.
    """
    x = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    positives = y.sum()
    t = np.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (len(y) - positives + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = _sigmoid(a * x + b)
        w = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([((p - t) * x).sum(), (p - t).sum()])
        hessian = np.array([[(w * x * x).sum(), (w * x).sum()], [(w * x).sum(), w.sum()]])
        step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        # Halved until the loss does not rise: a full step from far off can overshoot.
        loss = _platt_loss(x, t, a, b)
        for _ in range(30):
            if _platt_loss(x, t, a - step[0], b - step[1]) <= loss + 1e-12:
                break
            step = step / 2
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Clipped where exp(-z) would overflow; the same floats as 1 / (1 + exp(-z)) elsewhere.
    return 1 / (1 + np.exp(-np.clip(z, -700.0, 700.0)))


def _platt_loss(x: np.ndarray, t: np.ndarray, a: float, b: float) -> float:
    z = a * x + b
    # log(1 + e^z) - t z, without overflow.
    return float((np.logaddexp(0.0, z) - t * z).sum())


def platt_probabilities(scores: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """Calibrated probabilities for ranking scores."""
    a, b = calibration
    return _sigmoid(a * np.asarray(scores, dtype=float) + b)


def train_ranker(
    examples: pa.Table, segments: SegmentModel | None, params: RankerParams
) -> RankerModel:
    """Train on labelled point-in-time rows; the same rows and params give the same bytes."""
    return fit_on(training_rows(examples, params), segments, params).model


@dataclass(frozen=True)
class TreeChoice:
    """How many trees the ranker got, and the validation that chose them (if any)."""

    trees: int
    validation_days: int = 0
    validation_positives: int = 0
    validation_ndcg: float | None = None

    def as_params(self) -> dict[str, object]:
        chosen = {"chosen_trees": self.trees, "validation_days": self.validation_days}
        if self.validation_ndcg is not None:
            chosen["validation_ndcg_at_10"] = round(self.validation_ndcg, 6)
            chosen["validation_positives"] = self.validation_positives
        return chosen


def prior_term(weight: float, popularity: np.ndarray) -> np.ndarray:
    """What the prior adds to a margin, from `PRIOR_INPUT` values: in float32, as XGBoost sums,
    so training, rows and grids add the very same numbers."""
    return np.float32(weight) * np.asarray(popularity, np.float32)


def prior_weight(params: RankerParams, names: Iterable[str]) -> float:
    """The popularity prior a model of inputs `names` trains from: none without its input."""
    return params.popularity_prior if PRIOR_INPUT in names else 0.0


def _matrix(
    rows: pa.Table, inputs: pd.DataFrame, weight: np.ndarray | None, params: RankerParams
) -> xgb.DMatrix:
    import xgboost as xgb

    prior = prior_weight(params, inputs.columns)
    return xgb.DMatrix(
        inputs,
        label=rows["label"].to_numpy(zero_copy_only=False).astype(np.float32),
        qid=query_groups(rows),
        weight=weight,
        feature_names=list(inputs.columns),
        # The trees start from the prior, so they fit what it misses.
        base_margin=prior_term(prior, inputs[PRIOR_INPUT].to_numpy()) if prior else None,
    )


def validation_days(rows: pa.Table, params: RankerParams) -> tuple[int, int]:
    """How many of the newest label days to hold out for choosing the trees, and the positives
    they hold; (0, 0) when early stopping is off or too few positives (or days) leave nothing
    worth trusting to judge on."""
    if params.early_stopping_rounds is None or rows.num_rows == 0:
        return 0, 0
    day = _label_days(rows)
    positive = rows["label"].to_numpy(zero_copy_only=False) > 0
    newest = int(day.max())
    per_day = np.bincount(newest - day[positive], minlength=newest - int(day.min()) + 1)
    span = len(per_day)
    most = min(params.validation_max_days, span // 2)
    if most < 1:
        return 0, 0
    held = np.cumsum(per_day[:most])
    enough = np.flatnonzero(held >= params.validation_positives)
    if len(enough) == 0:
        return 0, 0
    return int(enough[0]) + 1, int(held[enough[0]])


def chosen_trees(training: TrainingRows, inputs: pd.DataFrame, params: RankerParams) -> TreeChoice:
    """The trees to train on `training` (its model `inputs` alongside): early stopping on the
    newest label days, fit on the days before; `params.trees` when `validation_days` finds too
    little to judge on."""
    import xgboost as xgb

    days, positives = validation_days(training.rows, params)
    if days == 0:
        return TreeChoice(params.trees)
    rows = training.rows
    day = _label_days(rows)
    held_out = day > day.max() - days
    fit, check = rows.filter(pa.array(~held_out)), rows.filter(pa.array(held_out))
    booster = xgb.train(
        params.xgboost(list(inputs.columns)),
        _matrix(
            fit,
            inputs[~held_out],
            group_weights(fit, params.half_life_days, training.kept),
            params,
        ),
        num_boost_round=params.trees,
        evals=[(_matrix(check, inputs[held_out], None, params), "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    return TreeChoice(booster.best_iteration + 1, days, positives, float(booster.best_score))


def trees_chosen_on(params: dict[str, object]) -> str:
    """One line on how the ranker's trees were chosen, from its spec's params."""
    days = params.get("validation_days") or 0
    if params.get("early_stopping_rounds") is None:
        return f"every tree ({params.get('trees')}): early stopping off"
    if not days:
        return f"every tree ({params.get('trees')}): too few positives to stop early on"
    return (
        f"early stopping on the newest {days} training label day(s), "
        f"{params['validation_positives']:,} positives, validation NDCG@10 "
        f"{params['validation_ndcg_at_10']:.4f}"
    )


@dataclass(frozen=True)
class FittedRanker:
    """A trained ranker and the rows it reports on, with their model inputs and margins where
    the trainer kept them, so the ranker's step does not compute them a second time."""

    model: RankerModel
    rows: pa.Table
    inputs: pd.DataFrame | None = None
    margins: np.ndarray | None = None

    def row_inputs(self) -> pd.DataFrame:
        return self.model.inputs(self.rows) if self.inputs is None else self.inputs

    def row_margins(self) -> np.ndarray:
        """`model.scores(rows)`."""
        if self.margins is None:
            return self.model.margins(self.row_inputs())
        return self.margins


def forest_for(params: RankerParams, rows: int) -> RankerParams:
    """`params` with the trees a round `rows` training rows get (one past `forest_max_rows`)."""
    if params.forest_max_rows is None or rows <= params.forest_max_rows:
        return params
    return replace(params, parallel_trees=1)


def fit_on(
    training: TrainingRows, segments: SegmentModel | None, params: RankerParams
) -> FittedRanker:
    """Train on rows `training_rows` chose and ordered, with the trees `chosen_trees` finds."""
    # Imported on use: heavy, and the code location is loaded by every step process.
    import xgboost as xgb

    rows = training.rows
    if rows.num_rows == 0:
        raise ValueError("no training examples before the evaluation window")
    names = trained_features(segments.k if segments else 0, params)
    inputs = ranker_features(rows, segments)[names]
    matrix = _matrix(
        rows, inputs, group_weights(rows, params.half_life_days, training.kept), params
    )
    labels = matrix.get_label()
    params = forest_for(params, rows.num_rows)
    choice = chosen_trees(training, inputs, params)
    booster = xgb.train(params.xgboost(names), matrix, num_boost_round=choice.trees)
    trained = {**asdict(params), "trained_rows": rows.num_rows, **choice.as_params()}
    trained["popularity_prior"] = prior_weight(params, names)
    spec = RankerSpec(
        features=names,
        segment_model=segments.to_json() if segments else None,
        calibration=(0.0, 0.0),
        params=trained,
    )
    model = RankerModel(booster=booster, spec=spec)
    # The scoring path's margins (the booster's base score and the prior added after the trees),
    # so calibration and the kept margins are exactly what `scores` gives these rows.
    margins = model.margins(inputs)
    model.spec = replace(spec, calibration=fit_platt(margins, labels))
    return FittedRanker(model, rows, inputs, margins)


def load_ranker(model_bytes: bytes, spec: RankerSpec) -> RankerModel:
    """A ranker from saved booster bytes and its spec."""
    # Imported on use: heavy, and the code location is loaded by every step process.
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(model_bytes))
    return RankerModel(booster=booster, spec=spec)


def with_shuffled_labels(examples: pa.Table, seed: int, rows: np.ndarray | None = None) -> pa.Table:
    """The same rows with labels permuted (among `rows`, a boolean mask, when given): what a
    model that learns nothing real sees."""
    labels = examples["label"].to_numpy(zero_copy_only=False)
    permuted = labels.copy()
    chosen = np.ones(len(labels), dtype=bool) if rows is None else rows
    permuted[chosen] = np.random.default_rng(seed).permutation(labels[chosen])
    index = examples.schema.get_field_index("label")
    return examples.set_column(
        index, "label", pa.array(permuted, examples.schema.field(index).type)
    )
