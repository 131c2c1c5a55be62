"""What the champion's logged traffic says the challenger, the champion and popularity would earn
online: the off-policy estimates the gate's online criterion reads.

The log: lists the champion arm served from the challenger's training cut-off on (days it never
trained on) whose attribution window has closed. The targets: each model's top k for the logged
user as of the start of the day the list was served (the evaluation's feature rows, pinned by the
challenger's lineage), without what the user had already converted on, ranked over the candidates
serving had for that list (`served_candidates`, from the snapshot sources the log recorded) or,
for lists logged before sources were, over the full catalogue. The champion
is read two ways: its greedy lists as logged (the slots it did not explore), whose estimate must
agree with the clicks it earned, and recomputed like the challenger. The challenger is compared
with the recomputed champion, list by list, so both carry the same recomputation error: by the
reported estimator and, for the gate, doubly robust with each model's click model calibrated on
its own scores of the logged artworks. A challenger whose lists lie mostly where the log never
looked is read by the champion's click model instead (`extrapolated_difference`): its own model,
calibrated on the champion's picks, would credit its list with their click rates.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.evaluation.logged import LoggedDay, item_clicks, logged_lists, positions_in
from sands.evaluation.off_policy import (
    DEFAULT_CLIP,
    ESTIMATORS,
    ClickModel,
    Estimate,
    LoggedLists,
    cross_fitted,
    doubly_robust,
    ips,
    own_click_model,
    paired_difference,
    paired_dr_difference,
    pbm,
    support,
)
from sands.evaluation.offline import (
    EvaluationSetup,
    EvaluationSpec,
    Recommender,
    entities_as_of,
    positive_pairs,
    sampled_users,
    scored_top_k,
)
from sands.evaluation.served_candidates import ServedCandidates
from sands.features.engagement import engaged_by_user
from sands.models import aliases
from sands.monitoring.online_quality import AttributionSpec

# Policies in the estimates: the champion as it served (greedy slots of its log) and as recomputed.
LOGGED_CHAMPION, CHAMPION, CHALLENGER, POPULARITY = (
    "champion (as logged)",
    "champion",
    "challenger",
    "popularity",
)
CTR, CONVERSION = "clicks per list", "conversions per list"
# What the gate can read: a doubly robust difference with each model's own calibrated click model
# (it sees what the log cannot reach through the model, and corrects the model where the log can),
# or the paired difference by the reported estimator (`OffPolicySpec.estimator`).
DOUBLY_ROBUST = "dr"
# Below `min_support`: the challenger's list read by the champion's click model (its scores of the
# logged artworks calibrated on their clicks, read at the challenger's list), where the log does
# not reach, corrected by the logged clicks where it does.
EXTRAPOLATED = "dr, champion's click model"
EXTRAPOLATED_DIFFERENCE = "dr difference, champion's click model"
# The doubly robust columns of the comparison's tables, beside the reported estimator's.
DR_COLUMNS = (f"{CTR}, dr", f"{CONVERSION}, dr")


@dataclass(frozen=True)
class OffPolicySpec:
    """Which estimator judges, its clip and level, the attribution window, how much log is enough,
    and the position-bias prior used until the log's explored clicks can fit one."""

    k: int = 10
    estimator: str = "pbm"
    clip: float = DEFAULT_CLIP
    confidence: float = 0.95
    window_hours: float = AttributionSpec.window_hours
    min_lists: int = 200
    examination_prior: float = 1.0
    min_explored_clicks: int = 50
    # The targets' lists are recomputed offline: trust the comparison only when the recomputed
    # champion puts at least this share of its logged greedy slots where it served them.
    min_agreement: float = 0.8
    # Judge only when the log could have shown the artworks carrying at least this share of the
    # challenger's examination: every estimator is blind to the rest (`off_policy.support`).
    min_support: float = 0.8
    gate_estimator: str = DOUBLY_ROBUST
    # Below `min_support`, judge by `EXTRAPOLATED` (True) or not at all (False).
    extrapolate: bool = True

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"off-policy estimator {self.estimator!r}: one of {ESTIMATORS}")
        if self.gate_estimator not in (DOUBLY_ROBUST, self.estimator):
            raise ValueError(
                f"off-policy gate estimator {self.gate_estimator!r}: {DOUBLY_ROBUST} or the "
                f"reported estimator ({self.estimator})"
            )


