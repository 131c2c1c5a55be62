"""The serving guard: what the champion arm serves, the champion or popularity, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sands.evaluation.offline import EvaluationSpec
from sands.models.aliases import CHAMPION_POLICY, POPULARITY_POLICY
from sands.monitoring.champion import champion_quality
from sands.monitoring.verdicts import Objective, QualityVerdict

if TYPE_CHECKING:
    from sands.evaluation.policy_value import PopularityLead
    from sands.models.registry import Registry


def guard_serving(
    registry: Registry,
    verdict: QualityVerdict,
    actor: str,
    online: PopularityLead | None = None,
) -> str:
    """Move the champion arm to popularity while popularity is clearly better (offline, or by the
    champion's logged lists), and back when the champion is clearly better again offline; what
    the champion arm serves now."""
    policy = registry.serving_policy()
    if verdict.popularity_should_serve:
        registry.set_serving_policy(POPULARITY_POLICY, actor, verdict.guard_reason())
        return POPULARITY_POLICY
    if online is not None and online.popularity_clearly_better:
        registry.set_serving_policy(POPULARITY_POLICY, actor, f"online: {online.describe()}")
        return POPULARITY_POLICY
    if policy == POPULARITY_POLICY and verdict.champion_clearly_better:
        registry.set_serving_policy(CHAMPION_POLICY, actor, verdict.guard_reason())
        return CHAMPION_POLICY
    return policy


def guard_new_champion(
    registry: Registry,
    lake_root: str,
    objective: Objective,
    actor: str,
    storage_options: dict[str, str] | None = None,
) -> tuple[str, QualityVerdict | None]:
    """Judge a just-promoted champion as the guard would tomorrow, on the newest label days: the
    gate pooled its whole holdout, and while tastes move its older days flatter the challenger."""
    found = champion_quality(registry, lake_root, objective, EvaluationSpec(), storage_options)
    if found is None:
        return registry.serving_policy(), None
    _, verdict = found
    return guard_serving(registry, verdict, actor), verdict
