"""Every metric against values worked out by hand."""

import math

import numpy as np
import pytest

from sands.evaluation import metrics

RANKED = ["a", "b", "c", "d"]
RELEVANT = {"b", "d"}


def test_ndcg_discounts_by_log2_of_rank_plus_one_against_the_ideal_order():
    # DCG@3 = 1/log2(3); ideal puts both relevant first: 1 + 1/log2(3).
    assert metrics.ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx(0.630930 / 1.630930, abs=1e-6)
    # DCG@4 adds 1/log2(5) for d at rank 4.
    assert metrics.ndcg_at_k(RANKED, RELEVANT, 4) == pytest.approx(1.061606 / 1.630930, abs=1e-6)
    assert metrics.ndcg_at_k(["b", "d", "a"], RELEVANT, 3) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(RANKED, set(), 3) == 0.0


def test_ideal_dcg_counts_at_most_k_relevant_items():
    # Three relevant items, k=2, both slots hit: perfect despite the third.
    assert metrics.ndcg_at_k(["x", "y"], {"x", "y", "z"}, 2) == pytest.approx(1.0)


def test_recall_map_and_hit_rate():
    assert metrics.recall_at_k(RANKED, RELEVANT, 3) == 0.5
    # Hits at ranks 2 and 4: precision 1/2 and 2/4, over min(2, k) relevant.
    assert metrics.average_precision_at_k(RANKED, RELEVANT, 3) == pytest.approx(0.25)
    assert metrics.average_precision_at_k(RANKED, RELEVANT, 4) == pytest.approx(0.5)
    assert metrics.hit_at_k(RANKED, RELEVANT, 1) == 0.0
    assert metrics.hit_at_k(RANKED, RELEVANT, 2) == 1.0


def test_many_users_at_once_equal_the_one_user_definitions():
    # Hand-checked rows first (as above), then random ones: short lists, no relevant items,
    # more relevant items than k.
    rng = np.random.default_rng(3)
    items = [f"i{n}" for n in range(30)]
    ranked = [RANKED, ["b", "d", "a"], ["x", "y"], RANKED]
    relevant = [RELEVANT, RELEVANT, {"x", "y", "z"}, set()]
    for _ in range(200):
        ranked.append(list(rng.choice(items, rng.integers(0, 12), replace=False)))
        relevant.append(set(rng.choice(items, rng.integers(0, 15), replace=False)))
    many = metrics.ranking_metrics_per_user(ranked, relevant, 10)
    one = {
        "ndcg": metrics.ndcg_at_k,
        "recall": metrics.recall_at_k,
        "map": metrics.average_precision_at_k,
        "hit": metrics.hit_at_k,
    }
    for name, metric in one.items():
        expected = [metric(r, wanted, 10) for r, wanted in zip(ranked, relevant, strict=True)]
        np.testing.assert_allclose(many[name], expected, rtol=0, atol=1e-12, err_msg=name)
    assert many["ndcg"][0] == pytest.approx(1.061606 / 1.630930, abs=1e-6)
    assert many["map"][0] == pytest.approx(0.5) and many["hit"][3] == 0.0


def test_coverage_and_popularity_bias():
    assert metrics.catalogue_coverage([["a", "b"], ["b", "c"]], 4) == 0.75
    percentile = metrics.popularity_percentiles({"a": 10, "b": 5, "c": 5, "d": 0})
    # Sorted d < b = c < a: ranks 0, 1.5 (tied), 3 over 3.
    assert percentile == {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0}
    assert metrics.popularity_bias([["a", "b"]], percentile) == 0.75


def test_auc_counts_ties_as_half():
    # Positive pairs won: (0.9>0.4), (0.9>0.1), (0.4=0.4 -> 1/2), (0.4>0.1) = 3.5 of 4.
    assert metrics.roc_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.4, 0.4, 0.1])) == 0.875
    assert math.isnan(metrics.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_log_loss_and_brier():
    labels, p = np.array([1, 0]), np.array([0.8, 0.3])
    assert metrics.log_loss(labels, p) == pytest.approx((-math.log(0.8) - math.log(0.7)) / 2)
    assert metrics.brier_score(labels, p) == pytest.approx((0.2**2 + 0.3**2) / 2)
    # Certain and wrong is clipped, not infinite.
    assert math.isfinite(metrics.log_loss(np.array([1]), np.array([0.0])))


def test_reliability_curve_bins_by_predicted_probability():
    curve = metrics.reliability_curve(
        np.array([0, 1, 0, 1]), np.array([0.05, 0.15, 0.12, 0.95]), bins=10
    )
    assert [(b.lower, b.count) for b in curve] == [(0.0, 1), (0.1, 2), (0.9, 1)]
    assert curve[1].mean_predicted == pytest.approx(0.135)
    assert curve[1].observed_rate == 0.5
    assert curve[2].observed_rate == 1.0


def test_paired_gain_uses_common_users_and_its_interval_covers_the_mean():
    mine = {"a": 0.5, "b": 0.3, "c": 0.4, "only-mine": 1.0}
    theirs = {"a": 0.4, "b": 0.2, "c": 0.3, "only-theirs": 0.0}
    gain = metrics.paired_gain(mine, theirs)
    # Every common user gains exactly 0.1: the interval collapses onto it.
    assert gain.users == 3 and gain.mean == pytest.approx(0.1)
    assert gain.low == pytest.approx(0.1) and gain.high == pytest.approx(0.1)
    assert gain.significant()
    mixed = metrics.paired_gain({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0})
    assert mixed.mean == 0 and mixed.low < 0 < mixed.high and not mixed.significant()
    assert metrics.paired_gain({}, {"a": 1.0}).users == 0
