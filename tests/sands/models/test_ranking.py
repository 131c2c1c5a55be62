"""The ranker's inputs, training determinism, calibration and that it learns a planted signal."""

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sands.evaluation.metrics import roc_auc
from sands.evaluation.offline import cross_rows, temporal_split
from sands.models.ranking import (
    PRIOR_INPUT,
    TRENDING_INPUTS,
    RankerParams,
    RankerSpec,
    _matrix,
    day_shares,
    feature_names,
    fit_on,
    fit_platt,
    group_weights,
    load_ranker,
    platt_probabilities,
    query_groups,
    ranker_features,
    side_inputs,
    sorted_for_training,
    train_ranker,
    training_rows,
    trees_chosen_on,
    validation_days,
    with_shuffled_labels,
)
from sands.models.segments import fit_segments
from tests.builders.models import (
    USER_DEFAULTS,
    artwork_vector,
    joined_rows,
    one_row_per,
    planted_examples,
    user_vector,
    vectors_table,
    with_nulls,
)

SMALL = RankerParams(trees=40, max_depth=4, threads=2)
TS = pa.timestamp("us", tz="UTC")


def test_cross_features_follow_the_users_tastes_and_budget():
    user = user_vector(
        "u1",
        top_style="cubism",
        top_style_share=0.7,
        top_medium="oil",
        top_medium_share=0.4,
        spend_28d=300.0,
        n_purchase_28d=2,
    )
    rows = joined_rows(
        [
            (user, artwork_vector("a1", style="cubism", medium="digital", price=150.0)),
            (user, artwork_vector("a2", style="abstract", medium="oil", price=150.0)),
            (user_vector("u2", n_purchase_28d=0), artwork_vector("a3")),
        ]
    )
    features = ranker_features(rows, None)
    assert list(features.columns) == feature_names(0)
    assert features["style_affinity"].tolist() == pytest.approx([0.7, 0.0, 0.5])
    assert features["medium_affinity"].tolist() == pytest.approx([0.0, 0.4, 0.5])
    assert features["style_match"].tolist() == [1.0, 0.0, 1.0]
    # Average purchase 150 vs price 150: log1p(150) - log1p(150) = 0; no purchases: unknown.
    assert features["price_vs_spend"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(features["price_vs_spend"].iloc[2])
    assert features["artwork_n_view_7d"].iloc[0] == pytest.approx(np.log1p(40), rel=1e-6)


def test_a_declared_style_matches_the_artworks_style_and_old_logs_read_unknown():
    pairs = [
        (user_vector("u1"), artwork_vector("a1", style="cubism")),
        (user_vector("u1"), artwork_vector("a2", style="abstract")),
        (user_vector("u2"), artwork_vector("a1", style="cubism")),
        (user_vector("u3"), artwork_vector("a3", style=None)),
    ]
    rows = joined_rows(pairs, user_declared_style=["cubism", "cubism", None, None])
    assert ranker_features(rows, None)["declared_style_match"].tolist() == [1.0, 0.0, 0.0, 0.0]
    # A feature log published before users had a declared style: nothing matches.
    older = ranker_features(rows.drop_columns(["user_declared_style"]), None)
    assert older["declared_style_match"].tolist() == [0.0] * 4


def test_the_pair_input_enters_as_log1p_and_training_sets_without_it_read_unknown():
    pairs = [(user_vector("u1"), artwork_vector(a)) for a in ("a1", "a2", "a3")]
    rows = joined_rows(pairs, pair_engaged_28d=[0.0, 1.0, 5.0])
    engaged = ranker_features(rows, None)["engaged_before"].tolist()
    assert engaged == pytest.approx([0.0, math.log(2), math.log(6)])
    older = ranker_features(rows.drop_columns(["pair_engaged_28d"]), None)["engaged_before"]
    assert older.isna().all()


def test_engaging_with_an_artwork_can_only_lower_its_score():
    # Planted: artworks the user engaged with before convert far more often.
    examples = planted_examples(users=60, artworks=12, days=5)
    rng = np.random.default_rng(4)
    engaged = rng.integers(0, 3, examples.num_rows).astype(float)
    label = (rng.random(examples.num_rows) < np.where(engaged > 0, 0.7, 0.1)).astype(np.int8)
    examples = examples.set_column(
        examples.column_names.index("pair_engaged_28d"), "pair_engaged_28d", pa.array(engaged)
    ).set_column(examples.column_names.index("label"), "label", pa.array(label))
    model = train_ranker(examples, None, SMALL)
    rows = examples.slice(0, 200)
    column = rows.column_names.index("pair_engaged_28d")
    never = model.scores(rows.set_column(column, "pair_engaged_28d", pa.array([0.0] * 200)))
    twice = model.scores(rows.set_column(column, "pair_engaged_28d", pa.array([2.0] * 200)))
    assert (twice <= never + 1e-6).all()


def test_segments_enter_as_one_hot_columns():
    users = vectors_table(
        [user_vector(f"u{i}", n_view_28d=v) for i, v in enumerate([1, 2, 500, 600])],
        USER_DEFAULTS,
    )
    segments = fit_segments(users, k=2)
    rows = joined_rows([(user_vector("x", n_view_28d=550), artwork_vector("a"))])
    features = ranker_features(rows, segments)
    one_hot = features[[f"segment_{s}" for s in range(2)]].to_numpy()[0]
    assert one_hot.sum() == 1.0


def test_query_groups_are_one_user_on_one_day():
    examples = sorted_for_training(planted_examples(users=3, days=2))
    groups = query_groups(examples)
    assert len(np.unique(groups)) == 6
    # Groups are contiguous, as XGBoost's ranking objectives require.
    assert (np.diff(groups) >= 0).all()


def test_query_groups_number_user_days_in_first_seen_order_in_any_row_order():
    rows = planted_examples(users=5, days=3)
    rows = rows.take(np.random.default_rng(0).permutation(rows.num_rows))
    # The definition, spelled out: "user|day" keys numbered as they first appear.
    day = pc.cast(pc.floor_temporal(rows["label_ts"], unit="day"), pa.string())
    keys = pc.binary_join_element_wise(rows["user_id"], day, "|").to_pylist()
    numbered = {key: i for i, key in reversed(list(enumerate(dict.fromkeys(keys))))}
    assert query_groups(rows).tolist() == [numbered[k] for k in keys]
    assert len(numbered) == 15


def test_training_is_deterministic_to_the_byte_and_survives_a_round_trip():
    examples = planted_examples()
    first = train_ranker(examples, None, SMALL)
    again = train_ranker(
        examples.take(np.random.default_rng(1).permutation(examples.num_rows)), None, SMALL
    )
    assert first.model_bytes() == again.model_bytes()
    loaded = load_ranker(first.model_bytes(), first.spec)
    assert np.array_equal(loaded.scores(examples), first.scores(examples))
    other_seed = train_ranker(examples, None, RankerParams(trees=40, max_depth=4, seed=1))
    assert other_seed.model_bytes() != first.model_bytes()


def test_margins_start_from_the_popularity_prior_and_the_trees_fit_on_top_of_it():
    examples = planted_examples()
    model = train_ranker(examples, None, SMALL)  # the default prior, 1
    inputs = model.inputs(examples)
    popularity = inputs[PRIOR_INPUT].to_numpy(np.float32)
    assert np.unique(popularity).size > 3  # artworks differ, so the prior orders something
    trees = model.booster.inplace_predict(inputs, predict_type="margin")
    assert model.spec.prior() == 1.0
    assert np.array_equal(model.scores(examples), trees + popularity)
    # Trained from the prior, the trees are not the ones trained without it.
    alone = train_ranker(examples, None, replace(SMALL, popularity_prior=0.0))
    assert alone.model_bytes() != model.model_bytes() and alone.spec.prior() == 0.0
    bare = alone.booster.inplace_predict(alone.inputs(examples), predict_type="margin")
    assert np.array_equal(alone.scores(examples), bare)
    # Training starts each row at the prior: the weight times that input, in float32.
    heavy = replace(SMALL, popularity_prior=3.0)
    base = _matrix(examples, inputs, None, heavy).get_base_margin()
    assert np.array_equal(base, np.float32(3.0) * popularity)
    weighted = train_ranker(examples, None, heavy)
    trees = weighted.booster.inplace_predict(inputs, predict_type="margin")
    assert np.array_equal(weighted.scores(examples), trees + np.float32(3.0) * popularity)
    # What the trainer kept and calibrated on are the scores, prior included.
    fitted = fit_on(training_rows(examples, heavy), None, heavy)
    scores = fitted.model.scores(fitted.rows)
    assert np.array_equal(fitted.margins, scores)
    labels = fitted.rows["label"].to_numpy(zero_copy_only=False).astype(np.float32)
    assert fitted.model.spec.calibration == fit_platt(scores, labels)


def test_models_without_the_prior_input_or_from_before_it_score_with_the_trees_alone():
    examples = planted_examples()
    untrended = train_ranker(examples, None, replace(SMALL, excluded_features=TRENDING_INPUTS))
    assert untrended.spec.params["popularity_prior"] == 0.0 and untrended.spec.prior() == 0.0
    # A spec registered before the prior existed has no such param: it scores as it did.
    old = RankerSpec(feature_names(0), None, (1.0, 0.0), {"trees": 40})
    assert old.prior() == 0.0 and old.prior_margins(np.ones((2, len(old.features)))) == 0.0


def test_day_shares_keep_the_newest_days_whole_and_older_ones_in_proportion_to_weight():
    # Half-life 1 day: weights 0.5 and 1. Keeping 150 of 200 rows: c = 1, shares 0.5 and 1.
    assert day_shares({0: 100, 1: 100}, 1.0, 150) == pytest.approx({0: 0.5, 1: 1.0})
    # Three days at 0.25, 0.5, 1 and room for 175: c = 1 keeps 25 + 50 + 100.
    assert day_shares({5: 100, 6: 100, 7: 100}, 1.0, 175) == pytest.approx(
        {5: 0.25, 6: 0.5, 7: 1.0}
    )
    # Unweighted days share the budget alike; within the budget everything stays.
    assert day_shares({0: 100, 1: 100}, None, 100) == pytest.approx({0: 0.5, 1: 0.5})
    assert day_shares({0: 100, 1: 100}, 1.0, 200) == {0: 1.0, 1: 1.0}


def _user_days(rows: pa.Table) -> dict[tuple[str, object], int]:
    days = pc.floor_temporal(rows["label_ts"], unit="day").to_pylist()
    counted: dict[tuple[str, object], int] = {}
    for key in zip(rows["user_id"].to_pylist(), days, strict=True):
        counted[key] = counted.get(key, 0) + 1
    return counted


def test_past_max_rows_whole_user_days_are_kept_by_recency_and_reweighted():
    examples = planted_examples(users=60, days=6)  # 6 rows per user-day, 2,160 rows
    params = RankerParams(max_rows=1_000, half_life_days=1.5)
    training = training_rows(examples, params)
    everything = _user_days(examples)
    kept = _user_days(training.rows)
    # A query group is kept whole or not at all.
    assert all(kept[key] == everything[key] for key in kept)
    assert training.sampled and 850 <= training.rows.num_rows <= 1_150
    newest = max(training.kept)
    assert training.kept[newest] == 1.0 and min(training.kept.values()) < 0.3
    # Each kept group weighs its recency weight over its chance of being kept.
    weights = group_weights(training.rows, 1.5, training.kept)
    recency = group_weights(training.rows, 1.5)
    day = np.array(sorted(training.kept))
    shares = np.array([training.kept[d] for d in day])
    groups_day = pc.floor_temporal(training.rows["label_ts"], unit="day").cast(pa.int64())
    first = np.unique(query_groups(training.rows), return_index=True)[1]
    of_group = groups_day.to_numpy()[first] // 86_400_000_000
    assert weights == pytest.approx(recency / shares[np.searchsorted(day, of_group)])
    # The same rows in any order draw the same sample.
    shuffled = examples.take(np.random.default_rng(3).permutation(examples.num_rows))
    assert training_rows(shuffled, params).rows.equals(training.rows)


def test_training_rows_before_a_cutoff_are_those_of_the_split_training_side():
    examples = planted_examples(users=60, days=6)
    # Rows out of time order, as a merged Delta table may read them.
    examples = examples.take(np.random.default_rng(5).permutation(examples.num_rows))
    cutoff = datetime(2026, 9, 5, tzinfo=UTC)
    train, _ = temporal_split(examples, cutoff)
    # A row without a label time is on neither side of the cutoff.
    column = examples.schema.get_field_index("label_ts")
    undated = examples.slice(0, 1).set_column(column, "label_ts", pa.nulls(1, TS))
    with_undated = pa.concat_tables([examples, undated])
    for params in (RankerParams(max_rows=800, half_life_days=1.5), RankerParams(max_rows=None)):
        split_first = training_rows(train, params)
        masked = training_rows(with_undated, params, before=cutoff)
        assert masked.rows.equals(split_first.rows) and masked.kept == split_first.kept
    assert pc.max(masked.rows["label_ts"]).as_py() < cutoff
    # Shuffling only the rows before the cutoff is shuffling the training side.
    before = pc.less(examples["label_ts"], pa.scalar(cutoff)).to_numpy(zero_copy_only=False)
    shuffled = with_shuffled_labels(examples, 7, before)
    assert shuffled.filter(before).equals(with_shuffled_labels(train, 7))
    assert shuffled.filter(~before).equals(examples.filter(~before))


def test_within_max_rows_nothing_is_sampled_and_the_model_is_unchanged():
    examples = planted_examples(users=20, days=3)
    within = training_rows(examples, RankerParams(max_rows=examples.num_rows))
    assert not within.sampled and within.rows.equals(sorted_for_training(examples))
    capped = train_ranker(examples, None, RankerParams(trees=10, max_rows=examples.num_rows))
    free = train_ranker(examples, None, RankerParams(trees=10, max_rows=None))
    assert capped.model_bytes() == free.model_bytes()
    assert capped.spec.params["trained_rows"] == examples.num_rows


def _trees_a_round(model) -> float:
    trees = json.loads(model.booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    return len(trees["trees"]) / model.booster.num_boosted_rounds()


def test_a_round_grows_three_trees_until_the_rows_pass_the_forest_budget():
    examples = planted_examples(users=20, days=3)
    forest = train_ranker(examples, None, RankerParams(trees=10))
    assert _trees_a_round(forest) == 3 and forest.spec.params["parallel_trees"] == 3
    budget = RankerParams(trees=10, forest_max_rows=examples.num_rows - 1)
    plain = train_ranker(examples, None, budget)
    assert _trees_a_round(plain) == 1 and plain.spec.params["parallel_trees"] == 1
    assert (
        plain.model_bytes()
        == train_ranker(examples, None, RankerParams(trees=10, parallel_trees=1)).model_bytes()
    )


def test_a_ranker_trained_on_the_recency_sample_still_learns_the_planted_taste():
    train = planted_examples(users=120, seed=0)
    sampled = train_ranker(train, None, RankerParams(trees=40, max_rows=1_500))
    assert sampled.spec.params["trained_rows"] < 0.5 * train.num_rows
    test = planted_examples(seed=1)
    assert roc_auc(test["label"].to_numpy(), sampled.scores(test)) > 0.8


def test_the_ranker_learns_the_planted_taste_and_shuffled_labels_do_not():
    train = planted_examples(seed=0)
    test = planted_examples(seed=1)
    model = train_ranker(train, None, SMALL)
    broken = train_ranker(with_shuffled_labels(train, 0), None, SMALL)
    labels = test["label"].to_numpy()
    # Knowing only "style matches" is worth AUC 0.842 here (0.6 vs 0.05 conversion, 1 in 3).
    assert roc_auc(labels, model.scores(test)) > 0.8
    assert roc_auc(labels, broken.scores(test)) < 0.65
    probabilities = model.probabilities(test)
    assert ((probabilities > 0) & (probabilities < 1)).all()


@pytest.mark.parametrize("prior", [1.0, 0.3])  # a weight other than 1 tests its float32 order
def test_grid_scores_equal_the_scores_of_every_crossed_row(prior):
    examples = planted_examples(users=12, artworks=9, days=3, declared=True)
    users = with_nulls(one_row_per(examples, "user_id", "user_"), "user_top_style", [0])
    # A missing style matches nothing, not even another missing one.
    items = with_nulls(one_row_per(examples, "artwork_id", "artwork_"), "artwork_style", [0])
    segments = fit_segments(users.rename_columns([c[5:] for c in users.column_names]), k=3)
    # Leaving an input out makes the model score a selection of the feature layout.
    params = RankerParams(
        trees=30, threads=2, excluded_features=("style_share_1d",), popularity_prior=prior
    )
    model = train_ranker(examples, segments, params)
    grid = model.grid_scores(users, side_inputs(items, "artwork_"))
    assert grid.shape == (12, 9)
    crossed = model.scores(cross_rows(users, items)).reshape(12, 9)
    assert np.array_equal(grid, crossed)
    assert np.unique(grid).size > 9  # users differ, so the test compares something


def test_platt_scaling_recovers_a_known_logistic():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20_000)
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-(2.0 * scores - 1.0)))).astype(float)
    a, b = fit_platt(scores, labels)
    assert a == pytest.approx(2.0, abs=0.1) and b == pytest.approx(-1.0, abs=0.1)
    assert platt_probabilities(np.array([0.5]), (a, b))[0] == pytest.approx(0.5, abs=0.03)


