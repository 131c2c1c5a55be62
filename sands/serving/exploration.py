"""Exploration with known propensities: what lets a log judge policies that did not serve it.

Epsilon exploration of slots: each of the `k` slots, independently with chance `rate`, shows an
artwork drawn from a pool instead of its ranked one (draws without replacement, so no artwork
shows twice). The pool is the next `pool` ranks plus the `popular` most popular artworks not
already in it: popularity is the baseline every challenger is judged against, so the log must
be able to see it. Every propensity is exact and simple: the ranked artwork at rank r is shown at
position r with chance 1 - rate and nowhere else; a pool artwork is shown at any given position
with chance rate / (size of the pool). Off-policy estimators (`sands.evaluation.off_policy`)
divide by these, so they are logged with every shown item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sands.serving.prediction_log import GREEDY


class Uniform(Protocol):
    """A source of uniform draws in [0, 1): `random.Random` (what serving seeds per impression)
    or a numpy `Generator`."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class ShownList:
    """The served list with, per item, its propensity and whether an exploration slot held it."""

    artwork_ids: list[str]
    propensities: list[float]
    explored: list[bool]


@dataclass(frozen=True)
class Exploration:
    """Epsilon exploration of slots from the ranks just below the list and the most popular
    artworks (off at rate 0)."""

    rate: float = 0.0
    pool: int = 40
    popular: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"exploration rate {self.rate} must be in [0, 1)")
        if self.pool < 1 or self.popular < 0:
            raise ValueError(
                f"exploration pool {self.pool} must be at least 1, "
                f"popular {self.popular} at least 0"
            )

    @property
    def name(self) -> str:
        if not self.rate:
            return GREEDY
        return f"epsilon-slots(rate={self.rate:g}, pool={self.pool}, popular={self.popular})"

    def active(self, ranked: int, k: int) -> bool:
        """Explore only when the full pool exists below the list: the propensities assume it."""
        return self.rate > 0 and ranked >= k + self.pool and self.pool >= k

    def show(
        self,
        ranked: Sequence[str],
        k: int,
        rng: Uniform,
        popular: Sequence[str] = (),
    ) -> ShownList:
        """The `k` items to serve from `ranked` (best first, at least k + pool long to explore);
        `popular`: the most popular artworks the user may be shown, best first."""
        top = list(ranked[:k])
        if not self.active(len(ranked), k):
            return ShownList(top, [1.0] * len(top), [False] * len(top))
        pool = list(ranked[k : k + self.pool])
        taken = set(top) | set(pool)
        pool += [a for a in popular if a not in taken][: self.popular]
        explored = [rng.random() < self.rate for _ in top]
        # Draws without replacement by a partial Fisher-Yates shuffle of the pool, one uniform
        # number each: this runs on every served request, where numpy's per-call overhead shows.
        order = list(range(len(pool)))
        for drawn, slot in enumerate(j for j, e in enumerate(explored) if e):
            pick = drawn + int(rng.random() * (len(order) - drawn))
            order[drawn], order[pick] = order[pick], order[drawn]
            top[slot] = pool[order[drawn]]
        chance = self.rate / len(pool)
        propensities = [chance if e else 1.0 - self.rate for e in explored]
        return ShownList(top, propensities, explored)


def exposure(propensity: np.ndarray, explored: np.ndarray, examination: np.ndarray) -> np.ndarray:
    """Each logged item's expected examination under the logger, sum_j theta_j P(item at j), from
    what was logged: a ranked item could only be at its own slot, a pool item at any slot alike."""
    theta = examination[: propensity.shape[-1]]
    return np.where(explored, propensity * theta.sum(), propensity * theta)


def reach(propensity: np.ndarray, explored: np.ndarray) -> np.ndarray:
    """Each logged item's chance of being shown anywhere in its list: a ranked item only at its
    own slot, a pool item at any of the list's slots alike (never at two)."""
    return np.where(explored, propensity * propensity.shape[-1], propensity)
