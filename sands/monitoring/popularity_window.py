"""How many days the served popularity list counts over, chosen by evidence.

No one window serves every history: a sparse steady one wants a long window (28 days ranked
MovieLens-100k's first month 11 % better by user-days than 7), a busy moving one a short one (1
day, 10 % at 20,000 simulated events a day), and after a change of taste a long window lags
(`docs/models.md`, "The popularity list serving falls back to"). So the list counts 7 days
unless another feature window ranked the newest labelled days better beyond chance, judged as
the gate judges: per user-day NDCG@10 over the full catalogue, a paired bootstrap interval above
zero. The gate's and the guard's popularity contender stays the 7-day baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sands.evaluation.challenger import feature_rows_at, judged_users
from sands.evaluation.metrics import PairedGain, paired_gain
from sands.evaluation.offline import (
    EvaluationSpec,
    PopularityRecommender,
    day_windows,
    evaluate,
    evaluation_setups,
    popularity_column,
    rankable_days,
    utc_midnight,
)
from sands.features.dbt_vars import event_weights, feature_windows
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.training_store import has_training_set, open_training_set
from sands.monitoring.champion import evidence_days

# The artwork feature windows popularity can count over (dbt's `n_<event>_<days>d` columns), and
# the baseline's own.
WINDOWS = feature_windows()
DEFAULT_WINDOW = EvaluationSpec.popularity_window_days


@dataclass(frozen=True)
class WindowRule:
    """What the choice needs: enough user-days, found within `max_days`, and the confidence of
    the gain over the default."""

    default: int = DEFAULT_WINDOW
    min_users: int = 100
    max_days: int = 28
    confidence: float = 0.9


@dataclass(frozen=True)
class WindowChoice:
    """The window chosen, the evidence behind it and each window's mean NDCG@10 there."""

    window: int
    default: int
    users: int  # user-days judged
    days: int
    means: dict[int, float]
    gain: PairedGain | None  # of the chosen window over the default; None when it is the default
    level: float = WindowRule.confidence  # of the gain's interval

    def describe(self) -> str:
        """One line: "28 days (over 7: gain +0.0123 (90% CI ...), 104 user-days of 17 days)"."""
        if not self.users:
            return f"{days_text(self.window)} (the default: no labelled day to judge by yet)"
        evidence = f"{self.users:,} user-days of {self.days} label days"
        if self.gain is None:
            return f"{days_text(self.window)} (the default: no window ranked better, {evidence})"
        over = f"over {self.default}: {self.gain.describe(self.level)}"
        return f"{days_text(self.window)} ({over}, {evidence})"

    def markdown(self) -> str:
        rows = "\n".join(
            f"| {days_text(w)}{' (served)' if w == self.window else ''} | {m:.4f} |"
            for w, m in sorted(self.means.items())
        )
        return f"| window | NDCG@10 over {self.users:,} user-days |\n|---|---|\n{rows}"


def choose_window(
    user_ndcg: dict[int, dict[str, float]], rule: WindowRule
) -> tuple[int, PairedGain | None]:
    """The default, unless another window's per-user-day NDCG@10 beats it with the paired
    interval above zero; of several such, the largest mean gain."""
    best, best_gain = rule.default, None
    for window, scores in sorted(user_ndcg.items()):
        if window == rule.default:
            continue
        gain = paired_gain(scores, user_ndcg[rule.default], rule.confidence)
        if gain.significant() and (best_gain is None or gain.mean > best_gain.mean):
            best, best_gain = window, gain
    return best, best_gain


def days_text(window: int) -> str:
    """ "1 day", "7 days"."""
    return f"{window} day" + ("" if window == 1 else "s")


def popularity_window(
    lake_root: str, rule: WindowRule, storage_options: dict[str, str] | None = None
) -> WindowChoice:
    """Each window's list ranked on the newest labelled days of the training set holding
    `rule.min_users` user-days, as the evaluation ranks popularity, and the window chosen."""
    if not has_training_set(lake_root, storage_options):
        return WindowChoice(rule.default, rule.default, 0, 0, {}, None)
    dataset, _, sources = open_training_set(lake_root, None, storage_options)
    # Read once, only what ranking popularity touches: each day's split reads it again otherwise
    # (two reads a label day, a second each on MovieLens-100k's 17 days).
    counts = [popularity_column(e, w, "artwork_") for e in event_weights() for w in WINDOWS]
    examples = dataset.to_table(columns=["user_id", "artwork_id", "label", "label_ts", *counts])
    days = evidence_days(examples, None, 0, rule.max_days, rule.min_users)
    if not days:
        return WindowChoice(rule.default, rule.default, 0, 0, {}, None)
    versions = sources.as_dict()
    first = utc_midnight(min(days))
    users = feature_rows_at(
        USER_FEATURES,
        lake_root,
        versions["user_features"],
        first,
        storage_options,
        judged_users(examples, first),
    )
    works = feature_rows_at(
        ARTWORK_FEATURES, lake_root, versions["artwork_features"], first, storage_options
    )
    days = rankable_days(days, works)
    spec = EvaluationSpec()
    user_ndcg: dict[int, dict[str, float]] = {w: {} for w in WINDOWS}
    setups = evaluation_setups(examples, users, works, None, day_windows(days), spec)
    for day, setup in zip(days, setups, strict=True):
        for window in WINDOWS:
            judged = evaluate(PopularityRecommender(window), setup).user_ndcg
            user_ndcg[window].update({f"{day}|{u}": v for u, v in judged.items()})
    if not user_ndcg[rule.default]:
        return WindowChoice(rule.default, rule.default, 0, 0, {}, None)
    window, gain = choose_window(user_ndcg, rule)
    means = {w: float(np.mean(list(s.values()))) for w, s in user_ndcg.items() if s}
    user_days = len(user_ndcg[rule.default])
    return WindowChoice(window, rule.default, user_days, len(days), means, gain, rule.confidence)