@dataclass(frozen=True)
class OffPolicyComparison:
    """The estimates per policy and outcome, the challenger-minus-champion difference, and the
    evidence behind them."""

    estimator: str
    lists: int
    days: list[str]
    logged: dict[str, float]  # what the champion's lists earned, per outcome
    examination: list[float]
    examination_source: str
    explored_share: float  # of shown slots
    champion_agreement: float  # of logged greedy slots the recomputed champion reproduces
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    difference: Estimate | None = None  # challenger - champion, clicks per list
    min_lists: int = OffPolicySpec.min_lists
    min_agreement: float = OffPolicySpec.min_agreement
    support: dict[str, float] = field(default_factory=dict)  # per policy, `off_policy.support`
    min_support: float = OffPolicySpec.min_support
    replayed: int = 0  # lists recomputed on the candidates serving had (the rest: full catalogue)
    # Clicks per list of the challenger and the champion by doubly robust estimates, each with its
    # own click model, and their paired difference.
    dr: dict[str, Estimate] = field(default_factory=dict)
    dr_difference: Estimate | None = None
    gate_estimator: str = OffPolicySpec.gate_estimator
    # Conversions per list the same way, each model's conversion chances calibrated on its scores.
    dr_conversions: dict[str, Estimate] = field(default_factory=dict)
    # The challenger's clicks per list read by the champion's click model, and minus the champion
    # (its own click model): what the gate reads below `min_support` (None: not computed).
    extrapolated: Estimate | None = None
    extrapolated_difference: Estimate | None = None

    @property
    def unreached(self) -> bool:
        """The log reaches less than `min_support` of the challenger's examination."""
        return not self.support.get(CHALLENGER, 1.0) >= self.min_support

    def dr_cells(self, policy: str) -> list[str]:
        """The policy's doubly robust clicks and conversions per list, as cells (`DR_COLUMNS`)."""
        by_outcome = (self.dr, self.dr_conversions)
        return [by[policy].interval() if policy in by else "-" for by in by_outcome]

    @property
    def judged_by(self) -> str:
        """The estimator whose challenger - champion difference the gate reads."""
        if self.unreached and self.extrapolated_difference is not None:
            return EXTRAPOLATED
        dr = self.gate_estimator == DOUBLY_ROBUST and self.dr_difference is not None
        return DOUBLY_ROBUST if dr else self.estimator

    def gate_estimates(self) -> tuple[Estimate, Estimate, Estimate]:
        """The challenger's and the champion's clicks per list and their difference, as the gate
        reads them (`judged_by`); only for a comparison with a difference."""
        if self.judged_by == EXTRAPOLATED:
            return self.extrapolated, self.dr[CHAMPION], self.extrapolated_difference
        if self.judged_by == DOUBLY_ROBUST:
            return self.dr[CHALLENGER], self.dr[CHAMPION], self.dr_difference
        mine, theirs = (self.estimates[p][CTR] for p in (CHALLENGER, CHAMPION))
        return mine, theirs, self.difference

    @property
    def unjudged_reason(self) -> str | None:
        """Why the log cannot judge the challenger (None when it can)."""
        if self.difference is None:
            return f"{self.lists} logged lists, fewer than {self.min_lists}"
        if not self.champion_agreement >= self.min_agreement:
            return (
                f"the champion recomputed offline puts only {self.champion_agreement:.0%} of its "
                f"logged slots where it served them (needs {self.min_agreement:.0%}): the "
                "targets' lists are not what they would serve"
            )
        if self.unreached and self.extrapolated_difference is None:
            return (
                f"the log reaches only {self.support[CHALLENGER]:.0%} of the challenger's "
                f"examination (needs {self.min_support:.0%}): its lists lie where the champion's "
                "exploration never showed anything, and no estimate can see them"
            )
        return None

    @property
    def reach_note(self) -> str:
        """How the gate reads a challenger the log mostly cannot see ('' when it can)."""
        if not (self.unreached and self.extrapolated_difference is not None):
            return ""
        return (
            f"The log reaches only {self.support[CHALLENGER]:.0%} of the challenger's examination "
            f"(under {self.min_support:.0%}): the gate reads its list by the champion's click "
            "model, which knows what the champion thinks of artworks it never showed."
        )

    def markdown(self) -> str:
        """The estimates with their intervals as a table, then the log and the difference."""
        outcomes = (CTR, CONVERSION)
        rows = [
            f"| policy | {' | '.join(outcomes + DR_COLUMNS)} | log support |",
            "|---|" + "---:|" * (len(outcomes) + len(DR_COLUMNS) + 1),
        ]
        for policy, by_outcome in self.estimates.items():
            cells = [by_outcome[o].interval() for o in outcomes] + self.dr_cells(policy)
            cells.append(f"{self.support.get(policy, float('nan')):.0%}")
            rows.append(f"| {policy} | {' | '.join(cells)} |")
        logged = ", ".join(f"{k} {v:.4f}" for k, v in self.logged.items())
        rows += [
            "",
            f"Logged by the champion over {self.lists:,} lists: {logged}. Targets recomputed on "
            f"the candidates serving had for {self.replayed:,} of them (the rest: full catalogue).",
        ]
        for difference in (self.difference, self.dr_difference, self.extrapolated_difference):
            if difference is not None:
                rows.append(f"Challenger - champion: {difference.describe()}.")
        if self.difference is not None and self.unjudged_reason is None:
            rows.append(f"{self.reach_note} The gate reads {self.judged_by}.".lstrip())
        return "\n".join(rows)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> OffPolicyComparison:
        """A comparison from its tag; fields a newer release added are dropped, so a rolled-back
        gate still reads the tags the newer one wrote."""
        known = {f.name for f in fields(cls)}
        raw = {key: value for key, value in json.loads(text).items() if key in known}
        raw["estimates"] = {
            p: {o: Estimate(**e) for o, e in by.items()} for p, by in raw["estimates"].items()
        }
        for key in ("difference", "dr_difference", "extrapolated", "extrapolated_difference"):
            raw[key] = Estimate(**raw[key]) if raw.get(key) else None
        for key in ("dr", "dr_conversions"):
            raw[key] = {p: Estimate(**e) for p, e in (raw.get(key) or {}).items()}
        return cls(**raw)


