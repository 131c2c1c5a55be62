"""The refit: once the gate passes a ranker, the same recipe trained through its holdout serves.

The gate judges a ranker trained before its holdout, and on sparse data that holdout holds up to
a week of the newest labels: serving the judged model would serve tastes a week old. The refit is
the judged recipe (its parameters, segments and number of trees) trained on every label day of
the same training set version. It saw the holdout's labels, so judgements on those days use the
version it refits (`Registry.judged_version`); days after them judge the refit itself.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime, time, timedelta

from sands.models.ranking import RankerModel, RankerParams
from sands.models.tags import (
    DBT_MANIFEST_TAG,
    GIT_COMMIT_TAG,
    HOLDOUT_UNTIL_TAG,
    REFIT_OF_TAG,
    SHUFFLED_LABELS_TAG,
    TRAIN_CUTOFF_TAG,
)

# The judged version's lineage a refit shares: the same data, code and holdout.
_SHARED = (DBT_MANIFEST_TAG, GIT_COMMIT_TAG, HOLDOUT_UNTIL_TAG, SHUFFLED_LABELS_TAG)


def refit_cutoff(judged_tags: dict[str, str]) -> datetime | None:
    """Midnight after the last label day the judged version's holdout saw; None when it held
    nothing out (trained on every label day already) or predates the holdout tag."""
    until = judged_tags.get(HOLDOUT_UNTIL_TAG)
    if until is None:
        return None
    cutoff = datetime.combine(date.fromisoformat(until) + timedelta(days=1), time(), tzinfo=UTC)
    trained = datetime.fromisoformat(judged_tags[TRAIN_CUTOFF_TAG])
    return cutoff if cutoff > trained else None


def refit_params(judged: RankerModel) -> RankerParams:
    """The judged model's recipe with its number of trees (rounds, and trees a round) fixed: no
    search on the holdout."""
    recorded = judged.spec.params
    known = {f.name: recorded[f.name] for f in fields(RankerParams) if f.name in recorded}
    known["excluded_features"] = tuple(known.get("excluded_features") or ())
    known.setdefault("parallel_trees", 1)  # recorded before forests: one tree a round
    params = RankerParams(**known)
    # The judged trees a round, even where the refit's extra day crosses the forest budget.
    return replace(
        params,
        trees=judged.booster.num_boosted_rounds(),
        early_stopping_rounds=None,
        forest_max_rows=None,
    )


def refit_tags(
    judged_tags: dict[str, str], judged_version: int, cutoff: datetime
) -> dict[str, str]:
    """The judged version's data lineage (Delta versions, code, holdout), the refit's cutoff and
    the version it refits; nothing of the gate's verdict, which belongs to the judged version."""
    shared = {k: v for k, v in judged_tags.items() if k.startswith("sands.delta.") or k in _SHARED}
    return {**shared, TRAIN_CUTOFF_TAG: cutoff.isoformat(), REFIT_OF_TAG: str(judged_version)}
