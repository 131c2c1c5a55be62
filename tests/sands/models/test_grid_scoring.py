"""The grid kernel scores every (user, artwork) pair exactly as XGBoost does on the pair matrix."""

import numpy as np
import pyarrow as pa
import pytest
import xgboost as xgb

from sands.features.engagement import ENGAGED_INPUT
from sands.models import grid_scoring, ranking
from sands.models.grid_scoring import (
    ARTWORK,
    MAX_DEPTH,
    PAD,
    USER,
    PaddedTrees,
    grid_margins,
    margin_bounds,
    padded_trees,
)
from sands.models.ranking import (
    CROSS_FEATURES,
    RankerParams,
    feature_names,
    feature_side,
    grid_matrix,
    grid_sides,
    input_columns,
    side_inputs,
    train_ranker,
)
from sands.models.segments import fit_segments
from tests.builders.models import one_row_per, planted_examples, with_nulls


@pytest.fixture(scope="module")
def grid():
    """A model with segments and a left-out input, and sides with missing inputs."""
    examples = planted_examples(users=14, artworks=11, days=3, declared=True)
    users = with_nulls(one_row_per(examples, "user_id", "user_"), "user_top_style", [0])
    users = with_nulls(users, "user_spend_28d", [1, 2])
    items = with_nulls(one_row_per(examples, "artwork_id", "artwork_"), "artwork_price", [0, 3])
    segments = fit_segments(users.rename_columns([c[5:] for c in users.column_names]), k=3)
    params = RankerParams(trees=40, threads=2, excluded_features=("style_share_1d",))
    model = train_ranker(examples, segments, params)
    assigned = segments.assign(users, prefix="user_")
    user_inputs = side_inputs(users, "user_")
    # The pair input: each user's events on each item, most pairs none.
    rng = np.random.default_rng(1)
    pair = rng.integers(0, 4, (users.num_rows, items.num_rows)) * (rng.random((14, 11)) < 0.4)
    user_inputs[ENGAGED_INPUT] = pair.astype(np.float64)
    return model, user_inputs, side_inputs(items, "artwork_"), assigned, users


def _xgboost_margins(model, users, items, assigned, prior: bool = False) -> np.ndarray:
    """The trees' margins on the pair matrix by XGBoost's predictor; with `prior`, the model's
    (the popularity prior added), which `grid_scores` returns."""
    matrix = grid_matrix(users, items, assigned, 3)
    matrix = matrix[:, input_columns(model.spec.features, 3)]
    if prior:
        return model.margins(matrix).reshape(len(assigned), -1)
    margins = model.booster.inplace_predict(matrix, predict_type="margin")
    return np.asarray(margins).reshape(len(assigned), -1)


def test_margins_are_bit_identical_to_xgboost_on_the_pair_matrix(grid):
    model, users, items, assigned, _ = grid
    expected = _xgboost_margins(model, users, items, assigned)
    sides = [feature_side(n) for n in feature_names(3)]
    trees = padded_trees(model.booster, input_columns(model.spec.features, 3), sides)
    assert trees is not None and trees.depth == 4  # the default max_depth
    for threads in (1, 3):  # users split unevenly over threads changes nothing
        margins = grid_margins(trees, *grid_sides(users, items, assigned, 3), threads=threads)
        assert margins.dtype == np.float32
        assert np.array_equal(margins, expected)
    assert np.unique(expected).size > 20  # pairs differ, so the test compares something
    # Every cross is tested by some split, the declared style's too.
    splits = model.booster.get_score(importance_type="weight")
    assert all(splits.get(name) for name in CROSS_FEATURES)


def test_the_grid_scores_each_pair_as_its_crossed_row_with_the_pair_input(grid):
    model, users, items, _, user_table = grid
    pair = users[ENGAGED_INPUT]
    item_table = pa.table(dict(items))
    n_users, n_items = pair.shape
    rows = user_table.take(np.repeat(np.arange(n_users), n_items))
    for name in item_table.column_names:
        rows = rows.append_column(name, item_table[name].take(np.tile(np.arange(n_items), n_users)))
    rows = rows.append_column(ENGAGED_INPUT, pa.array(pair.ravel()))
    expected = model.scores(rows).reshape(n_users, n_items)
    assert np.array_equal(model.grid_scores(user_table, items, pair), expected)
    # Unknown (NaN) is not "never engaged": a model that learnt the input scores them apart.
    unknown = model.grid_scores(user_table, items)
    assert not np.array_equal(unknown, expected)


