"""Ranking and pointwise metrics, written out so each can be checked by hand.

Ranking metrics take, per user, the ranked item list and the set of relevant items. Conventions:
binary gains; NDCG's ideal DCG and MAP's normaliser use min(|relevant|, k); recall divides by
|relevant| (a user with more relevant items than k cannot reach 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-15


def _hits(ranked: Sequence[str], relevant: set[str], k: int) -> np.ndarray:
    return np.fromiter((item in relevant for item in ranked[:k]), dtype=float)


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance."""
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, len(hits) + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(len(relevant), k) + 2))).sum()
    return float((hits * discounts).sum() / ideal)


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant items found in the top k."""
    return float(_hits(ranked, relevant, k).sum() / len(relevant)) if relevant else 0.0


def average_precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Mean of precision@i over the ranks i of hits, normalised by min(|relevant|, k)."""
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / min(len(relevant), k))


def hit_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 when any relevant item is in the top k."""
    return float(_hits(ranked, relevant, k).any())


def hit_matrix(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> np.ndarray:
    """(users, k) binary gains: 1 where the item at that rank is relevant; short lists pad 0."""
    hits = np.zeros((len(ranked), k))
    for row, (items, wanted) in enumerate(zip(ranked, relevant, strict=True)):
        for col, item in enumerate(items[:k]):
            if item in wanted:
                hits[row, col] = 1.0
    return hits


def ranking_metrics_per_user(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> dict[str, np.ndarray]:
    """`ndcg_at_k`, `recall_at_k`, `average_precision_at_k` and `hit_at_k` of many users at once
    (equal to them up to float rounding): one gain matrix instead of a Python call per user."""
    hits = hit_matrix(ranked, relevant, k)
    sizes = np.array([len(r) for r in relevant], dtype=float)
    capped = np.minimum(sizes, k).astype(int)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[capped]
    some = sizes > 0
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)

    def share(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        return np.divide(numerator, denominator, out=np.zeros(len(sizes)), where=some)

    return {
        "ndcg": share((hits * discounts).sum(axis=1), ideal),
        "recall": share(hits.sum(axis=1), sizes),
        "map": share((precision * hits).sum(axis=1), capped.astype(float)),
        "hit": np.where(some, hits.any(axis=1), False).astype(float),
    }


def catalogue_coverage(recommended: Sequence[Sequence[str]], catalogue_size: int) -> float:
    """Distinct recommended items over the catalogue size."""
    distinct = {item for items in recommended for item in items}
    return len(distinct) / catalogue_size if catalogue_size else 0.0


def popularity_percentiles(popularity: dict[str, float]) -> dict[str, float]:
    """Each item's popularity percentile in [0, 1]; ties share the mean rank."""
    items = sorted(popularity)
    values = np.array([popularity[i] for i in items], dtype=float)
    if len(values) <= 1:
        return dict.fromkeys(items, 1.0)
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # average ranks of ties
        same = values == value
        ranks[same] = ranks[same].mean()
    return dict(zip(items, ranks / (len(values) - 1), strict=True))


def popularity_bias(recommended: Sequence[Sequence[str]], percentile: dict[str, float]) -> float:
    """Mean popularity percentile of recommended items: 0.5 is neutral, 1 is only bestsellers."""
    values = [percentile.get(item, 0.0) for items in recommended for item in items]
    return float(np.mean(values)) if values else 0.0


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = np.asarray(scores)[order]
    # Average the ranks of tied scores.
    _, starts, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(starts, counts, strict=True):
        if count > 1:
            ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped away from 0 and 1."""
    p = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=float)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared error between probabilities and 0/1 labels."""
    return float(((np.asarray(probabilities) - np.asarray(labels, dtype=float)) ** 2).mean())


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability curve: predicted vs observed positive rate."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


def reliability_curve(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width probability bins; empty bins are left out."""
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    curve = []
    for b in range(bins):
        members = index == b
        if members.any():
            curve.append(
                ReliabilityBin(
                    lower=float(edges[b]),
                    upper=float(edges[b + 1]),
                    count=int(members.sum()),
                    mean_predicted=float(p[members].mean()),
                    observed_rate=float(y[members].mean()),
                )
            )
    return curve


def finite(values: dict[str, float]) -> dict[str, float]:
    """Only the finite numbers (MLflow and JSON reject NaN)."""
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


@dataclass(frozen=True)
class PairedGain:
    """Mean per-user gain of one recommender over another, with a bootstrap interval."""

    mean: float
    low: float
    high: float
    users: int

    def significant(self) -> bool:
        """The whole interval lies above zero."""
        return self.users > 0 and self.low > 0

    def describe(self, level: float) -> str:
        if not self.users:
            return "no common users"
        interval = f"{level:.0%} CI {self.low:+.4f}..{self.high:+.4f}"
        return f"gain {self.mean:+.4f} ({interval}, n={self.users})"


def paired_gain(
    mine: dict[str, float],
    theirs: dict[str, float],
    level: float = 0.9,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedGain:
    """Mean of mine - theirs over the users both scored, and a two-sided percentile bootstrap
    interval at `level` (users resampled with replacement, the same draws for both sides)."""
    users = sorted(set(mine) & set(theirs))
    if not users:
        return PairedGain(float("nan"), float("nan"), float("nan"), 0)
    gains = np.array([mine[u] - theirs[u] for u in users])
    draws = np.random.default_rng(seed).integers(0, len(gains), (resamples, len(gains)))
    means = gains[draws].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedGain(float(gains.mean()), float(low), float(high), len(users))
