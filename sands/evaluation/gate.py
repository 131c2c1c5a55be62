"""The promotion gate: whether a challenger may replace the champion, and why.

Like TFX's Evaluator blessing: absolute floors always apply; the challenger must beat both the
champion and the popularity baseline on the primary metric by a margin, on the same holdout, and
(by default) by more than chance: the per-user paired bootstrap interval of the gain must lie
above zero. Popularity is always a contender because after a change of taste it is what a stale
model loses to first. No guarded slice may regress against the champion beyond a tolerance (a
first model has nothing to regress from); behaviour tests must pass. When the champion's lists
logged since the challenger's cut-off are enough to judge by (`sands.evaluation.policy_value`),
the challenger's off-policy estimate of clicks per list must not be below the champion's beyond
the interval of their paired difference (doubly robust, each model with its own calibrated click
model, by default): better offline but worse online is held back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sands.evaluation.behaviour import BehaviourResult
from sands.evaluation.metrics import paired_gain
from sands.evaluation.offline import PRIMARY, Evaluation
from sands.evaluation.policy_value import CHALLENGER, CTR, OffPolicyComparison


@dataclass(frozen=True)
class GateRules:
    """Thresholds of the gate; slices smaller than `min_slice_users` are too noisy to guard."""

    primary_metric: str = PRIMARY
    min_improvement: float = 0.0
    floors: dict[str, float] = field(default_factory=lambda: {"auc": 0.6, PRIMARY: 0.01})
    guarded_dimensions: tuple[str, ...] = ("user_type", "segment")
    slice_tolerance: float = 0.05
    min_slice_users: int = 30
    require_behaviour: bool = True
    # The gain over popularity must be significant at this two-sided level (0 turns it off).
    confidence: float = 0.9
    # The same over the champion. 0 would give a tie to the fresher challenger; measured on the
    # quality bench, that moved nothing served beyond noise (`docs/models.md`), so it stays 0.9.
    champion_confidence: float = 0.9
    # Hold back a challenger the champion's logged traffic estimates worse beyond the interval.
    off_policy: bool = True


@dataclass(frozen=True)
class Criterion:
    """One rule of the gate and how the challenger fared."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """The verdict, the reference the challenger was compared with, and every criterion."""

    passed: bool
    reference: str
    criteria: list[Criterion]

    @property
    def reasons(self) -> list[str]:
        """Why it failed (the failed criteria), or why it passed when nothing failed."""
        failed = [c.detail for c in self.criteria if not c.passed]
        return failed or [c.detail for c in self.criteria]

    def markdown(self) -> str:
        rows = "\n".join(
            f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |"
            for c in self.criteria
        )
        return "| criterion | result | detail |\n|---|---|---|\n" + rows


def _metric(evaluation: Evaluation, name: str) -> float:
    return evaluation.overall.get(name, evaluation.pointwise.get(name, float("nan")))


def slice_regressions(
    challenger: Evaluation, reference: Evaluation, rules: GateRules
) -> list[tuple[str, str, float, float]]:
    """Guarded slices where the challenger's NDCG is below the reference's by more than the
    tolerance: (dimension, value, challenger, reference)."""
    theirs = reference.slice_map()
    worse = []
    for s in challenger.slices:
        other = theirs.get((s.dimension, s.value))
        if s.dimension not in rules.guarded_dimensions or other is None:
            continue
        if min(s.users, other.users) < rules.min_slice_users:
            continue
        if s.ndcg < other.ndcg - rules.slice_tolerance:
            worse.append((s.dimension, s.value, s.ndcg, other.ndcg))
    return worse


def beats(
    challenger: Evaluation, reference: Evaluation, rules: GateRules, confidence: float
) -> Criterion:
    """Whether the challenger's primary metric beats the reference's by the margin, and (when
    `confidence` is above 0) by more than the paired bootstrap interval of the per-user gain."""
    primary = rules.primary_metric
    mine, theirs = _metric(challenger, primary), _metric(reference, primary)
    needed = theirs + rules.min_improvement
    passed = not math.isnan(mine) and mine > needed
    detail = (
        f"{primary} {mine:.4f} vs {reference.name} {theirs:.4f} (needs > {needed:.4f}, "
        f"margin {rules.min_improvement}; {challenger.users} users, "
        f"{challenger.positives} positives)"
    )
    # The interval is shown even where it is not required, at the popularity criterion's level.
    level = confidence or rules.confidence
    if level and primary == PRIMARY:
        gain = paired_gain(challenger.user_ndcg, reference.user_ndcg, level)
        if passed and confidence and not gain.significant():
            # Past the margin on the mean, yet within chance: said first, or the line reads as
            # a pass ("0.18 vs 0.05, needs > 0.05").
            passed = False
            detail = f"not beyond chance: the gain's {level:.0%} interval reaches 0; {detail}"
        detail += f"; {gain.describe(level)}" + ("" if confidence else ", not required")
    return Criterion(f"beats {reference.name}", passed, detail)


OFF_POLICY = "online estimate (off-policy)"


def online_estimate(comparison: OffPolicyComparison | None) -> Criterion:
    """Whether the logged traffic estimates the challenger no worse than the champion beyond the
    interval of the paired difference; passes, saying why, when the log cannot judge it (too few
    lists, or recomputed lists that do not reproduce what served)."""
    if comparison is None:
        return Criterion(OFF_POLICY, True, "not judged: no champion lists logged after the cut-off")
    why_not = comparison.unjudged_reason
    if why_not is not None:
        return Criterion(OFF_POLICY, True, f"not judged: {why_not}")
    mine, theirs, difference = comparison.gate_estimates()
    passed = difference.high >= 0
    reach = (
        f", the log reaching {comparison.support[CHALLENGER]:.0%} of its lists"
        if comparison.unreached
        else ""
    )
    detail = (
        f"{CTR} {mine.value:.4f} vs champion {theirs.value:.4f} ({comparison.judged_by} on "
        f"{comparison.lists:,} logged lists{reach}); difference {difference.value:+.4f} "
        f"[{difference.low:+.4f}, {difference.high:+.4f}]"
    )
    return Criterion(OFF_POLICY, passed, detail + ("" if passed else ": worse beyond the interval"))


def decide(
    challenger: Evaluation,
    champion: Evaluation | None,
    baseline: Evaluation,
    behaviour: list[BehaviourResult],
    rules: GateRules,
    off_policy: OffPolicyComparison | None = None,
) -> GateDecision:
    """Apply the gate rules to a challenger's evaluation."""
    already = champion is not None and challenger.version is not None
    if already and challenger.version == champion.version:
        same = Criterion("already champion", True, "the challenger is the serving champion")
        return GateDecision(passed=True, reference=champion.name, criteria=[same])
    references = [r for r in (champion, baseline) if r is not None]
    criteria = [beats(challenger, champion, rules, rules.champion_confidence)] if champion else []
    criteria.append(beats(challenger, baseline, rules, rules.confidence))
    for name, floor in sorted(rules.floors.items()):
        value = _metric(challenger, name)
        criteria.append(
            Criterion(
                f"floor {name}",
                not math.isnan(value) and value >= floor,
                f"{name} {value:.4f} (floor {floor})",
            )
        )
    if champion is not None:
        worse = slice_regressions(challenger, champion, rules)
        criteria.append(
            Criterion(
                "guarded slices",
                not worse,
                "; ".join(f"{d}={v}: {a:.4f} vs {b:.4f}" for d, v, a, b in worse)
                or f"no {'/'.join(rules.guarded_dimensions)} slice worse than the champion by > "
                f"{rules.slice_tolerance}",
            )
        )
    if champion is not None and rules.off_policy:
        criteria.append(online_estimate(off_policy))
    if rules.require_behaviour:
        failed = [b for b in behaviour if not b.passed]
        criteria.append(
            Criterion(
                "behaviour tests",
                not failed,
                "; ".join(f"{b.name}: {b.value:.4f} ({b.expectation})" for b in failed)
                or f"{len(behaviour)} behaviour tests passed",
            )
        )
    return GateDecision(
        passed=all(c.passed for c in criteria),
        reference=" and ".join(r.name for r in references),
        criteria=criteria,
    )
