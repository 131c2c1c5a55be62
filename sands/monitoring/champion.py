"""Monitoring the serving champion on the newest data; the `monitoring` assets wrap these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.evaluation.challenger import feature_rows_at, judged_users
from sands.evaluation.metrics import PairedGain, paired_gain
from sands.evaluation.offline import (
    PRIMARY,
    Evaluation,
    EvaluationSetup,
    EvaluationSpec,
    NothingToRank,
    PopularityRecommender,
    RankerRecommender,
    day_windows,
    evaluate,
    evaluation_setup,
    evaluation_setups,
    rankable_days,
)
from sands.evaluation.rankings import evaluate_stored
from sands.features.engagement import events_before
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.training_store import days_holding, open_training_set
from sands.models.tags import HOLDOUT_UNTIL_TAG, TRAIN_CUTOFF_TAG, TRAINING_EXAMPLES_VERSION_TAG
from sands.monitoring.drift import DriftRule
from sands.monitoring.verdicts import (
    DriftResult,
    Objective,
    QualityVerdict,
    compare,
    data_age_days,
    recent_window,
    render_drift_html,
)

if TYPE_CHECKING:
    from sands.models.registry import Registry


@dataclass
class DriftRun:
    """A drift comparison for the champion and its rendered report."""

    champion_version: int
    result: DriftResult
    html: str
    window: tuple[str, str]


def champion_drift(
    registry: Registry,
    lake_root: str,
    window_days: int,
    share_thresholds: dict[str, float],
    storage_options: dict[str, str] | None = None,
    reference_days: int = 3,
    rule: DriftRule | None = None,
) -> DriftRun | None:
    """The newest `window_days` of labelled rows against the champion's last `reference_days`
    of training rows: recent enough that trailing-window features are equally mature, so a young
    history filling up is not mistaken for drift."""
    champion = registry.champion_version()
    if champion is None:
        return None
    tags = registry.version(champion).tags
    trained_on, _, _ = open_training_set(
        lake_root, int(tags[TRAINING_EXAMPLES_VERSION_TAG]), storage_options
    )
    cutoff = datetime.fromisoformat(tags[TRAIN_CUTOFF_TAG])
    reference = recent_window(trained_on, reference_days, before=cutoff)
    latest, _, _ = open_training_set(lake_root, None, storage_options)
    current = recent_window(latest, window_days)
    model = registry.load_ranker(champion)
    ref_scores, cur_scores = model.scores(reference), model.scores(current)
    result = compare(reference, current, ref_scores, cur_scores, share_thresholds, rule)
    first = current["label_ts"].to_pylist()
    window = (min(first).date().isoformat(), max(first).date().isoformat())
    html = render_drift_html(
        f"Drift of {window[0]}..{window[1]} against champion v{champion}'s training rows",
        result,
        reference,
        current,
        ref_scores,
        cur_scores,
    )
    return DriftRun(champion_version=champion, result=result, html=html, window=window)


@dataclass(frozen=True)
class DayScores:
    """NDCG@10 per policy on one label day, and the evidence behind them."""

    day: str  # "" when the training set holds no labels
    scores: dict[str, float]
    users: int = 0  # users with a positive that day: what each NDCG@10 averages over
    positives: int = 0
    unscored: str = ""  # why no day was scored (`day` empty)
    # Of `users`, those without an event in the 28 days before the day (in bronze: a first visit,
    # or a return after a month): serving ranks no history for them, only their profile is known.
    without_history: int | None = None


# Why a day has no score, when nothing could be ranked: most often a history whose artworks
# have no snapshot before the labels (its first day, or listings dated after their events).
NO_CATALOGUE = "no artwork had features before the day's labels"

# `DayScores.scores` key: the popularity list serving fell back to (its own window).
SERVED_POPULARITY = "served popularity"


def latest_day_ndcg(
    registry: Registry,
    lake_root: str,
    versions: list[int],
    spec: EvaluationSpec,
    storage_options: dict[str, str] | None = None,
    served_window: int | None = None,
) -> DayScores:
    """NDCG@10 of registered versions and popularity over the full catalogue on the newest label
    day, with that day and how many users and positives it held. With `served_window`, also the
    popularity list serving fell back to (`SERVED_POPULARITY`), when it counts other days."""
    try:
        setup = _latest_day_setup(lake_root, spec, storage_options)
    except NothingToRank as nothing:  # labels older than every artwork snapshot
        return DayScores(nothing.day, {}, unscored=NO_CATALOGUE)
    if setup is None:
        return DayScores("", {}, unscored="the training set holds no labels")
    scores = {}
    for v in versions:
        ranker = RankerRecommender(f"v{v}", registry.load_ranker(v))
        scores[f"v{v}"] = evaluate_stored(ranker, setup, lake_root, storage_options).overall[
            PRIMARY
        ]
    popularity = evaluate(PopularityRecommender(spec.popularity_window_days), setup)
    scores["popularity"] = popularity.overall[PRIMARY]
    scores[SERVED_POPULARITY] = scores["popularity"]
    if served_window is not None and served_window != spec.popularity_window_days:
        served = evaluate(PopularityRecommender(served_window), setup)
        scores[SERVED_POPULARITY] = served.overall[PRIMARY]
    return DayScores(
        setup.split.date().isoformat(),
        scores,
        popularity.users,
        popularity.positives,
        without_history=users_without_history(setup),
    )


def users_without_history(setup: EvaluationSetup) -> int | None:
    """Judged users with no event in the window before the split (unknown without events)."""
    if setup.engaged is None:
        return None
    return sum(1 for user in setup.relevant if not setup.engaged.get(user))


def _latest_day_setup(
    lake_root: str, spec: EvaluationSpec, storage_options: dict[str, str] | None
) -> EvaluationSetup | None:
    examples, _, sources = open_training_set(lake_root, None, storage_options)
    last = pc.max(examples.to_table(columns=["label_ts"])["label_ts"]).as_py()
    if last is None:
        return None
    split = datetime.combine(last.date(), time(), tzinfo=UTC)
    try:
        return _setup_at(examples, sources.as_dict(), split, lake_root, spec, storage_options)
    except NothingToRank as nothing:
        nothing.day = split.date().isoformat()  # the label day it could not rank
        raise


def _setup_at(
    examples: pa.Table,
    versions: dict[str, int],
    split: datetime,
    lake_root: str,
    spec: EvaluationSpec,
    storage_options: dict[str, str] | None,
) -> EvaluationSetup:
    users = feature_rows_at(
        USER_FEATURES,
        lake_root,
        versions["user_features"],
        split,
        storage_options,
        judged_users(examples, split),
    )
    works = feature_rows_at(
        ARTWORK_FEATURES, lake_root, versions["artwork_features"], split, storage_options
    )
    events = events_before(lake_root, split, versions["interactions"], storage_options)
    return evaluation_setup(examples, users, works, None, split, spec, events=events)


def evidence_days(
    examples: pa.Table,
    after: datetime | None,
    min_positives: int,
    max_days: int,
    min_users: int = 0,
) -> list[date]:
    """The newest label days from `after` on, newest first, that hold positives: added until
    they hold `min_positives` and `min_users` users with a positive (counted per day), at most
    `max_days`. Days without positives are skipped."""
    labelled = examples.select(["user_id", "label", "label_ts"])
    labelled = labelled.filter(pc.equal(labelled["label"], 1))
    if after is not None:
        stamp = pa.scalar(after, pa.timestamp("us", tz="UTC"))
        labelled = labelled.filter(pc.greater_equal(labelled["label_ts"], stamp))
    days = pc.cast(labelled["label_ts"], pa.timestamp("us", tz="UTC")).cast(pa.date32())
    counts = (
        pa.table({"day": days, "user_id": labelled["user_id"]})
        .group_by("day")
        .aggregate([([], "count_all"), ("user_id", "count_distinct")])
        .to_pylist()
    )
    if not counts:
        return []
    newest = sorted(counts, key=lambda r: r["day"], reverse=True)
    taken = days_holding(
        [r["count_all"] for r in newest],
        1,
        min_positives,
        max_days,
        [r["user_id_count_distinct"] for r in newest],
        min_users,
    )
    return [r["day"] for r in newest[:taken]]


def _pooled(evaluations: list[tuple[date, Evaluation]]) -> dict[str, float]:
    return {f"{day}|{u}": v for day, e in evaluations for u, v in e.user_ndcg.items()}


def champion_quality(
    registry: Registry,
    lake_root: str,
    objective: Objective,
    spec: EvaluationSpec,
    storage_options: dict[str, str] | None = None,
) -> tuple[int, QualityVerdict] | None:
    """The champion and popularity ranked over the full catalogue on the newest label days it
    was not trained on, pooled per (user, day) until there is enough evidence."""
    champion = registry.champion_version()
    if champion is None:
        return None
    examples, _, sources = open_training_set(lake_root, None, storage_options)
    labelled = examples.to_table(columns=["user_id", "label", "label_ts"])
    tags = registry.version(champion).tags
    cutoff = datetime.fromisoformat(tags[TRAIN_CUTOFF_TAG])
    judged, days = champion, []
    enough = (objective.min_positives, objective.max_days, objective.min_users)
    if HOLDOUT_UNTIL_TAG in tags:
        # Days its gate never saw: on its own holdout it was selected for doing well.
        unseen = date.fromisoformat(tags[HOLDOUT_UNTIL_TAG]) + timedelta(days=1)
        after = datetime.combine(unseen, time(), tzinfo=UTC)
        days = evidence_days(labelled, after, *enough)
    if not days:
        # Nothing after the holdout yet (just promoted): a refit trained on every day there is,
        # so the version its gate judged, trained before its holdout, stands in for it.
        judged = registry.judged_version(champion)
        since = datetime.fromisoformat(registry.version(judged).tags[TRAIN_CUTOFF_TAG])
        days = evidence_days(labelled, since, *enough)
    # A champion older than every labelled day: judge it on the newest ones all the same.
    days = days or evidence_days(labelled, None, *enough)
    model = registry.load_ranker(judged)
    versions = sources.as_dict()
    first = datetime.combine(min(days), time(), tzinfo=UTC) if days else cutoff
    users = feature_rows_at(
        USER_FEATURES,
        lake_root,
        versions["user_features"],
        first,
        storage_options,
        judged_users(labelled, first),
    )
    works = feature_rows_at(
        ARTWORK_FEATURES, lake_root, versions["artwork_features"], first, storage_options
    )
    events = events_before(lake_root, first, versions["interactions"], storage_options)
    days = rankable_days(days, works)
    served, baseline = [], []
    setups = evaluation_setups(examples, users, works, None, day_windows(days), spec, events)
    for day, setup in zip(days, setups, strict=True):
        champion_ranker = RankerRecommender("champion", model)
        served.append((day, evaluate_stored(champion_ranker, setup, lake_root, storage_options)))
        baseline.append((day, evaluate(PopularityRecommender(spec.popularity_window_days), setup)))
    mine, theirs = _pooled(served), _pooled(baseline)
    verdict = QualityVerdict(
        day=max(days).isoformat() if days else "-",
        ndcg=float(np.mean(list(mine.values()))) if mine else float("nan"),
        popularity_ndcg=float(np.mean(list(theirs.values()))) if theirs else float("nan"),
        users=len(mine),
        age_days=data_age_days(cutoff, labelled),
        objective=objective,
        positives=sum(e.positives for _, e in served),
        days=len(days),
        popularity_gain=paired_gain(theirs, mine, objective.guard_confidence),
        newest_gain=_newest_gain(served, baseline, objective.guard_confidence),
    )
    return champion, verdict


def _newest_gain(
    served: list[tuple[date, Evaluation]], baseline: list[tuple[date, Evaluation]], level: float
) -> PairedGain | None:
    """Popularity minus the champion per user on the newest evidence day alone."""
    if not served:
        return None
    newest = max(day for day, _ in served)
    mine = _pooled([(d, e) for d, e in served if d == newest])
    theirs = _pooled([(d, e) for d, e in baseline if d == newest])
    return paired_gain(theirs, mine, level)
