"""Behaviour tests pass a sound ranker and catch scorers that break each expectation."""

import numpy as np
import pyarrow as pa

from sands.evaluation.behaviour import behaviour_tests, directional, invariance, perturbation
from sands.models.ranking import RankerParams, train_ranker
from tests.builders.models import planted_examples

ROWS = planted_examples(users=30, days=2, seed=3)


def test_a_trained_ranker_passes_every_behaviour_test():
    model = train_ranker(planted_examples(), None, RankerParams(trees=40, max_depth=4))
    results = behaviour_tests(model.scores, ROWS)
    assert [(r.name, r.passed) for r in results] == [
        ("perturbation", True),
        ("invariance", True),
        ("directional", True),
    ]


def test_invariance_catches_a_scorer_that_reads_the_user_id():
    def by_id(rows: pa.Table) -> np.ndarray:
        return np.array([hash(u) % 97 for u in rows["user_id"].to_pylist()], dtype=float)

    assert not invariance(by_id, ROWS).passed


def test_directional_catches_a_scorer_that_punishes_affinity():
    def contrarian(rows: pa.Table) -> np.ndarray:
        return -np.asarray(rows["user_top_style_share"].to_numpy(), dtype=float)

    result = directional(contrarian, ROWS)
    assert not result.passed and result.value < 0


def test_perturbation_catches_a_scorer_that_jumps_on_tiny_changes():
    def fragile(rows: pa.Table) -> np.ndarray:
        # The millionths of the price decide the score: 1% noise reorders everything.
        price = np.asarray(rows["artwork_price"].to_numpy(), dtype=float)
        return (price * 1e6) % 1.0

    assert not perturbation(fragile, ROWS).passed
