"""Behaviour tests for a ranker: perturbation, invariance and directional expectations.

Each test changes the input rows in a controlled way and states what the scores must do, in the
spirit of CheckList-style model testing. They run on held-out rows and return plain results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.models.ranking import LOG_FEATURES, PLAIN_FEATURES

CONTINUOUS = (*LOG_FEATURES, *PLAIN_FEATURES)
Scorer = Callable[[pa.Table], np.ndarray]


@dataclass(frozen=True)
class BehaviourResult:
    """One behaviour test: whether it passed, the measured value and what it was held to."""

    name: str
    passed: bool
    value: float
    expectation: str


def _scaled(rows: pa.Table, column: str, factor: np.ndarray) -> pa.Table:
    values = rows[column].cast(pa.float64()).to_numpy(zero_copy_only=False) * factor
    array = pa.array(values, pa.float64()).cast(rows.schema.field(column).type, safe=False)
    return rows.set_column(rows.schema.get_field_index(column), column, array)


def perturbation(
    score: Scorer,
    rows: pa.Table,
    noise: float = 0.01,
    min_rank_correlation: float = 0.95,
    seed: int = 0,
) -> BehaviourResult:
    """Multiply float features by 1 +- `noise`: the score order must barely move."""
    # Imported on use: heavy, and the code location is loaded by every step process.
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    perturbed = rows
    for column in CONTINUOUS:
        if pa.types.is_floating(rows.schema.field(column).type):
            factor = 1 + rng.uniform(-noise, noise, rows.num_rows)
            perturbed = _scaled(perturbed, column, factor)
    correlation = float(spearmanr(score(rows), score(perturbed)).statistic)
    return BehaviourResult(
        "perturbation",
        correlation >= min_rank_correlation,
        correlation,
        f"Spearman correlation of scores under {noise:.0%} noise >= {min_rank_correlation}",
    )


def invariance(score: Scorer, rows: pa.Table, seed: int = 0) -> BehaviourResult:
    """Shuffling row order and renaming user ids must not change any row's score."""
    rng = np.random.default_rng(seed)
    baseline = score(rows)
    order = rng.permutation(rows.num_rows)
    shuffled = rows.take(pa.array(order))
    renamed = shuffled.set_column(
        shuffled.schema.get_field_index("user_id"),
        "user_id",
        pc.binary_join_element_wise("renamed-", shuffled["user_id"], ""),
    )
    moved = np.empty_like(baseline)
    moved[order] = score(renamed)
    difference = float(np.abs(moved - baseline).max()) if len(baseline) else 0.0
    return BehaviourResult(
        "invariance", difference == 0.0, difference, "max |score change| == 0 (row order, ids)"
    )


def directional(score: Scorer, rows: pa.Table, boost: float = 0.2) -> BehaviourResult:
    """More affinity for a style must not lower scores of that style's artworks, and should raise
    them on average: raise `user_top_style_share` by `boost` where the styles match."""
    match = pc.fill_null(pc.equal(rows["user_top_style"], rows["artwork_style"]), False)
    matching = rows.filter(match)
    if matching.num_rows == 0:
        return BehaviourResult("directional", True, 0.0, "no style-matched rows to test")
    share = matching["user_top_style_share"].cast(pa.float64()).to_numpy(zero_copy_only=False)
    raised = matching.set_column(
        matching.schema.get_field_index("user_top_style_share"),
        "user_top_style_share",
        pa.array(np.clip(np.nan_to_num(share) + boost, 0, 1), pa.float64()),
    )
    change = score(raised) - score(matching)
    worst, mean = float(change.min()), float(change.mean())
    return BehaviourResult(
        "directional",
        worst >= -1e-6 and mean >= 0.0,
        mean,
        f"+{boost} style affinity: no score falls, mean change >= 0 (worst {worst:.4f})",
    )


def behaviour_tests(score: Scorer, rows: pa.Table, sample: int = 2000) -> list[BehaviourResult]:
    """All behaviour tests of a scoring function on up to `sample` rows (a fixed sample)."""
    if rows.num_rows > sample:
        picked = np.sort(np.random.default_rng(0).choice(rows.num_rows, sample, replace=False))
        rows = rows.take(pa.array(picked))
    return [perturbation(score, rows), invariance(score, rows), directional(score, rows)]
