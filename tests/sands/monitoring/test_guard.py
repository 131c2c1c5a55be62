"""The serving guard: the champion arm moves to popularity when the champion's own logged lists
say popularity is better beyond the interval, as when the offline verdict says so."""

from __future__ import annotations

from pathlib import Path

from sands.evaluation.off_policy import Estimate
from sands.evaluation.policy_value import PopularityLead
from sands.models.aliases import CHAMPION_POLICY, POPULARITY_POLICY
from sands.monitoring.guard import guard_serving
from sands.monitoring.verdicts import Objective, QualityVerdict
from sands.settings import SandsPaths
from tests.builders.serving import register, registry_for

# Offline, the champion leads popularity (no paired gain: nothing to act on).
OFFLINE_QUIET = QualityVerdict("2026-09-19", 0.12, 0.08, 40, 1, Objective())


def lead(low: float, high: float) -> PopularityLead:
    value = (low + high) / 2
    return PopularityLead(
        Estimate("pbm difference", value, low, high, 400, 350.0, 0), 0.95, ["2026-09-19"]
    )


def test_the_logged_lists_move_the_champion_arm_to_popularity_only_beyond_the_interval(
    tmp_path: Path,
) -> None:
    registry = registry_for(SandsPaths.from_env({"SANDS_HOME": str(tmp_path)}))
    register(registry, seed=1, promote=True)
    within = guard_serving(registry, OFFLINE_QUIET, "test", lead(-0.002, 0.010))
    assert within == CHAMPION_POLICY and registry.serving_policy() == CHAMPION_POLICY
    assert guard_serving(registry, OFFLINE_QUIET, "test", None) == CHAMPION_POLICY
    beyond = guard_serving(registry, OFFLINE_QUIET, "test", lead(0.004, 0.016))
    assert beyond == POPULARITY_POLICY and registry.serving_policy() == POPULARITY_POLICY
    reason = registry.history()[-1].reason
    assert reason.startswith("online: popularity - champion on the champion's logged lists of")
    assert "log support 95%" in reason
