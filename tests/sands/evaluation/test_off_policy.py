"""Off-policy estimators on logs small enough to compute by hand, and on one simulated log whose
true value is known in closed form."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sands.evaluation.off_policy import (
    ClickModel,
    Estimate,
    LoggedLists,
    calibrated,
    click_noise,
    cross_fit_folds,
    cross_fitted,
    doubly_robust,
    ips,
    own_click_model,
    paired_dr_difference,
    pbm,
    snips,
    standard_error,
    support,
)
from sands.serving.exploration import Exploration, exposure


def logged(clicks, propensity, theta=(1.0, 1.0)) -> LoggedLists:
    clicks, propensity = np.array(clicks, float), np.array(propensity, float)
    explored = np.zeros(clicks.shape, bool)
    return LoggedLists(
        clicks, propensity, exposure(propensity, explored, np.array(theta)), clicks == clicks
    )


# Slot 1 always shows A; slot 2 shows B or C with chance 0.5 each. Rows: [A,B] [A,C] [A,B] [A,C].
COIN = logged([[0, 1], [0, 0], [0, 0], [1, 1]], [[1, 0.5], [1, 0.5], [1, 0.5], [1, 0.5]])
# The target always serves [A, C]: where it puts each shown item (0: not in its list).
ALWAYS_C = np.array([[1, 0], [1, 2], [1, 0], [1, 2]])


def test_on_policy_ips_is_the_observed_clicks_per_list_with_a_normal_interval():
    log = logged([[1, 0], [0, 0], [1, 1]], [[1, 1]] * 3)
    estimate = ips(log, np.array([[1, 2]] * 3))
    # Per list 1, 0, 2: mean 1, sample sd 1, half-width 1.96 / sqrt(3).
    assert estimate.value == 1.0
    assert (estimate.low, estimate.high) == pytest.approx((1 - 1.1316, 1 + 1.1316), abs=1e-4)
    assert (estimate.lists, estimate.effective_lists, estimate.clipped) == (3, 3.0, 0)


def test_ips_counts_only_clicks_the_target_would_have_had_and_reweights_them():
    # A's slot: 1 click in 4 lists; C's slot, seen in half the lists: 1 click in 2, weight 2.
    estimate = ips(COIN, ALWAYS_C)
    assert estimate.value == 0.75  # 0.25 + 0.5
    # Per-list total weights 1, 3, 1, 3: (8 ** 2) / 20.
    assert estimate.effective_lists == pytest.approx(3.2)


def test_snips_normalises_each_position_by_its_mean_weight():
    assert snips(COIN, ALWAYS_C).value == pytest.approx(0.75)
    # C happened to show in 3 lists of 4 (clicked once): IPS divides its click by the 2 lists it
    # expected, SNIPS by the 3 it saw.
    unlucky = logged([[0, 1], [0, 0], [0, 0], [1, 0]], [[1, 0.5]] * 4)
    showed_c = np.array([[1, 2], [1, 2], [1, 2], [1, 0]])
    assert ips(unlucky, showed_c).value == pytest.approx(0.25 + 0.5)
    assert snips(unlucky, showed_c).value == pytest.approx(0.25 + 1 / 3)


def test_clipping_caps_weights_and_counts_what_it_cut():
    estimate = ips(COIN, ALWAYS_C, clip=1.5)
    assert (estimate.value, estimate.clipped) == (pytest.approx((1 + 1.5) / 4), 2)


# The logger always serves [A, B]; examination 1 at the top, 0.5 below. A was clicked in 1 of 4
# lists (relevance 0.25), B in 1 of 4 at half examination (relevance 0.5).
FIXED = logged([[1, 1], [0, 0], [0, 0], [0, 0]], [[1, 1]] * 4, theta=(1.0, 0.5))
THETA = np.array([1.0, 0.5])
SWAPPED = np.array([[2, 1]] * 4)  # the target serves [B, A]


def test_a_swapped_list_is_invisible_to_item_position_ips_but_not_to_the_click_model():
    assert ips(FIXED, SWAPPED).value == 0.0  # never the same item at the same position
    # PBM: B on top earns 1 x 0.5, A below 0.5 x 0.25.
    assert pbm(FIXED, SWAPPED, THETA).value == pytest.approx(0.625)


def test_doubly_robust_is_right_with_a_right_model_or_with_right_weights():
    right = doubly_robust(
        FIXED, SWAPPED, THETA, np.array([[0.25, 0.5]] * 4), np.array([[0.5, 0.25]] * 4)
    )
    assert right.value == pytest.approx(0.625)
    knows_nothing = doubly_robust(FIXED, SWAPPED, THETA, np.zeros((4, 2)), np.zeros((4, 2)))
    assert knows_nothing.value == pytest.approx(pbm(FIXED, SWAPPED, THETA).value)


def test_a_calibrated_click_model_reads_click_rates_per_score_bin_from_the_log():
    # A scored 1 everywhere, B 2: A clicked once in 4 examinations, B once in 4 x 0.5.
    scores = np.array([[1.0, 2.0]] * 4)
    model = calibrated(scores, FIXED.clicks, FIXED.shown, THETA, bins=2)
    assert model(np.array([1.0, 2.0, 5.0])).tolist() == [0.25, 0.5, 0.5]
    assert model(np.array([np.nan]))[0] == pytest.approx(2 / 6)  # the log's overall rate
    # Read at a target's list one slot short: the empty slot is worth nothing.
    view = ClickModel.of(model, scores, np.array([[2.0, np.nan]] * 4))
    assert view.listed[0].tolist() == [0.5, 0.0] and view.shown[0].tolist() == [0.25, 0.5]


def test_cross_fitting_deals_whole_users_to_folds_in_user_order():
    users = np.array(["u2", "u1", "u2", "u3", "u1"])
    with_users = LoggedLists(*(np.zeros((5, 1)),) * 3, np.ones((5, 1), bool), groups=users)
    # u1 -> fold 0, u2 -> 1, u3 -> 0: a user's lists never straddle folds.
    assert cross_fit_folds(with_users, folds=2).tolist() == [1, 0, 1, 0, 0]
    assert cross_fit_folds(with_users, folds=4).tolist() == [1, 0, 1, 2, 0]  # 3 users, 3 folds
    assert cross_fit_folds(replace(with_users, groups=np.array(["u1"] * 5))).tolist() == [0] * 5
    assert cross_fit_folds(FIXED, folds=2).tolist() == [0, 1, 0, 1]  # every list its own user


def test_a_cross_fitted_click_model_reads_each_list_from_the_other_folds_clicks():
    # A scored 1, B 2, as above; only list 0 was clicked (A once, B once at half examination).
    scores = np.array([[1.0, 2.0]] * 4)
    swapped = np.array([[2.0, 1.0]] * 4)
    model = cross_fitted(FIXED, scores, swapped, THETA, folds=2)
    # Lists 0 and 2 are read from lists 1 and 3, which saw no click; lists 1 and 3 from 0 and 2:
    # A 1 click in 2 examinations, B 1 in 2 x 0.5.
    assert model.shown.tolist() == [[0.0, 0.0], [0.5, 1.0], [0.0, 0.0], [0.5, 1.0]]
    assert model.listed.tolist() == [[0.0, 0.0], [1.0, 0.5], [0.0, 0.0], [1.0, 0.5]]
    # One fold is the in-sample fit of `calibrated`.
    alone = cross_fitted(FIXED, scores, swapped, THETA, folds=1)
    assert alone.shown.tolist() == [[0.25, 0.5]] * 4 and alone.listed.tolist() == [[0.5, 0.25]] * 4
    # A target's own click model is cross-fitted: with 4 lists of 4 users, each list's from the
    # other three. List 0's clicks are nowhere else, so its model expects none.
    own = own_click_model(FIXED, scores, swapped, THETA)
    assert own.shown[0].tolist() == [0.0, 0.0] and own.shown[1].tolist() == [1 / 3, 2 / 3]


def test_the_paired_dr_difference_lets_the_click_model_speak_where_the_log_cannot_see():
    logger = (
        np.array([[1, 2]] * 4),
        ClickModel(np.array([[0.25, 0.5]] * 4), np.array([[0.25, 0.5]] * 4)),
    )
    swapped = (SWAPPED, ClickModel(np.array([[0.25, 0.5]] * 4), np.array([[0.5, 0.25]] * 4)))
    # The logger's own list: 0.25 + 0.5 x 0.5 = 0.5; [B, A]: 0.625 (as above).
    both = paired_dr_difference(FIXED, swapped, logger, THETA)
    assert both.value == pytest.approx(0.125)
    # [D, A], D never logged and 0.8 to the model: 0.8 + 0.5 x 0.25 = 0.925, where the PBM sees
    # only A's 0.125.
    unseen = (
        np.array([[2, 0]] * 4),
        ClickModel(np.array([[0.25, 0.5]] * 4), np.array([[0.8, 0.25]] * 4)),
    )
    assert paired_dr_difference(FIXED, unseen, logger, THETA).value == pytest.approx(0.425)
    assert pbm(FIXED, unseen[0], THETA).value == pytest.approx(0.125)


def test_on_a_simulated_log_pbm_and_dr_cover_the_true_value_and_ips_does_not():
    """A logger with slot exploration that serves the target's five items in reverse order. Clicks
    follow the position-based model, so the target's true value is sum_k theta_k r(target_k)."""
    rng = np.random.default_rng(3)
    items, k, n = 30, 5, 40_000
    relevance = rng.uniform(0.02, 0.3, items)
    theta = 1.0 / np.arange(1, k + 1)
    target = sorted(range(items), key=lambda i: -relevance[i])[:k]
    logger_ranking = target[::-1] + [i for i in rng.permutation(items) if i not in target]
    explore = Exploration(rate=0.2, pool=20)
    shown = [explore.show(logger_ranking, k, rng) for _ in range(n)]
    ids = np.array([s.artwork_ids for s in shown])
    propensity = np.array([s.propensities for s in shown])
    explored = np.array([s.explored for s in shown])
    clicks = (rng.random((n, k)) < theta * relevance[ids]).astype(float)
    log = LoggedLists(clicks, propensity, exposure(propensity, explored, theta), clicks == clicks)
    where = {item: position for position, item in enumerate(target, start=1)}
    target_position = np.vectorize(lambda i: where.get(i, 0))(ids)
    truth = float((theta * relevance[target]).sum())
    by_pbm = pbm(log, target_position, theta, clip=1e9)
    assert by_pbm.low <= truth <= by_pbm.high
    model = relevance * 0.5  # a click model that is wrong by half
    by_dr = doubly_robust(
        log, target_position, theta, model[ids], np.tile(model[target], (n, 1)), clip=1e9
    )
    assert by_dr.low <= truth <= by_dr.high
    # Only the middle item sits where the target puts it: item-position IPS sees little else.
    assert ips(log, target_position, clip=1e9).high < truth / 2