def champion_lists(impressions: pa.Table, version: int, since: datetime | None = None) -> pa.Table:
    """The lists the champion arm served with model `version` (from `since` on, if given)."""
    keep = pc.and_(
        pc.equal(impressions["arm"], aliases.CHAMPION),
        pc.equal(impressions["model_version"], version),
    )
    if since is not None:
        ts = impressions["served_ts"]
        keep = pc.and_(keep, pc.greater_equal(ts, pa.scalar(since, ts.type)))
    return impressions.filter(keep)


def examination_from_log(
    rows: pa.Table, k: int, prior: float, min_clicks: int
) -> tuple[np.ndarray, str]:
    """theta_j = j ** -eta, eta fitted to the click rate of explored artworks by position (drawn
    alike into every slot, their click rates differ only by examination), or the prior while the
    log holds fewer than `min_clicks` explored clicks."""
    slots = np.arange(1, k + 1)
    explored = rows.filter(pc.and_(rows["explored"], pc.less_equal(rows["position"], k)))
    positions = explored["position"].to_numpy(zero_copy_only=False)
    clicked = explored["clicked"].to_numpy(zero_copy_only=False).astype(float)
    shown = np.bincount(positions, minlength=k + 1)[1:]
    clicks = np.bincount(positions, weights=clicked, minlength=k + 1)[1:]
    usable = (clicks > 0) & (shown > 0)
    if clicks.sum() < min_clicks or usable.sum() < 2:
        reason = f"{int(clicks.sum())} explored clicks, fewer than {min_clicks}"
        return slots**-prior, f"prior (1/position)^{prior:g} ({reason})"
    rate = np.log(clicks[usable] / shown[usable])
    slope = np.polyfit(np.log(slots[usable]), rate, 1, w=np.sqrt(clicks[usable]))[0]
    eta = float(np.clip(-slope, 0.0, 3.0))
    return slots**-eta, f"fitted (1/position)^{eta:.2f} from {int(clicks.sum())} explored clicks"


