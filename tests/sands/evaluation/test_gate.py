"""The promotion gate on hand-made evaluations: pass, fail, first model, floors, slices,
popularity always a contender, and gains that must exceed chance."""

import numpy as np

from sands.evaluation.behaviour import BehaviourResult
from sands.evaluation.gate import GateRules, decide, slice_regressions
from sands.evaluation.offline import Evaluation, SliceResult

GOOD_BEHAVIOUR = [BehaviourResult("invariance", True, 0.0, "no change")]
# Per-user NDCG around each evaluation's mean: the same user-level pattern for every model, so
# paired gains are exactly the difference of means unless a test adds its own noise.
PATTERN = np.tile([-0.05, 0.05], 50)


def evaluation(
    name: str, ndcg: float, auc: float = 0.75, slices=(), noise: np.ndarray | None = None
) -> Evaluation:
    per_user = ndcg + PATTERN + (0 if noise is None else noise)
    return Evaluation(
        name=name,
        overall={"ndcg_at_10": ndcg, "users": 100.0, "positives": 120.0},
        pointwise={"auc": auc},
        reliability=[],
        slices=[SliceResult(d, v, users, s, 0.0) for d, v, users, s in slices],
        by_day=[],
        user_ndcg={f"u{i}": float(v) for i, v in enumerate(per_user)},
    )


BASELINE = evaluation("popularity", 0.08, auc=0.5)
RULES = GateRules(min_improvement=0.005)


def failed(decision) -> set[str]:
    return {c.name for c in decision.criteria if not c.passed}


def test_a_challenger_beating_the_champion_by_the_margin_passes():
    decision = decide(
        evaluation("challenger", 0.120),
        evaluation("champion", 0.110),
        BASELINE,
        GOOD_BEHAVIOUR,
        RULES,
    )
    assert decision.passed and decision.reference == "champion and popularity"
    assert "100 users, 120 positives" in decision.criteria[0].detail


def test_beating_the_champion_is_not_enough_when_popularity_is_better():
    # After a change of taste: the old champion fell behind popularity, and so does the new one.
    decision = decide(
        evaluation("challenger", 0.10),
        evaluation("champion", 0.07),
        evaluation("popularity", 0.20, auc=0.5),
        GOOD_BEHAVIOUR,
        RULES,
    )
    assert not decision.passed and failed(decision) == {"beats popularity"}
    assert "ndcg_at_10 0.1000 vs popularity 0.2000" in decision.reasons[0]


def test_a_gain_within_chance_is_not_promoted():
    # The mean is 0.012 higher, but one user in ten swings by +-0.5: the interval spans zero.
    rng = np.random.default_rng(4)
    swings = np.where(rng.random(100) < 0.1, rng.choice([-0.5, 0.5], 100), 0.0)
    noisy = evaluation("challenger", 0.122, noise=swings - swings.mean())
    decision = decide(noisy, evaluation("champion", 0.110), BASELINE, GOOD_BEHAVIOUR, RULES)
    assert failed(decision) == {"beats champion"}
    assert "CI" in decision.reasons[0]
    means_only = GateRules(min_improvement=0.005, confidence=0.0)
    assert decide(noisy, evaluation("champion", 0.110), BASELINE, GOOD_BEHAVIOUR, means_only).passed


def test_a_challenger_within_the_margin_of_the_champion_fails():
    decision = decide(
        evaluation("challenger", 0.114),
        evaluation("champion", 0.110),
        BASELINE,
        GOOD_BEHAVIOUR,
        RULES,
    )
    assert not decision.passed and failed(decision) == {"beats champion"}
    assert "needs > 0.1150" in decision.reasons[0]


def test_the_first_model_is_held_to_the_popularity_baseline():
    assert decide(evaluation("challenger", 0.09), None, BASELINE, GOOD_BEHAVIOUR, RULES).passed
    weak = decide(evaluation("challenger", 0.07), None, BASELINE, GOOD_BEHAVIOUR, RULES)
    assert not weak.passed and weak.reference == "popularity"
    assert decide(
        evaluation("challenger", 0.09), None, BASELINE, GOOD_BEHAVIOUR, RULES
    ).reference == ("popularity")
    assert failed(weak) == {"beats popularity"}


def test_floors_apply_even_when_the_champion_is_beaten():
    decision = decide(
        evaluation("challenger", 0.2, auc=0.55),
        evaluation("champion", 0.1),
        BASELINE,
        GOOD_BEHAVIOUR,
        RULES,
    )
    assert failed(decision) == {"floor auc"}


def test_a_guarded_slice_regressing_beyond_tolerance_fails_small_slices_are_ignored():
    champion = evaluation(
        "champion",
        0.10,
        slices=[
            ("user_type", "new", 50, 0.20),
            ("user_type", "returning", 500, 0.10),
            ("segment", "segment 3", 5, 0.50),
            ("country", "JP", 80, 0.30),
        ],
    )
    challenger = evaluation(
        "challenger",
        0.12,
        slices=[
            ("user_type", "new", 50, 0.10),
            ("user_type", "returning", 500, 0.12),
            ("segment", "segment 3", 5, 0.0),
            ("country", "JP", 80, 0.0),
        ],
    )
    worse = slice_regressions(challenger, champion, RULES)
    # segment 3 has too few users to judge; country is not guarded.
    assert worse == [("user_type", "new", 0.10, 0.20)]
    decision = decide(challenger, champion, BASELINE, GOOD_BEHAVIOUR, RULES)
    assert failed(decision) == {"guarded slices"}


def test_failed_behaviour_blocks_promotion():
    broken = [BehaviourResult("invariance", False, 0.3, "no change")]
    decision = decide(evaluation("challenger", 0.2), None, BASELINE, broken, RULES)
    assert failed(decision) == {"behaviour tests"}
    lenient = decide(
        evaluation("challenger", 0.2), None, BASELINE, broken, GateRules(require_behaviour=False)
    )
    assert lenient.passed


def test_a_challenger_that_already_serves_passes_without_comparison():
    same = evaluation("challenger", 0.1)
    same.version = 4
    champion = evaluation("champion", 0.1)
    champion.version = 4
    decision = decide(same, champion, BASELINE, [], RULES)
    assert decision.passed and [c.name for c in decision.criteria] == ["already champion"]
