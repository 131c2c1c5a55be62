"""Open Bandit Pipeline's slate estimators on a log `bench.ope` wrote: the peer's figures for the
same lists, to set beside ours.

Runs under obp's own interpreter (obp 0.5.5 needs Python below 3.10 and its pinned scikit-learn,
scipy and torch), so it imports nothing from this project and only numpy and obp:

    .venv-obp/bin/python bench/obp_check.py LOG.npz  ->  JSON on stdout

LOG.npz holds `clicks`, `propensity` and `shown` (lists x positions) and, per target policy
named in `names`, `position_<i>`: where it puts each logged item (1-based, 0 when not listed).
Per policy it prints obp's item-position IPS (`SlateIndependentIPS`) and its per-position
self-normalised form (`SelfNormalizedSlateIndependentIPS`): value and obp's bootstrap interval.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from obp.ope import SelfNormalizedSlateIndependentIPS, SlateIndependentIPS
from obp.utils import estimate_confidence_interval_by_bootstrap

BOOTSTRAP_SAMPLES = 10_000  # obp's default
ALPHA = 0.05


def flattened(log: np.lib.npyio.NpzFile) -> dict[str, np.ndarray]:
    """The shown slots as obp's slate rows: slate id, 0-based position, reward, propensity."""
    shown = log["shown"]
    lists, slots = np.nonzero(shown)
    return {
        "slate_id": lists,
        "position": slots,
        "reward": log["clicks"][shown].astype(float),
        "pscore_item_position": log["propensity"][shown].astype(float),
    }


def judged(estimator, rows: dict[str, np.ndarray], target: np.ndarray, seed: int) -> list[float]:
    """obp's value and its bootstrap interval over slates for one target policy. The per-slate
    sums obp's `estimate_interval` forms one slate at a time are formed with one `bincount`."""
    chance = (target == rows["position"] + 1).astype(float)
    inputs = dict(rows, evaluation_policy_pscore_item_position=chance)
    value = estimator.estimate_policy_value(**inputs)
    per_slot = estimator._estimate_round_rewards(
        reward=rows["reward"],
        position=rows["position"],
        behavior_policy_pscore=rows["pscore_item_position"],
        evaluation_policy_pscore=chance,
    )
    # Only the slates that showed something, as obp counts them.
    slates = np.unique(rows["slate_id"])
    per_slate = np.bincount(rows["slate_id"], weights=per_slot)[slates]
    interval = estimate_confidence_interval_by_bootstrap(
        per_slate, alpha=ALPHA, n_bootstrap_samples=BOOTSTRAP_SAMPLES, random_state=seed
    )
    low, high = (interval[f"{100 * (1.0 - ALPHA)}% CI ({side})"] for side in ("lower", "upper"))
    return [float(value), float(low), float(high)]


def main(path: str) -> None:
    log = np.load(path, allow_pickle=False)
    rows = flattened(log)
    k = log["shown"].shape[1]
    estimators = {
        "iips": SlateIndependentIPS(len_list=k),
        "sniips": SelfNormalizedSlateIndependentIPS(len_list=k),
    }
    out = {}
    for i, name in enumerate(log["names"].tolist()):
        target = log[f"position_{i}"][log["shown"]]
        out[name] = {e: judged(est, rows, target, seed=i) for e, est in estimators.items()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