def day_setup(
    day: date,
    users: list[str],
    user_features: pa.Table,
    artwork_features: pa.Table,
    history: pa.Table,
    spec: EvaluationSpec,
    events: pa.Table | None = None,
) -> EvaluationSetup:
    """Logged users and the catalogue as of the start of `day`, without what each user had
    converted on before it: what any target ranks for that day's lists. `events` give the
    ranker's pair input as of that day."""
    start = datetime.combine(day, time(), UTC)
    listed = sorted(set(artwork_features["artwork_id"].to_pylist()))
    catalogue = entities_as_of(listed, "artwork_id", artwork_features, start, "artwork_")
    catalogue = catalogue.filter(pc.is_valid(catalogue["artwork_feature_date"]))
    ts = history["label_ts"]
    before = history.filter(pc.less(ts, pa.scalar(start, ts.type)))
    return EvaluationSetup(
        split=start,
        users=entities_as_of(sorted(set(users)), "user_id", user_features, start, "user_"),
        catalogue=catalogue,
        relevant={u: set() for u in users},
        relevant_by_day={},
        exclude=positive_pairs(before),
        user_slices={},
        artwork_style={},
        percentile={},
        holdout=history.slice(0, 0),
        spec=spec,
        engaged=None if events is None else engaged_by_user(events, users, start),
    )


@dataclass(frozen=True)
class Targets:
    """Each recommender's list for every logged list, and for the `scored` ones their scores of
    the list's and the logged list's artworks (one mapping per logged list)."""

    lists: dict[str, list[list[str]]]
    scores: dict[str, list[dict[str, float]]]


def target_lists(
    recommenders: Mapping[str, Recommender],
    log: LoggedDay,
    user_features: pa.Table,
    artwork_features: pa.Table,
    history: pa.Table,
    spec: EvaluationSpec,
    sources: Sequence[str | None] | None = None,
    served: ServedCandidates | None = None,
    scored: Collection[str] = (),
    events: pa.Table | None = None,
) -> Targets:
    """Each recommender's list for every logged list (its user, as of its day). A list whose
    snapshot `sources` were logged is recomputed as serving would have made it: a model ranks the
    snapshot's candidates for the user, popularity is the snapshot's popularity list; the rest
    rank the full catalogue. The `scored` recommenders also keep their scores."""
    out = Targets(
        {name: [[] for _ in log.users] for name in recommenders},
        {name: [{} for _ in log.users] for name in scored},
    )
    # Lists whose snapshot cannot be read back (garbled, vacuumed) rank the full catalogue.
    keys = (
        [key if served.readable(key) else None for key in sources]
        if sources is not None and served is not None
        else [None] * len(log.users)
    )
    for day in sorted(set(log.served)):
        rows = [i for i, served_on in enumerate(log.served) if served_on == day]
        users = [log.users[i] for i in rows]
        setup = day_setup(day, users, user_features, artwork_features, history, spec, events)
        for key in dict.fromkeys(keys[i] for i in rows):
            group = [i for i in rows if keys[i] == key]
            shown: dict[str, set[str]] = {}
            for i in group:
                shown.setdefault(log.users[i], set()).update(a for a in log.items[i] if a)
            ranked = _group_lists(recommenders, setup, shown, key, served, scored)
            for name, (lists, scores) in ranked.items():
                for i in group:
                    out.lists[name][i] = lists.get(log.users[i], [])
                    if name in out.scores:
                        out.scores[name][i] = scores.get(log.users[i], {})
    return out