def test_group_weights_halve_per_half_life_of_label_age():
    from datetime import UTC, datetime

    import pyarrow as pa

    from sands.models.ranking import group_weights, query_groups

    stamps = [datetime(2026, 9, d, 12, tzinfo=UTC) for d in (1, 1, 4, 4, 7)]
    rows = pa.table(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u1"],
            "label_ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        }
    )
    assert query_groups(rows).tolist() == [0, 0, 1, 2, 3]
    assert group_weights(rows, 3.0).tolist() == [0.25, 0.5, 0.5, 1.0]
    assert group_weights(rows, None) is None


def test_platt_scaling_stays_finite_when_the_scores_separate_the_labels():
    # Every positive scores above every negative: 0/1 targets have no finite optimum.
    scores = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    labels = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    a, b = fit_platt(scores, labels)
    assert 0 < a < 10 and abs(b) < 1
    # Platt's targets with three of each: 4/5 for positives, 1/5 for negatives.
    p = platt_probabilities(scores, (a, b))
    assert 0.5 < p[3] < p[5] < 0.95 and 0.05 < p[0] < p[2] < 0.5


def _labelled_days(positives_per_day: list[int]) -> pa.Table:
    """Two rows per day (one positive, one negative) plus the day's other positives."""
    stamps, labels = [], []
    for index, positives in enumerate(positives_per_day):
        day = datetime(2026, 9, 1, 12, tzinfo=UTC) + timedelta(days=index)
        stamps += [day] * (positives + 1)
        labels += [1] * positives + [0]
    return pa.table(
        {
            "label_ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "label": pa.array(labels, pa.int8()),
        }
    )


