"""Drift statistics against hand-computed values, and Evidently's choice of method."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from sands import drift

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
