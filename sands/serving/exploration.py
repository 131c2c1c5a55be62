"""Exploration with known propensities: what lets a log judge policies that did not serve it.

Epsilon exploration of slots: each of the `k` slots, independently with chance `rate`, shows an
artwork drawn from the next `pool` ranks instead of its ranked one (draws without replacement, so
no artwork shows twice). Every propensity is exact and simple: the ranked artwork at rank r is
shown at position r with chance 1 - rate and nowhere else; a pool artwork is shown at any given
position with chance rate / pool. Off-policy estimators (`sands.evaluation.off_policy`) divide by
these, so they are logged with every shown item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sands.serving.prediction_log import GREEDY


@dataclass(frozen=True)
class ShownList:
    """The served list with, per item, its propensity and whether an exploration slot held it."""

    artwork_ids: list[str]
    propensities: list[float]
    explored: list[bool]


@dataclass(frozen=True)
class Exploration:
    """Epsilon exploration of slots from the ranks just below the list (off at rate 0)."""

    rate: float = 0.0
    pool: int = 40

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"exploration rate {self.rate} must be in [0, 1)")
        if self.pool < 1:
            raise ValueError(f"exploration pool {self.pool} must be at least 1")

    @property
    def name(self) -> str:
        return f"epsilon-slots(rate={self.rate:g}, pool={self.pool})" if self.rate else GREEDY

    def active(self, ranked: int, k: int) -> bool:
        """Explore only when the full pool exists below the list: the propensities assume it."""
        return self.rate > 0 and ranked >= k + self.pool and self.pool >= k

    def show(self, ranked: list[str], k: int, rng: np.random.Generator) -> ShownList:
        """The `k` items to serve from `ranked` (best first, at least k + pool long to explore)."""
        top = list(ranked[:k])
        if not self.active(len(ranked), k):
            return ShownList(top, [1.0] * len(top), [False] * len(top))
        replaced = np.flatnonzero(rng.random(len(top)) < self.rate)
        pool = ranked[k : k + self.pool]
        draws = rng.choice(self.pool, size=len(replaced), replace=False)
        explored = [False] * len(top)
        for slot, draw in zip(replaced, draws, strict=True):
            top[slot] = pool[draw]
            explored[slot] = True
        propensities = [self.rate / self.pool if e else 1.0 - self.rate for e in explored]
        return ShownList(top, propensities, explored)


def exposure(propensity: np.ndarray, explored: np.ndarray, examination: np.ndarray) -> np.ndarray:
    """Each logged item's expected examination under the logger, sum_j theta_j P(item at j), from
    what was logged: a ranked item could only be at its own slot, a pool item at any slot alike."""
    theta = examination[: propensity.shape[-1]]
    return np.where(explored, propensity * theta.sum(), propensity * theta)