@pytest.mark.parametrize("grouping", ["none", "all"])
def test_any_grouping_of_the_crosses_gives_the_same_margins(grid, monkeypatch, grouping):
    """Price grouped too: users with more than MAX_CLASSES classes are walked pair by pair."""
    model, users, items, assigned, _ = grid
    sides = grid_sides(users, items, assigned, 3)
    assert len(items["artwork_price"]) > grid_scoring.MAX_CLASSES  # so "all" overflows
    forced = np.full(len(sides[2]), grouping == "all")
    monkeypatch.setattr(grid_scoring, "few_valued", lambda crosses: forced)
    trees = padded_trees(
        model.booster,
        input_columns(model.spec.features, 3),
        [feature_side(n) for n in feature_names(3)],
    )
    margins = grid_margins(trees, *sides, threads=2)
    assert np.array_equal(margins, _xgboost_margins(model, users, items, assigned))


def test_few_valued_crosses_are_those_with_at_most_two_values_per_user():
    flag = np.array([[1, 0, 1], [0, 0, 0]], np.float32)
    share = np.array([[0.4, 0, 0.4], [np.nan, np.nan, np.nan]], np.float32)
    price = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, np.nan]], np.float32)
    assert grid_scoring.few_valued(np.stack([flag, share, price])).tolist() == [True, True, False]


def test_the_matrix_is_the_sides_and_crosses_laid_out_per_pair(grid):
    _, users, items, assigned, _ = grid
    user_rows, item_rows, crosses = grid_sides(users, items, assigned, 3)
    matrix = grid_matrix(users, items, assigned, 3).reshape(len(assigned), -1, len(user_rows[0]))
    names = feature_names(3)
    for column, name in enumerate(names):
        side = feature_side(name)
        if side == "user":
            assert np.array_equal(matrix[:, 0, column], user_rows[:, column], equal_nan=True)
        elif side == "artwork":
            assert np.array_equal(matrix[0, :, column], item_rows[:, column], equal_nan=True)
    cross = [c for c, name in enumerate(names) if feature_side(name) == "cross"]
    assert np.array_equal(np.moveaxis(matrix[:, :, cross], 2, 0), crosses, equal_nan=True)


@pytest.mark.parametrize("max_depth", [2, MAX_DEPTH])  # shallow trees padded; 64-bit walks
def test_trees_of_any_depth_the_kernel_takes_are_exact(grid, max_depth):
    _, users, items, _, _ = grid
    examples = planted_examples(users=14, artworks=11, days=3)
    params = RankerParams(trees=15, max_depth=max_depth, threads=1)
    stump_model = train_ranker(examples, None, params)
    sides = [feature_side(n) for n in feature_names(0)]
    trees = padded_trees(stump_model.booster, input_columns(stump_model.spec.features, 0), sides)
    assert trees is not None and 1 < trees.depth <= max_depth
    margins = grid_margins(trees, *grid_sides(users, items, None, 0), threads=2)
    assert input_columns(stump_model.spec.features, 0) is None  # every input: no selection
    matrix = grid_matrix(users, items, None, 0)
    expected = stump_model.booster.inplace_predict(matrix, predict_type="margin")
    assert np.array_equal(margins.ravel(), np.asarray(expected))


def test_trees_deeper_than_the_kernel_takes_are_left_to_xgboost():
    rng = np.random.default_rng(0)
    x = rng.random((4000, 3)).astype(np.float32)
    y = np.sin(20 * x[:, 0]) + np.cos(15 * x[:, 1]) * x[:, 2]
    deep = xgb.train(
        {"max_depth": MAX_DEPTH + 2, "eta": 1.0}, xgb.DMatrix(x, label=y), num_boost_round=2
    )
    assert padded_trees(deep, None, ["user", "artwork", "cross"]) is None