def _group_lists(
    recommenders: Mapping[str, Recommender],
    setup: EvaluationSetup,
    shown: Mapping[str, Collection[str]],
    sources: str | None,
    served: ServedCandidates | None,
    scored: Collection[str],
) -> dict[str, tuple[dict[str, list[str]], dict[str, dict[str, float]]]]:
    """Every recommender's list per user of one day (and, if `scored`, its scores of the list and
    of what each user was `shown`), on one snapshot's candidates (if known)."""
    ids = setup.users["user_id"]
    mine = replace(setup, users=setup.users.filter(pc.is_in(ids, pa.array(sorted(shown)))))
    known = sources is not None and served is not None
    pools = served.pools(sources, mine.split.date(), mine.users) if known else None
    out = {}
    # The challenger first: the champion also scores the challenger's list, so that its click
    # model can be read there (`EXTRAPOLATED`).
    for name in sorted(recommenders, key=lambda n: n != CHALLENGER):
        if known and name == POPULARITY:
            popular = served.popular(sources, mine.split.date(), list(shown), setup.spec.k)
            out[name] = (popular, {})
            continue
        wanted = shown if name in scored else None
        if wanted is not None and name == CHAMPION and CHALLENGER in out:
            theirs = out[CHALLENGER][0]
            wanted = {u: {*seen, *theirs.get(u, ())} for u, seen in shown.items()}
        out[name] = scored_top_k(recommenders[name], mine, pools, wanted)
    return out


def logged_greedy_positions(log: LoggedDay, explored: np.ndarray) -> np.ndarray:
    """The champion's greedy list as its log shows it: every slot it did not explore."""
    slots = np.arange(1, log.items.shape[1] + 1)
    return np.where(log.lists.shown & ~explored, slots, 0)


def compare(
    impressions: pa.Table,
    interactions: pa.Table,
    as_of: datetime,
    recommenders: Mapping[str, Recommender],
    user_features: pa.Table,
    artwork_features: pa.Table,
    history: pa.Table,
    spec: OffPolicySpec,
    evaluation: EvaluationSpec,
    served: ServedCandidates | None = None,
) -> OffPolicyComparison:
    """Estimate every recommender (`challenger`, `champion`, `popularity`) and the champion as
    logged on the champion arm's lists in `impressions`; judged only with `min_lists` lists. With
    `served`, lists that logged their snapshot's sources are recomputed on its candidates."""
    attribution = AttributionSpec(window_hours=spec.window_hours)
    catalogue = len(set(artwork_features["artwork_id"].to_pylist()))
    impressions = _sampled(impressions, evaluation.user_limit(catalogue))
    rows = item_clicks(impressions, interactions, attribution, as_of)
    theta, source = examination_from_log(
        rows, spec.k, spec.examination_prior, spec.min_explored_clicks
    )
    log = logged_lists(rows, spec.k, theta)
    converted = logged_lists(
        item_clicks(
            impressions,
            interactions,
            AttributionSpec(spec.window_hours, attribution.conversions),
            as_of,
        ),
        spec.k,
        theta,
    )
    explored = log.explored
    days = sorted({d.isoformat() for d in log.served})
    logged = {
        CTR: float(log.lists.clicks.sum(axis=1).mean()) if log.lists.lists else 0.0,
        CONVERSION: float(converted.lists.clicks.sum(axis=1).mean()) if log.lists.lists else 0.0,
    }
    share = float(explored[log.lists.shown].mean()) if log.lists.shown.any() else 0.0
    base = dict(
        estimator=spec.estimator,
        lists=log.lists.lists,
        days=days,
        logged=logged,
        examination=[float(t) for t in theta],
        examination_source=source,
        explored_share=share,
        min_lists=spec.min_lists,
        min_agreement=spec.min_agreement,
        min_support=spec.min_support,
        gate_estimator=spec.gate_estimator,
    )
    if log.lists.lists < spec.min_lists:
        return OffPolicyComparison(champion_agreement=float("nan"), **base)
    sources = logged_sources(impressions, log.impressions)
    paired = [name for name in (CHALLENGER, CHAMPION) if name in recommenders]
    targets = target_lists(
        recommenders,
        log,
        user_features,
        artwork_features,
        history,
        evaluation,
        sources,
        served,
        scored=paired,
        events=interactions,
    )
    replayed = sum(served.readable(key) for key in sources) if served is not None else 0
    positions = {name: positions_in(log, lists) for name, lists in targets.lists.items()}
    greedy = logged_greedy_positions(log, explored)
    positions = {LOGGED_CHAMPION: greedy, **positions}
    estimates = {
        name: {
            outcome: _estimate(spec, day.lists, where, theta)
            for outcome, day in ((CTR, log), (CONVERSION, converted))
        }
        for name, where in positions.items()
    }
    reached = {name: support(log.lists, where, theta) for name, where in positions.items()}
    scores = {name: _score_views(log, targets, name) for name in paired}
    models = {name: own_click_model(log.lists, *scores[name], theta) for name in paired}
    dr = {name: _dr(spec, log.lists, positions[name], theta, m) for name, m in models.items()}
    # Each model's chance that an examined artwork converts, calibrated the same way.
    buyers = {name: own_click_model(converted.lists, *scores[name], theta) for name in paired}
    dr_conversions = {
        name: _dr(spec, converted.lists, positions[name], theta, m) for name, m in buyers.items()
    }
    difference = dr_difference = extrapolated = extrapolated_difference = None
    if len(paired) == 2:
        mine, theirs = ((positions[name], models.get(name)) for name in paired)
        difference = paired_difference(
            spec.estimator, log.lists, mine[0], theirs[0], theta, spec.clip, spec.confidence
        )
        dr_difference = paired_dr_difference(
            log.lists, mine, theirs, theta, spec.clip, spec.confidence
        )
        if spec.extrapolate:
            by_champion = _champion_model_at(log, targets, scores[CHAMPION][0], theta)
            extrapolated = replace(
                _dr(spec, log.lists, positions[CHALLENGER], theta, by_champion),
                estimator=EXTRAPOLATED,
            )
            extrapolated_difference = replace(
                paired_dr_difference(
                    log.lists,
                    (positions[CHALLENGER], by_champion),
                    theirs,
                    theta,
                    spec.clip,
                    spec.confidence,
                ),
                estimator=EXTRAPOLATED_DIFFERENCE,
            )
    return OffPolicyComparison(
        champion_agreement=_agreement(greedy, positions.get(CHAMPION)),
        estimates=estimates,
        difference=difference,
        support=reached,
        replayed=replayed,
        dr=dr,
        dr_difference=dr_difference,
        dr_conversions=dr_conversions,
        extrapolated=extrapolated,
        extrapolated_difference=extrapolated_difference,
        **base,
    )


