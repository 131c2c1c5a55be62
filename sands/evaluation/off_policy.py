"""Off-policy estimates of a ranking policy's clicks per list from another policy's logged lists.

The logger showed `K` items per list with known propensities (`sands.serving.exploration`); a
target policy (a challenger, popularity) would have put some of those items at other positions or
not shown them. Each estimator reweights the logged clicks so that, in expectation, they count
what the target would have earned:

- `ips`: item-position IPS (Li et al. 2018): a click counts when the target puts the item at the
  same position, divided by the logger's chance of having put it there.
- `snips`: the same, self-normalised per position: biased by O(1/n), much lower variance.
- `pbm`: the position-based click model (click = examined x relevant, examination `theta_k`): a
  click anywhere counts, weighted by the item's examination under the target over its expected
  examination under the logger. Needs the item to be shown somewhere, not at the same position.
- `doubly_robust`: a click model's estimate of the target's list, plus the PBM-weighted error of
  that model on what was logged; unbiased when either the weights or the model are right. The
  click model is a target's own scores `calibrated` to click rates on the logged items
  (`own_click_model`), each list's fitted on other users' lists (`cross_fitted`). Calibrated on
  what the logger showed, it is optimistic about a target's own picks where the logger never
  looked, so the gate reads it only for targets the log mostly reaches (`min_support`); below
  that, the logger's own click model read at the target's list (`cross_fitted` on the logger's
  scores of both) speaks for what the log never showed (`docs/ope.md`).

Every estimate is clicks per list with a normal confidence interval from the per-list
contributions (the delta method for the self-normalised one), clustered by user when the log says
whose each list was, and never narrower than the clicks' own noise under the rare large weights
(`click_noise`); the effective sample size of the per-list weights, and how many weights the clip
cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# The largest weight a single logged click may carry: cuts variance at the price of a downward
# bias on items the logger almost never showed where the target would.
DEFAULT_CLIP = 200.0
# The mean-type estimators a paired comparison (and the gate) can use.
ESTIMATORS = ("ips", "pbm")
# Folds of users for fitting the doubly robust estimator's click model: each list's model is
# calibrated on the others, so its in-sample fit does not shrink the correction (and its variance).
CROSS_FIT_FOLDS = 5


@dataclass(frozen=True)
class LoggedLists:
    """`n` logged lists of up to `K` slots, as (n, K) arrays in served order.

    `propensity`: the logger's chance of having put the shown item at this position;
    `exposure`: the logger's expected examination of the shown item, sum_j theta_j P(item at j);
    `shown`: the slot held an item (shorter lists leave the rest False);
    `reach`: the logger's chance of showing the item anywhere in the list (default: `propensity`,
    as for a greedy logger);
    `groups`: the user of each list (None: every list its own user).
    """

    clicks: np.ndarray
    propensity: np.ndarray
    exposure: np.ndarray
    shown: np.ndarray
    reach: np.ndarray | None = None
    groups: np.ndarray | None = None  # who each list was for: intervals cluster by user

    @property
    def lists(self) -> int:
        return int(self.clicks.shape[0])


@dataclass(frozen=True)
class Estimate:
    """A policy's estimated clicks per list, its interval and the evidence behind it."""

    estimator: str
    value: float
    low: float
    high: float
    lists: int
    effective_lists: float
    clipped: int
    confidence: float = 0.95

    @property
    def standard_error(self) -> float:
        """The estimate's standard error, read back from its symmetric normal interval."""
        return (self.high - self.low) / (2 * _z(self.confidence))

    def predicts(self, realised: float, realised_se: float) -> bool:
        """Whether a realised value, itself a mean with standard error `realised_se` (one online
        day's lists), lies in the estimate's prediction interval: the interval is for the policy's
        expected value, and a realised day adds its own noise."""
        spread = _z(self.confidence) * float(np.hypot(self.standard_error, realised_se))
        return abs(realised - self.value) <= spread

    def interval(self) -> str:
        """The value and its interval, as tables show it."""
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"

    def describe(self) -> str:
        return (
            f"{self.estimator} {self.interval()} "
            f"({self.lists} lists, effective {self.effective_lists:.0f}, {self.clipped} clipped)"
        )


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _clip(weights: np.ndarray, clip: float) -> tuple[np.ndarray, int]:
    return np.minimum(weights, clip), int((weights > clip).sum())


def _effective(weights: np.ndarray) -> float:
    """Kish's effective sample size of the per-list total weights."""
    per_list = weights.sum(axis=1)
    squares = float((per_list**2).sum())
    return float(per_list.sum()) ** 2 / squares if squares > 0 else 0.0


