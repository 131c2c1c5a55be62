"""How many landing days a training set labels: enough positives on sparse histories."""

from sands.features.training_store import days_holding


def test_dense_days_keep_the_minimum_window():
    assert days_holding([500, 500, 500, 500], min_days=2, min_positives=300, max_days=28) == 2


def test_sparse_days_reach_back_until_the_positives_are_there():
    # Newest first: 3 + 0 + 4 + 5 = 12 >= 10 after four days.
    assert days_holding([3, 0, 4, 5, 9, 9], min_days=1, min_positives=10, max_days=28) == 4


def test_the_reach_is_capped_and_never_below_one_day():
    assert days_holding([1, 1, 1], min_days=1, min_positives=100, max_days=2) == 2
    assert days_holding([1, 1, 1], min_days=1, min_positives=100, max_days=28) == 3
    assert days_holding([], min_days=1, min_positives=10, max_days=28) == 1
    assert days_holding([0, 0], min_days=7, min_positives=0, max_days=28) == 7
