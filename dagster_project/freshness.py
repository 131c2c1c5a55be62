"""Freshness policies: how old each kind of asset may get before Dagster marks it stale.

Data lands daily, so bronze and feature tables warn after a missed day and fail after a day and
a half; the champion should be renewed weekly (the scheduled retrain) and fails after eight days.
"""

from datetime import timedelta

from dagster import AssetSpec, FreshnessPolicy, apply_freshness_policy

DAILY_DATA = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)
CHAMPION = FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))

POLICIES: dict[str, FreshnessPolicy] = {
    "raw_interactions": DAILY_DATA,
    "users": DAILY_DATA,
    "artworks": DAILY_DATA,
    "user_features": DAILY_DATA,
    "artwork_features": DAILY_DATA,
    "deployed_ranker": CHAMPION,
}


def with_freshness(spec: AssetSpec) -> AssetSpec:
    """The spec with its freshness policy, if it has one."""
    policy = POLICIES.get(spec.key.to_user_string())
    return apply_freshness_policy(spec, policy) if policy else spec