def standard_error(terms: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Standard error of the mean of per-list `terms`. With `groups` (each list's user) it is
    cluster-robust: one user's lists share their taste and the target's list for them, so they
    are not independent draws, and a day serves an active user many lists."""
    n = len(terms)
    if n < 2:
        return 0.0
    if groups is None:
        return float(terms.std(ddof=1)) / np.sqrt(n)
    _, cluster = np.unique(groups, return_inverse=True)
    sums = np.bincount(cluster.ravel(), weights=terms - terms.mean())
    g = len(sums)
    if g < 2:  # one user: nothing to tell their lists' spread from chance
        return float(terms.std(ddof=1)) / np.sqrt(n)
    return float(np.sqrt(g / (g - 1) * (sums**2).sum())) / n


def click_noise(click_weights: np.ndarray, logged: LoggedLists) -> float:
    """Standard error of the mean weighted click sum from the clicks' own Bernoulli noise, each
    slot clicked with its position's click rate in the log. Unlike the sample spread it counts
    the rare, heavily weighted slots (an explored artwork the target ranks high) whether or not
    one of them happened to be clicked: when none was, the sample spread is small exactly when
    the estimate is furthest off."""
    n = logged.lists
    if n == 0:
        return 0.0
    shown = logged.shown.sum(axis=0)
    rate = np.divide(logged.clicks.sum(axis=0), shown, out=np.zeros(shown.shape), where=shown > 0)
    chance = np.where(logged.shown, rate * (1.0 - rate), 0.0)
    return float(np.sqrt((click_weights**2 * chance).sum())) / n


def _mean_estimate(
    name: str,
    contributions: np.ndarray,
    weights: np.ndarray,
    clipped: int,
    confidence: float,
    groups: np.ndarray | None = None,
    noise: float = 0.0,
) -> Estimate:
    """Mean of per-list contributions with a normal interval: the larger of the sample's
    standard error and the clicks' own noise (`click_noise`)."""
    n = len(contributions)
    if n == 0:
        return Estimate(name, 0.0, 0.0, 0.0, 0, 0.0, 0, confidence)
    value = float(contributions.mean())
    spread = _z(confidence) * max(standard_error(contributions, groups), noise)
    return Estimate(
        name, value, value - spread, value + spread, n, _effective(weights), clipped, confidence
    )


def support(logged: LoggedLists, target_position: np.ndarray, examination: np.ndarray) -> float:
    """The share of a target's examination that falls on artworks the logger could have shown in
    the same list, estimated from what it did show (each shown artwork the target lists counts its
    examination there over the logger's chance of showing it at all; at most 1). Every estimator
    here is blind to the rest, so a target with low support is estimated too low."""
    if logged.lists == 0:
        return float("nan")
    theta = np.concatenate([[0.0], examination])
    target = theta[np.clip(target_position, 0, len(examination))]
    reach = logged.propensity if logged.reach is None else logged.reach
    usable = logged.shown & (reach > 0)
    seen = np.divide(target, reach, out=np.zeros(target.shape), where=usable).sum(axis=1)
    return float(min(seen.mean() / examination[: logged.clicks.shape[1]].sum(), 1.0))


def item_position_weights(
    logged: LoggedLists, target_position: np.ndarray, clip: float = DEFAULT_CLIP
) -> tuple[np.ndarray, int]:
    """1 / propensity where the target puts the shown item at the same (1-based) position."""
    slots = np.arange(1, logged.clicks.shape[1] + 1)
    same = logged.shown & (target_position == slots) & (logged.propensity > 0)
    raw = np.divide(1.0, logged.propensity, out=np.zeros(logged.propensity.shape), where=same)
    return _clip(raw, clip)


def pbm_weights(
    logged: LoggedLists,
    target_position: np.ndarray,
    examination: np.ndarray,
    clip: float = DEFAULT_CLIP,
) -> tuple[np.ndarray, int]:
    """Target examination of the shown item over its logger exposure (0 if the target omits it)."""
    theta = np.concatenate([[0.0], examination])  # position 0: not in the target's list
    target = theta[np.clip(target_position, 0, len(examination))]
    usable = logged.shown & (logged.exposure > 0)
    raw = np.divide(target, logged.exposure, out=np.zeros(target.shape), where=usable)
    return _clip(raw, clip)


def per_list(
    estimator: str,
    logged: LoggedLists,
    target_position: np.ndarray,
    examination: np.ndarray,
    clip: float = DEFAULT_CLIP,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The per-list contributions of a mean-type estimator (`ips` or `pbm`), its weights and how
    many it clipped: what a paired comparison of two targets on the same log needs."""
    if estimator == "ips":
        weights, clipped = item_position_weights(logged, target_position, clip)
    elif estimator == "pbm":
        weights, clipped = pbm_weights(logged, target_position, examination, clip)
    else:
        raise ValueError(f"unknown estimator {estimator!r}: ips or pbm")
    return (weights * logged.clicks).sum(axis=1), weights, clipped


def paired_difference(
    estimator: str,
    logged: LoggedLists,
    target: np.ndarray,
    reference: np.ndarray,
    examination: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """`target` minus `reference` (positions of each) on the same logged lists, list by list: the
    two share the log's noise, so the interval is far narrower than either estimate's."""
    mine = per_list(estimator, logged, target, examination, clip)
    theirs = per_list(estimator, logged, reference, examination, clip)
    return _paired(f"{estimator} difference", logged, mine, theirs, confidence)


PerList = tuple[np.ndarray, np.ndarray, int]  # contributions, weights, how many were clipped


def _paired(
    name: str, logged: LoggedLists, mine: PerList, theirs: PerList, confidence: float
) -> Estimate:
    """The mean of per-list differences, its noise floor from the difference of the weights."""
    (values, weights, clipped), (others, other, also) = mine, theirs
    return _mean_estimate(
        name,
        values - others,
        weights + other,
        clipped + also,
        confidence,
        logged.groups,
        click_noise(weights - other, logged),
    )


def ips(
    logged: LoggedLists,
    target_position: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """Item-position IPS: clicks where the target agrees on item and position, reweighted."""
    contributions, weights, clipped = per_list("ips", logged, target_position, np.ones(0), clip)
    noise = click_noise(weights, logged)
    return _mean_estimate("ips", contributions, weights, clipped, confidence, logged.groups, noise)


def snips(
    logged: LoggedLists,
    target_position: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """Item-position IPS self-normalised per position, with a delta-method interval."""
    weights, clipped = item_position_weights(logged, target_position, clip)
    n = logged.lists
    if n == 0:
        return Estimate("snips", 0.0, 0.0, 0.0, 0, 0.0, 0, confidence)
    mean_weight = weights.mean(axis=0)
    has = mean_weight > 0
    clicked = (weights * logged.clicks).mean(axis=0)
    rate = np.divide(clicked, mean_weight, out=np.zeros_like(mean_weight), where=has)
    value = float(rate.sum())
    # Influence of each list on the sum of per-position ratios.
    influence = np.divide(
        weights * (logged.clicks - rate), mean_weight, out=np.zeros(weights.shape), where=has
    ).sum(axis=1)
    spread = _z(confidence) * standard_error(influence, logged.groups)
    low, high = value - spread, value + spread
    return Estimate("snips", value, low, high, n, _effective(weights), clipped, confidence)


def pbm(
    logged: LoggedLists,
    target_position: np.ndarray,
    examination: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """Position-based-model IPS: a click on an item counts as the target would examine it."""
    contributions, weights, clipped = per_list("pbm", logged, target_position, examination, clip)
    noise = click_noise(weights, logged)
    return _mean_estimate("pbm", contributions, weights, clipped, confidence, logged.groups, noise)


@dataclass(frozen=True)
class ClickModel:
    """A click model's view of one target on a log: the chance each shown item is clicked if
    examined (`shown`, (n, K)) and the same for the target's own list in its order (`listed`)."""

    shown: np.ndarray
    listed: np.ndarray

    @classmethod
    def of(
        cls, fit: Callable[[np.ndarray], np.ndarray], shown: np.ndarray, listed: np.ndarray
    ) -> ClickModel:
        """A fitted score-to-click-chance map read at scores of the shown items and of the
        target's list (NaN in `listed`: no item in that slot)."""
        return cls(fit(shown), np.where(np.isnan(listed), 0.0, fit(listed)))


def calibrated(
    scores: np.ndarray,
    clicks: np.ndarray,
    shown: np.ndarray,
    examination: np.ndarray,
    bins: int = 10,
) -> Callable[[np.ndarray], np.ndarray]:
    """A target's own click model: its scores of the logged items binned by quantile, each bin's
    click chance once examined (clicks over the examinations of its slots, as the PBM reads a
    log). Unscored items (NaN) read the log's overall rate."""
    k = clicks.shape[1]
    slots = np.broadcast_to(examination[:k], clicks.shape)
    known = shown & np.isfinite(scores)
    overall = clicks[shown].sum() / max(slots[shown].sum(), 1e-12)
    if not known.any():
        return lambda s: np.full(np.shape(s), overall)
    edges = np.unique(np.quantile(scores[known], np.linspace(0, 1, bins + 1)[1:-1]))
    which = np.digitize(scores[known], edges)
    examined = np.bincount(which, slots[known], len(edges) + 1)
    clicked = np.bincount(which, clicks[known], len(edges) + 1)
    rate = np.divide(clicked, examined, out=np.full(len(examined), overall), where=examined > 0)

    def model(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        out = rate[np.digitize(np.nan_to_num(s, nan=-np.inf), edges)]
        return np.where(np.isfinite(s), out, overall)

    return model


def cross_fit_folds(logged: LoggedLists, folds: int = CROSS_FIT_FOLDS) -> np.ndarray:
    """Each list's fold, whole users to a fold, dealt in turn in user order (every list its own
    user when the log does not say whose it was); as many folds as users when they are fewer."""
    groups = logged.groups if logged.groups is not None else np.arange(logged.lists)
    _, user = np.unique(np.asarray(groups), return_inverse=True)
    user = user.ravel()
    return user % max(1, folds)  # fewer users than folds: a fold each


def cross_fitted(
    logged: LoggedLists,
    fit_scores: np.ndarray,
    listed_scores: np.ndarray,
    examination: np.ndarray,
    folds: int = CROSS_FIT_FOLDS,
) -> ClickModel:
    """A click model calibrated on `fit_scores` of the logged items ((n, K), NaN where there are
    none) and read there and at `listed_scores`, each list's from the other folds' lists: a list's
    own clicks never both fit the model and correct it (cross-fitting)."""
    fold = cross_fit_folds(logged, folds)
    shown, listed = np.empty(fit_scores.shape), np.empty(listed_scores.shape)
    for f in np.unique(fold):
        held = fold == f
        rest = ~held if (~held).any() else held  # one fold: fitted on itself
        fit = calibrated(fit_scores[rest], logged.clicks[rest], logged.shown[rest], examination)
        view = ClickModel.of(fit, fit_scores[held], listed_scores[held])
        shown[held], listed[held] = view.shown, view.listed
    return ClickModel(shown, listed)


def own_click_model(
    logged: LoggedLists,
    shown_scores: np.ndarray,
    listed_scores: np.ndarray,
    examination: np.ndarray,
    folds: int = CROSS_FIT_FOLDS,
) -> ClickModel:
    """A target's click model from its own scores: of the logged items (`shown_scores`, (n, K),
    NaN where it has none) calibrated on their clicks, read at its list (`listed_scores`)."""
    return cross_fitted(logged, shown_scores, listed_scores, examination, folds)


def dr_per_list(
    logged: LoggedLists,
    target_position: np.ndarray,
    examination: np.ndarray,
    model: ClickModel,
    clip: float = DEFAULT_CLIP,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-list doubly robust contributions (the model's value of the target's list plus the
    PBM-weighted error of the model on what was logged), the weights and how many were clipped."""
    weights, clipped = pbm_weights(logged, target_position, examination, clip)
    theta = examination[: logged.clicks.shape[1]]
    listed = model.listed[:, : len(theta)]
    direct = np.nan_to_num(listed * theta[: listed.shape[1]]).sum(axis=1)
    expected = np.where(logged.shown, model.shown * theta, 0.0)
    return direct + (weights * (logged.clicks - expected)).sum(axis=1), weights, clipped


def doubly_robust(
    logged: LoggedLists,
    target_position: np.ndarray,
    examination: np.ndarray,
    shown_relevance: np.ndarray,
    target_relevance: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """A click model's value of the target's lists, corrected by its PBM-weighted error on the
    logged clicks. `shown_relevance` (n, K): the model's click chance of each shown item if
    examined; `target_relevance` (n, K): the same for the target's own list, in its order."""
    model = ClickModel(shown_relevance, target_relevance)
    contributions, weights, clipped = dr_per_list(logged, target_position, examination, model, clip)
    noise = click_noise(weights, logged)
    return _mean_estimate("dr", contributions, weights, clipped, confidence, logged.groups, noise)


def paired_dr_difference(
    logged: LoggedLists,
    target: tuple[np.ndarray, ClickModel],
    reference: tuple[np.ndarray, ClickModel],
    examination: np.ndarray,
    clip: float = DEFAULT_CLIP,
    confidence: float = 0.95,
) -> Estimate:
    """`target` minus `reference` by doubly robust estimates, list by list: each is (positions of
    the logged items in its list, its click model). Where the log cannot see a target's list, its
    click model speaks for it; where it can, the logged clicks correct the model."""
    mine, theirs = (dr_per_list(logged, at, examination, m, clip) for at, m in (target, reference))
    return _paired("dr difference", logged, mine, theirs, confidence)
