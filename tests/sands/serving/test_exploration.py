"""Slot exploration: what it shows and the propensities it declares for it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sands.serving.exploration import Exploration, exposure, reach

RANKED = [f"a{i}" for i in range(12)]


def test_without_exploration_the_top_k_is_served_with_certainty():
    shown = Exploration().show(RANKED, 3, np.random.default_rng(0))
    assert (shown.artwork_ids, shown.propensities, shown.explored) == (
        ["a0", "a1", "a2"],
        [1.0] * 3,
        [False] * 3,
    )


def test_declared_propensities_match_how_often_each_item_lands_in_each_slot():
    explore, k, draws = Exploration(rate=0.3, pool=4), 3, 40_000
    rng = np.random.default_rng(1)
    seen: Counter[tuple[str, int]] = Counter()
    declared: dict[tuple[str, int], float] = {}
    for _ in range(draws):
        shown = explore.show(RANKED, k, rng)
        assert len(set(shown.artwork_ids)) == k  # no artwork twice
        for slot, (item, p) in enumerate(zip(shown.artwork_ids, shown.propensities, strict=True)):
            seen[item, slot] += 1
            declared[item, slot] = p
    # Ranked items only at their own slot, 0.7 of the time; each of the 4 pool items 0.075.
    assert declared[("a1", 1)] == pytest.approx(0.7)
    assert declared[("a5", 0)] == pytest.approx(0.3 / 4)
    assert {item for item, _ in seen} == set(RANKED[:7])
    for key, p in declared.items():
        assert seen[key] / draws == pytest.approx(p, abs=4 * (p * (1 - p) / draws) ** 0.5)


def test_the_most_popular_artworks_join_the_pool_and_share_its_propensity():
    explore = Exploration(rate=0.5, pool=4, popular=2)
    # a1 is already in the list and a5 in the next ranks: the two added are a11 and a10.
    popular = ["a1", "a5", "a11", "a10", "a9"]
    seen = set()
    for seed in range(200):
        shown = explore.show(RANKED, 3, np.random.default_rng(seed), popular)
        for item, p, e in zip(shown.artwork_ids, shown.propensities, shown.explored, strict=True):
            assert p == (0.5 / 6 if e else 0.5)
            if e:
                seen.add(item)
    assert seen == {"a3", "a4", "a5", "a6", "a11", "a10"}


def test_exploration_stays_off_when_the_ranking_cannot_fill_the_pool():
    shown = Exploration(rate=0.5, pool=20).show(RANKED, 3, np.random.default_rng(0))
    assert shown.propensities == [1.0] * 3


def test_exposure_of_a_pool_item_spreads_over_every_slot():
    theta = np.array([1.0, 0.5, 0.25])
    out = exposure(np.array([0.9, 0.025, 0.9]), np.array([False, True, False]), theta)
    assert out == pytest.approx([0.9, 0.025 * 1.75, 0.225])


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="exploration rate"):
        Exploration(rate=1.0)


def test_reach_is_how_often_an_item_shows_anywhere_in_its_list():
    explore, rng, n = Exploration(rate=0.3, pool=5, popular=0), np.random.default_rng(1), 20_000
    shown = [explore.show(RANKED, 3, rng) for _ in range(n)]
    counts = Counter(a for s in shown for a in s.artwork_ids)
    declared = {}
    for s in shown:
        chances = reach(np.array(s.propensities), np.array(s.explored))
        declared |= dict(zip(s.artwork_ids, chances, strict=True))
    # Ranked a0 only at its own slot (0.7); pool a5 at any of 3 slots (3 x 0.3 / 5 = 0.18).
    assert declared["a0"] == pytest.approx(0.7) and declared["a5"] == pytest.approx(0.18)
    for item in ("a0", "a5"):
        assert counts[item] / n == pytest.approx(declared[item], abs=0.01)
