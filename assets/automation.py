"""Automation conditions shared by the asset layers, and the retraining policy of the ranker.

Plain-words versions of these conditions live in docs/automation.md; keep the two in step.
"""

import os
from dataclasses import dataclass

from dagster import AssetCheckKey, AssetKey, AssetSelection, AutomationCondition

AC = AutomationCondition


def after_upstream_updates() -> AutomationCondition:
    """Rematerialize once after any parent updates, when no parent run is still in progress.

    Unlike `eager()`, it neither waits for every partition of a partitioned parent to exist (a
    daily feature table never has them all) nor looks only at the latest time window.
    """
    return (
        AC.any_deps_updated().since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
    ).with_label("after_upstream_updates")


def after_updates_of(*parents: str) -> AutomationCondition:
    """Like `after_upstream_updates`, but only these parents' updates count."""
    updated = AC.any_deps_match(AC.newly_updated() | AC.will_be_requested()).allow(
        AssetSelection.assets(*parents)
    )
    return (
        updated.since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
    ).with_label(f"after {', '.join(parents)} updates")


def check_newly_failed(asset: str, *checks: str) -> AutomationCondition:
    """One of these checks of a parent ran since the last evaluation and failed.

    One condition per parent asset: two `any_deps_match` on the same parent that differ only in
    their check selection collide in Dagster's evaluation state, and the second never fires.
    """
    keys = [AssetCheckKey(AssetKey(asset), check) for check in checks]
    failed = AC.any_checks_match(AC.check_failed() & AC.newly_updated()).allow(
        AssetSelection.checks(*keys)
    )
    return AC.any_deps_match(failed).allow(AssetSelection.assets(asset))


@dataclass(frozen=True)
class RetrainPolicy:
    """When the ranker retrains. Environment: SANDS_RETRAIN_CRON, SANDS_RETRAIN_COOLDOWN_CRON,
    SANDS_RETRAIN_ON_NEW_DATA (`0` to retrain only on signals and the schedule)."""

    schedule_cron: str = "0 3 * * 1"  # weekly, Monday 03:00 UTC
    cooldown_cron: str = "0 0 * * *"  # at most one retrain per UTC day
    on_new_data: bool = True

    @classmethod
    def from_env(cls) -> "RetrainPolicy":
        return cls(
            schedule_cron=os.environ.get("SANDS_RETRAIN_CRON", cls.schedule_cron),
            cooldown_cron=os.environ.get("SANDS_RETRAIN_COOLDOWN_CRON", cls.cooldown_cron),
            on_new_data=os.environ.get("SANDS_RETRAIN_ON_NEW_DATA", "1") != "0",
        )


# Trigger labels, as the UI and the demo timeline show them.
SCHEDULED, NEW_DATA, UNHEALTHY, DRIFTED, DEGRADED = (
    "scheduled",
    "new training data",
    "champion missing, below objective or stale",
    "drift detected",
    "online CTR below objective",
)


def retrain_triggers(policy: RetrainPolicy) -> list[AutomationCondition]:
    """Each retraining trigger, labelled (on demand is a manual materialization)."""
    triggers = [AC.cron_tick_passed(policy.schedule_cron).with_label(SCHEDULED)]
    if policy.on_new_data:
        changed = AC.any_deps_match(AC.data_version_changed()).allow(
            AssetSelection.assets("training_examples")
        )
        triggers.append(changed.with_label(NEW_DATA))
    triggers += [
        check_newly_failed(
            "champion_performance", "champion_meets_objective", "champion_is_fresh"
        ).with_label(UNHEALTHY),
        check_newly_failed("feature_drift", "no_dataset_drift").with_label(DRIFTED),
        check_newly_failed("online_performance", "online_ctr_meets_objective").with_label(DEGRADED),
    ]
    return triggers


def retrain(policy: RetrainPolicy | None = None) -> AutomationCondition:
    """Retrain when any trigger fired since the last retrain was requested, never while the
    ranker or a parent is running, and at most once per cooldown period."""
    policy = policy or RetrainPolicy.from_env()
    triggers = retrain_triggers(policy)
    fired = triggers[0]
    for trigger in triggers[1:]:
        fired = fired | trigger
    cooldown = (~AC.newly_updated().since(AC.cron_tick_passed(policy.cooldown_cron))).with_label(
        "cooldown passed"
    )
    idle = (~AC.in_progress() & ~AC.any_deps_in_progress()).with_label("nothing running")
    return (fired.with_label("any trigger").since_last_handled() & idle & cooldown).with_label(
        "retrain"
    )