def test_validation_days_are_the_newest_ones_holding_enough_positives():
    rows = _labelled_days([5, 1, 2, 3])  # the newest day holds 3 positives
    stopping = RankerParams(early_stopping_rounds=20)
    assert validation_days(rows, replace(stopping, validation_positives=3)) == (1, 3)
    assert validation_days(rows, replace(stopping, validation_positives=4)) == (2, 5)
    # At most half the label days: the other half must be left to fit on.
    assert validation_days(rows, replace(stopping, validation_positives=6)) == (0, 0)
    one_day = replace(stopping, validation_positives=4, validation_max_days=1)
    assert validation_days(rows, one_day) == (0, 0)
    # Off (the default): no search at all.
    assert validation_days(rows, RankerParams(validation_positives=3)) == (0, 0)


def test_early_stopping_chooses_fewer_trees_and_still_learns_the_planted_taste():
    train = planted_examples(users=120, days=6)  # about 170 positives a day
    params = RankerParams(trees=200, early_stopping_rounds=5, validation_positives=100)
    model = train_ranker(train, None, params)
    chosen = model.spec.params["chosen_trees"]
    assert model.spec.params["validation_days"] == 1
    assert model.spec.params["validation_positives"] >= 100
    assert chosen >= 1 and chosen < 200 and model.booster.num_boosted_rounds() == chosen
    test = planted_examples(seed=1)
    assert roc_auc(test["label"].to_numpy(), model.scores(test)) > 0.8
    # Too few positives to judge on (sparse data): no search, every tree.
    fixed = train_ranker(train, None, replace(params, validation_positives=10_000))
    assert fixed.spec.params["chosen_trees"] == 200 == fixed.booster.num_boosted_rounds()
    assert fixed.spec.params["validation_days"] == 0
    assert trees_chosen_on(model.spec.params).startswith("early stopping on the newest 1 ")
    assert trees_chosen_on(fixed.spec.params).startswith("every tree (200): too few positives")
    default = train_ranker(train, None, RankerParams(trees=20))
    assert trees_chosen_on(default.spec.params) == "every tree (20): early stopping off"
    # The same rows choose the same trees, to the byte.
    assert train_ranker(train, None, params).model_bytes() == model.model_bytes()