def _score_views(log: LoggedDay, targets: Targets, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Target `name`'s own scores of the logged artworks and of its list, as (n, K) arrays (NaN
    where it has none): what its click and conversion models are calibrated on and read at."""
    scores, lists = targets.scores[name], targets.lists[name]
    shown = np.array(
        [[mine.get(a, np.nan) for a in row] for row, mine in zip(log.items, scores, strict=True)],
        dtype=np.float64,
    ).reshape(log.items.shape)
    return shown, _scores_of_lists(lists, scores, log.items.shape)


def _scores_of_lists(
    lists: list[list[str]], scores: list[dict[str, float]], shape: tuple[int, int]
) -> np.ndarray:
    """Per logged list, `scores` of the artworks of a target's list in its order, NaN-padded."""
    listed = np.full(shape, np.nan)
    for i, (target, by_artwork) in enumerate(zip(lists, scores, strict=True)):
        listed[i, : len(target)] = [by_artwork.get(a, np.nan) for a in target[: shape[1]]]
    return listed


def _champion_model_at(
    log: LoggedDay, targets: Targets, shown: np.ndarray, theta: np.ndarray
) -> ClickModel:
    """The champion's click model (its `shown` scores of the logged artworks calibrated on their
    clicks) read at the challenger's list, through the champion's scores of that list."""
    lists, champion = targets.lists[CHALLENGER], targets.scores[CHAMPION]
    listed = _scores_of_lists(lists, champion, log.items.shape)
    return cross_fitted(log.lists, shown, listed, theta)