def test_support_is_the_share_of_the_target_s_examination_the_log_could_show():
    # [A, C]: A always shown, C shown half the time, counted twice when it is: all reachable.
    assert support(COIN, ALWAYS_C, np.array([1.0, 1.0])) == 1.0
    # [A, D]: D is never shown, so half the examination (theta 1, 1) is out of reach.
    always_d = np.array([[1, 0]] * 4)
    assert support(COIN, always_d, np.array([1.0, 1.0])) == 0.5
    # [D, A] with theta (1, 0.5): only A's 0.5 of 1.5 is reachable.
    d_first = np.array([[2, 0]] * 4)
    assert support(COIN, d_first, np.array([1.0, 0.5])) == pytest.approx(1 / 3)


def test_a_realised_day_is_judged_with_its_own_noise_added_to_the_interval():
    # se = 0.01 / 1.96 = 0.005102; with a day's se 0.004 the 95 % spread is
    # 1.96 * hypot(0.005102, 0.004) = 0.012707 around 0.05.
    estimate = Estimate("pbm", 0.05, 0.04, 0.06, 1_000, 900.0, 0)
    assert estimate.standard_error == pytest.approx(0.005102, abs=1e-6)
    assert estimate.predicts(0.062, 0.004)  # outside the interval, inside the prediction
    assert not estimate.predicts(0.063, 0.004)
    assert not estimate.predicts(0.0605, 0.0)  # a noiseless value: the interval itself
    assert estimate.predicts(0.0595, 0.0)