def test_the_model_uses_the_kernel_at_volume_with_the_same_scores(grid, monkeypatch):
    model, _, items, _, user_table = grid
    below = model.grid_scores(user_table, items)  # a tiny grid: XGBoost's predictor
    assert not model._kernel_checked
    monkeypatch.setattr(ranking, "GRID_KERNEL_PAIRS", 1)
    assert np.array_equal(model.grid_scores(user_table, items), below)
    assert model._kernel is not None


def test_a_kernel_that_disagrees_with_xgboost_on_a_first_user_is_never_used(grid, monkeypatch):
    model, _, items, _, user_table = grid
    trained = ranking.RankerModel(model.booster, model.spec)  # nothing checked yet
    monkeypatch.setattr(ranking, "GRID_KERNEL_PAIRS", 1)
    off = np.float32(1e-3)  # as an XGBoost release with other arithmetic would be
    exact = grid_scoring.grid_margins
    monkeypatch.setattr(grid_scoring, "grid_margins", lambda *a, **k: exact(*a, **k) + off)
    expected = _xgboost_margins(model, *grid[1:4], prior=True)
    assert np.array_equal(trained.grid_scores(user_table, items, grid[1][ENGAGED_INPUT]), expected)
    assert trained._kernel_checked and trained._kernel is None


def test_a_model_format_it_does_not_know_is_left_to_xgboost(grid, monkeypatch):
    model, *_ = grid
    monkeypatch.setattr(xgb.Booster, "save_raw", lambda self, raw_format="ubj": b'{"learner": {}}')
    assert padded_trees(model.booster, None, ["user"]) is None


def test_batches_ranked_against_one_catalogue_compute_its_side_once(grid, monkeypatch):
    model, _, items, _, user_table = grid
    monkeypatch.setattr(ranking, "GRID_KERNEL_PAIRS", 1)
    whole = ranking.RankerModel(model.booster, model.spec).grid_scores(user_table, items)
    computed = []
    outcomes = grid_scoring.artwork_outcomes
    monkeypatch.setattr(
        grid_scoring, "artwork_outcomes", lambda *a: computed.append(1) or outcomes(*a)
    )
    batched = ranking.RankerModel(model.booster, model.spec)
    first = batched.grid_scores(user_table.slice(0, 7), items)
    once = len(computed)
    second = batched.grid_scores(user_table.slice(7), items)
    assert len(computed) == once  # the second batch reused the catalogue's side
    assert np.array_equal(np.vstack([first, second]), whole)
    batched.grid_scores(user_table.slice(7), dict(items))  # another catalogue object
    assert len(computed) == once + 1


def test_an_artworks_bound_is_the_best_leaf_its_own_splits_leave_open():
    # One tree of depth 2: a user split at the root; on the left an artwork split (node 1), on
    # the right a padded leaf (node 2 always goes left, so leaf 3 is never reached).
    trees = PaddedTrees(
        column=np.zeros((1, 3), np.int64),
        threshold=np.zeros((1, 3), np.float32),
        default_left=np.ones((1, 3), np.bool_),
        kind=np.array([[USER, ARTWORK, PAD]], np.int8),
        cross=np.zeros((1, 3), np.int64),
        leaf=np.array([[1.0, 5.0, 2.0, 9.0]], np.float32),
        depth=2,
        base=np.float32(0.5),
    )
    # Artwork 0 goes left at node 1 (leaf 0 or, for other users, leaf 2), artwork 1 right.
    outcomes = np.array([[0, 1 << 1]], np.uint16)
    bounds = margin_bounds(trees, outcomes)
    assert np.all(bounds >= [2.5, 5.5]) and np.allclose(bounds, [2.5, 5.5], atol=1e-5)


def test_no_user_scores_an_artwork_above_its_bound(grid):
    model, user_inputs, items, _, user_table = grid
    fresh = ranking.RankerModel(model.booster, model.spec)
    bounds = fresh.score_bounds(user_table, items)
    scores = fresh.grid_scores(user_table, items, user_inputs[ENGAGED_INPUT])
    assert bounds is not None and np.all(scores <= bounds[None, :])
    # Each artwork its own bound, from its own splits and prior, not one bound for all.
    assert len(np.unique(bounds)) == len(bounds)