def _dr(
    spec: OffPolicySpec, logged: LoggedLists, where: np.ndarray, theta: np.ndarray, m: ClickModel
) -> Estimate:
    return doubly_robust(logged, where, theta, m.shown, m.listed, spec.clip, spec.confidence)


@dataclass(frozen=True)
class PopularityLead:
    """Popularity minus the champion as it served, in clicks per list, paired on the champion's
    logged lists: the online input of the serving guard."""

    difference: Estimate
    support: float  # popularity's log support
    days: list[str]

    @property
    def popularity_clearly_better(self) -> bool:
        return self.difference.low > 0

    def describe(self) -> str:
        return (
            f"popularity - champion on the champion's logged lists of {', '.join(self.days)}: "
            f"{self.difference.describe()}, log support {self.support:.0%}"
        )


def popularity_lead(
    impressions: pa.Table,
    interactions: pa.Table,
    as_of: datetime,
    served: ServedCandidates,
    spec: OffPolicySpec,
) -> PopularityLead | None:
    """How popularity would have done on the champion arm's lists in `impressions` against the
    champion's greedy slots as logged; None when the log cannot say: fewer than `min_lists` lists
    that logged their snapshot, or popularity's support below `min_support`. Needs no model:
    popularity's list is the snapshot's, as serving falls back to it."""
    rows = item_clicks(impressions, interactions, AttributionSpec(spec.window_hours), as_of)
    theta, _ = examination_from_log(rows, spec.k, spec.examination_prior, spec.min_explored_clicks)
    log = logged_lists(rows, spec.k, theta)
    sources = logged_sources(impressions, log.impressions)
    kept = [i for i, key in enumerate(sources) if served.readable(key)]
    if len(kept) < spec.min_lists:
        return None
    log, sources = log.take(kept), [sources[i] for i in kept]
    groups: dict[tuple[str, date], list[int]] = {}
    for i, at in enumerate(zip(sources, log.served, strict=True)):
        groups.setdefault(at, []).append(i)
    lists: list[list[str]] = [[] for _ in kept]
    for (key, day), group in groups.items():
        popular = served.popular(key, day, [log.users[i] for i in group], spec.k)
        for i in group:
            lists[i] = popular[log.users[i]]
    where = positions_in(log, lists)
    reached = support(log.lists, where, theta)
    if not reached >= spec.min_support:
        return None
    greedy = logged_greedy_positions(log, log.explored)
    difference = paired_difference(
        spec.estimator, log.lists, where, greedy, theta, spec.clip, spec.confidence
    )
    days = sorted({d.isoformat() for d in log.served})
    return PopularityLead(difference, reached, days)


def logged_sources(impressions: pa.Table, order: Sequence[str]) -> list[str | None]:
    """The snapshot sources each list in `order` (impression ids) was served from, if logged."""
    if "sources" not in impressions.column_names:
        return [None] * len(order)
    by_id = dict(
        zip(
            impressions["impression_id"].to_pylist(),
            impressions["sources"].to_pylist(),
            strict=True,
        )
    )
    return [by_id.get(i) for i in order]


def _estimate(
    spec: OffPolicySpec, logged: LoggedLists, where: np.ndarray, theta: np.ndarray
) -> Estimate:
    if spec.estimator == "ips":
        return ips(logged, where, spec.clip, spec.confidence)
    return pbm(logged, where, theta, spec.clip, spec.confidence)


def _sampled(impressions: pa.Table, limit: int | None) -> pa.Table:
    """The lists of at most `limit` users (the evaluation's stable hash sample): every target
    ranks the full catalogue for each logged user."""
    users = sorted(set(impressions["user_id"].to_pylist()))
    kept = sampled_users({u: set() for u in users}, limit)
    if len(kept) == len(users):
        return impressions
    return impressions.filter(pc.is_in(impressions["user_id"], pa.array(sorted(kept))))


def _agreement(greedy: np.ndarray, recomputed: np.ndarray | None) -> float:
    if recomputed is None or not (greedy > 0).any():
        return float("nan")
    return float((recomputed[greedy > 0] == greedy[greedy > 0]).mean())
