"""Automation conditions shared by the asset layers."""

from dagster import AutomationCondition


def after_upstream_updates() -> AutomationCondition:
    """Rematerialize once after any parent updates, when no parent run is still in progress.

    Unlike `eager()`, it neither waits for every partition of a partitioned parent to exist (a
    daily feature table never has them all) nor looks only at the latest time window.
    """
    return (
        AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("after_upstream_updates")
