"""Drift statistics against hand-computed values, and Evidently's choice of method."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from sands.monitoring import drift

A2B2 = np.array(["a", "a", "b", "b"], dtype=object)
A3B1 = np.array(["a", "a", "a", "b"], dtype=object)


def test_wasserstein_is_normed_by_the_reference_std():
    ref, cur = np.array([0.0, 1, 2, 3]), np.array([1.0, 2, 3, 4])
    # Every unit of mass moves by 1; the reference's population std is sqrt(1.25).
    assert drift.wasserstein_normed(ref, cur) == pytest.approx(1 / math.sqrt(1.25))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(0.3, 1.2, size=800)
    assert drift.wasserstein_normed(a, b) == pytest.approx(wasserstein_distance(a, b) / a.std())


def test_jensen_shannon_and_psi_on_two_categories():
    # Shares 1/2, 1/2 against 3/4, 1/4; mixture 5/8, 3/8.
    kl_p = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)
    kl_q = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)
    assert drift.jensen_shannon(A2B2, A3B1, numeric=False) == pytest.approx(
        math.sqrt((kl_p + kl_q) / 2)
    )
    assert drift.jensen_shannon(A2B2, A3B1, False) == pytest.approx(
        jensenshannon([0.5, 0.5], [0.75, 0.25])
    )
    # PSI = sum (ref - cur) * ln(ref / cur) = (-1/4) ln(2/3) + (1/4) ln 2.
    assert drift.psi(A2B2, A3B1, False) == pytest.approx(
        -0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    )


def test_empty_bins_get_evidentlys_tiny_share():
    ref, cur = drift.binned_shares(
        np.array(["a", "b"], dtype=object), np.array(["c", "c"], dtype=object), False, True
    )
    assert ref.tolist() == [0.5, 0.5, 0.0001] and cur.tolist() == [0.0001, 0.0001, 1.0]


def test_p_values():
    # Expected counts 2, 2 against observed 3, 1: chi-square 1.0 with one degree of freedom.
    assert drift.chi_square_p_value(A2B2, A3B1) == pytest.approx(0.317311, abs=1e-6)
    a, b = np.arange(50.0), np.arange(50.0) + 20
    assert drift.ks_p_value(a, b) == pytest.approx(ks_2samp(a, b).pvalue)


def test_the_method_follows_evidently_by_sample_size_and_kind():
    rng = np.random.default_rng(1)
    big, small = rng.normal(size=1500), rng.normal(size=500)
    assert drift.column_drift("x", big, big + 1, True).method == "wasserstein"
    assert drift.column_drift("x", big, big + 1, True).drifted
    assert drift.column_drift("x", small, small, True).method == "ks"
    assert not drift.column_drift("x", small, small, True).drifted
    few = rng.integers(0, 3, size=1500).astype(float)
    assert drift.column_drift("x", few, few, True).method == "jensenshannon"
    cats = np.array(["a", "b"] * 750, dtype=object)
    assert drift.column_drift("c", cats, cats, False).method == "jensenshannon"
    assert drift.column_drift("c", cats[:100], cats[:100], False).method == "chisquare"
    # Missing values are left out, not counted as a category.
    with_nan = np.array([1.0, 2.0, np.nan] * 800)
    same = drift.column_drift("x", with_nan, with_nan, True)
    assert (same.method, same.statistic) == ("jensenshannon", 0.0)
    assert drift.chi_square_p_value(np.ones(5), np.ones(3)) == 1.0


def test_dataset_verdict_is_the_share_of_drifted_columns_per_group():
    def col(name, drifted):
        return drift.ColumnDrift(name, "numeric", "wasserstein", 0.2, 0.1, drifted, 0.0)

    columns = [
        col("u1", True),
        col("u2", False),
        col("a1", True),
        col("a2", True),
        col("a3", False),
    ]
    verdict = drift.dataset_drift(
        columns, {"user": ["u1", "u2"], "artwork": ["a1", "a2", "a3"]}, {"artwork": 0.7}
    )
    assert verdict.groups == {"user": (0.5, 0.5, True), "artwork": (2 / 3, 0.7, False)}
    assert verdict.drifted


def test_schema_drift_names_new_and_missing_columns_and_new_categories():
    found = drift.schema_drift(
        ["a", "b"], ["b", "c"], {"style": {"cubism"}}, {"style": {"cubism", "generative"}}
    )
    assert found.new_columns == ["c"] and found.missing_columns == ["a"]
    assert found.new_categories == {"style": ["generative"]}
    assert found.drifted
    assert not drift.schema_drift(["a"], ["a"], {}, {}).drifted


# The calibrated rule: effect size against a floor and a seeded permutation null.

STYLES = np.array(list("abcdefghij"), dtype=object)


def test_identical_small_samples_are_not_flagged():
    ref, cur = np.array(["a", "b"] * 10, dtype=object), np.array(["a", "b"] * 3, dtype=object)
    same = drift.calibrated_drift("c", ref, cur, False)
    assert (same.method, same.statistic, same.drifted) == ("jensenshannon", 0.0, False)
    numbers = drift.calibrated_drift("x", np.arange(20.0), np.arange(0.0, 20, 3), True)
    assert numbers.method == "wasserstein" and not numbers.drifted


def test_small_same_process_samples_evidently_flags_are_not_flagged():
    # 30 reference and 10 current draws of ten equally likely styles: a style missing from the
    # reference but drawn today is an infinite chi-square to Evidently's small-sample test.
    rng = np.random.default_rng(3)
    evidently = calibrated = 0
    for i in range(100):
        ref, cur = STYLES[rng.integers(0, 10, 30)], STYLES[rng.integers(0, 10, 10)]
        evidently += drift.column_drift("s", ref, cur, False).drifted
        calibrated += drift.calibrated_drift(f"s{i}", ref, cur, False).drifted
    assert evidently >= 30 and calibrated <= 5


def test_a_clear_shift_of_the_same_small_size_is_flagged():
    ref = np.array(["a", "b"] * 10, dtype=object)
    moved = drift.calibrated_drift("c", ref, np.array(["c"] * 6, dtype=object), False)
    # Disjoint supports: the largest Jensen-Shannon distance, sqrt(ln 2).
    assert moved.statistic == pytest.approx(math.sqrt(math.log(2)))
    assert moved.drifted and moved.p_value < 0.01 and moved.threshold < moved.statistic
    shifted = drift.calibrated_drift("x", np.arange(20.0), np.arange(0.0, 20, 3) + 30, True)
    assert shifted.drifted and shifted.statistic > 4


def test_a_tiny_shift_in_huge_samples_is_significant_but_not_drift():
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=200_000), rng.normal(0.03, 1.0, size=50_000)
    tiny = drift.calibrated_drift("x", ref, cur, True)
    assert tiny.p_value < 0.01  # real, as a test of significance would say
    assert tiny.statistic < 0.1 and tiny.threshold == 0.1 and not tiny.drifted
    assert drift.calibrated_drift("x", ref, cur + 0.2, True).drifted


def test_the_null_is_seeded_and_subsampled_nulls_scale_to_the_real_sizes():
    rng = np.random.default_rng(5)
    ref, cur = STYLES[rng.integers(0, 10, 4_000)], STYLES[rng.integers(0, 10, 1_500)]
    first = drift.calibrated_drift("s", ref, cur, False)
    assert first == drift.calibrated_drift("s", ref, cur, False)
    exact = drift.calibrated_drift(
        "s", ref, cur, False, drift.DriftRule(min_effect=0.0, max_null_rows=10**6)
    )
    scaled = drift.calibrated_drift("s", ref, cur, False, drift.DriftRule(min_effect=0.0))
    assert scaled.threshold == pytest.approx(exact.threshold, rel=0.25)
    numbers = rng.normal(size=6_000)
    exact = drift.calibrated_drift(
        "x",
        numbers[:4_000],
        numbers[4_000:],
        True,
        drift.DriftRule(min_effect=0.0, max_null_rows=10**6),
    )
    scaled = drift.calibrated_drift(
        "x", numbers[:4_000], numbers[4_000:], True, drift.DriftRule(min_effect=0.0)
    )
    assert scaled.threshold == pytest.approx(exact.threshold, rel=0.25)


def test_the_same_rows_in_another_order_get_the_same_verdict():
    rng = np.random.default_rng(8)
    ref, cur = STYLES[rng.integers(0, 10, 3_000)], STYLES[rng.integers(0, 6, 800)]
    units = (np.arange(3_000) // 3, 1_000 + np.arange(800) // 4)
    order_ref, order_cur = rng.permutation(3_000), rng.permutation(800)
    for clusters in (None, units):
        moved = None if clusters is None else (units[0][order_ref], units[1][order_cur])
        first = drift.calibrated_drift("s", ref, cur, False, clusters=clusters)
        again = drift.calibrated_drift("s", ref[order_ref], cur[order_cur], False, clusters=moved)
        assert again == first


def test_the_evidently_rule_is_still_there_score_for_score():
    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=500), rng.normal(0.5, 1.0, size=200)
    rule = drift.DriftRule(calibrated=False)
    assert drift.calibrated_drift("x", ref, cur, True, rule) == drift.column_drift(
        "x", ref, cur, True
    )


def test_clustered_rows_move_together_in_the_null():
    # Ten buyers a day, each converting on three works of their one favourite style: thirty rows
    # but ten draws of taste. Shuffling rows would take chance for drift far more often.
    rng = np.random.default_rng(7)
    rows_alarms = unit_alarms = 0
    for i in range(60):
        ref_taste, cur_taste = rng.integers(0, 10, 30), rng.integers(0, 10, 10)
        ref, cur = STYLES[np.repeat(ref_taste, 3)], STYLES[np.repeat(cur_taste, 3)]
        units = (np.repeat(np.arange(30), 3), np.repeat(np.arange(30, 40), 3))
        rows_alarms += drift.calibrated_drift(f"s{i}", ref, cur, False).drifted
        unit_alarms += drift.calibrated_drift(f"s{i}", ref, cur, False, clusters=units).drifted
    assert rows_alarms >= 10 and unit_alarms <= 3
    # A real change still shows: every buyer today converts on one style.
    ref = STYLES[np.repeat(rng.integers(0, 10, 30), 3)]
    cur = np.array(["a"] * 30, dtype=object)
    units = (np.repeat(np.arange(30), 3), np.repeat(np.arange(30, 40), 3))
    assert drift.calibrated_drift("s", ref, cur, False, clusters=units).drifted