def test_lists_of_the_same_user_widen_the_interval_as_one_draw():
    # Terms 1, 1, 0, 0: mean 0.5, residuals +-0.5. As four independent lists the standard error
    # is std(ddof=1) / 2 = 0.5774 / 2 = 0.2887; as two users with two identical lists each, the
    # cluster sums are +1 and -1: sqrt(2 / 1 * (1 + 1)) / 4 = 0.5.
    terms = np.array([1.0, 1.0, 0.0, 0.0])
    assert standard_error(terms) == pytest.approx(0.288675, abs=1e-6)
    assert standard_error(terms, np.array(["a", "a", "b", "b"])) == pytest.approx(0.5)
    assert standard_error(terms, np.array(["a", "b", "c", "d"])) == pytest.approx(
        0.288675, abs=1e-6
    )
    clicks = np.array([[1.0], [1.0], [0.0], [0.0]])
    certain = np.ones((4, 1))
    log = LoggedLists(clicks, certain, certain, clicks == clicks, groups=np.array([7, 7, 9, 9]))
    estimate = pbm(log, np.ones((4, 1), np.int64), np.array([1.0]))
    assert estimate.value == 0.5 and estimate.high - 0.5 == pytest.approx(1.959964 * 0.5)


def test_an_unclicked_heavily_weighted_slot_still_widens_the_interval():
    # One slot per list, clicks 1, 0, 0, 0: the position's click rate is 0.25, p(1 - p) = 0.1875.
    # The target weights the last list 9 (an explored item it ranks high), never clicked here.
    # Sample: contributions 1, 0, 0, 0, standard error 0.5 / 2 = 0.25. Click noise:
    # sqrt((1 + 1 + 1 + 81) * 0.1875) / 4 = 0.99216, the larger, so it sets the interval.
    clicks = np.array([[1.0], [0.0], [0.0], [0.0]])
    weights = np.array([[1.0], [1.0], [1.0], [9.0]])
    log = LoggedLists(clicks, np.ones((4, 1)), np.ones((4, 1)), clicks == clicks)
    assert click_noise(weights, log) == pytest.approx(0.992157, abs=1e-6)
    exposure = 1.0 / weights  # pbm weight: the target's examination (1) over the logger's
    log = LoggedLists(clicks, np.ones((4, 1)), exposure, clicks == clicks)
    estimate = pbm(log, np.ones((4, 1), np.int64), np.array([1.0]))
    assert estimate.value == pytest.approx(0.25)
    assert estimate.standard_error == pytest.approx(0.992157, abs=1e-6)
