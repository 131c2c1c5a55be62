"""Off-policy estimates against the simulator's ground truth: can yesterday's log of an exploring
champion tell how a challenger would do online, before it serves anyone?

Per scenario the marketplace is simulated day by day (its users, tastes and artworks, as the
demo's). On each judged day:

- the champion serves `--lists` lists with slot exploration (`sands.serving.exploration`), and
  users click them by the simulator's own served-list response (examination (1/k)**eta times the
  click chance of their taste today): that is the log;
- each challenger then serves the same number of lists greedily to fresh sessions of the same
  users: its realised clicks per list is what an online day would show, and the expectation of
  that (no click noise) is the truth;
- every estimator estimates each challenger's clicks per list from the champion's log alone;
- the gate's criterion (challenger minus champion, doubly robust: with each model's own
  calibrated click model where the log supports the challenger's list, with the champion's read
  at that list where it does not, as `sands.evaluation.policy_value` computes it; `pbm` beside it)
  is checked against the truth, with both click models shown on the unsupported days.

The policies rank the catalogue from the simulator's latent state, so their quality is known:
the champion knows tastes as they were on the eve of the change (a frozen model), the next
champion knows yesterday's tastes, popularity ranks everyone alike, a worse model drowns
yesterday's tastes in noise, and a slightly worse one knows them under less noise (close to the
champion, as a retrained model is). Each knows it only through noisy scores. They stand in for the
platform's rankers: the estimators and the logger see nothing but scores, lists and clicks.

    python -m bench ope [--scenarios ...] [--days 5] [--lists 20000] [--rate 0.1] [--pool 40]
                        [--popular 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from sands.evaluation.off_policy import (
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
    snips,
    standard_error,
    support,
)
from sands.evaluation.policy_value import OffPolicySpec
from sands.serving.exploration import Exploration, exposure, reach
from sands.sim.marketplace import Marketplace, Scenario, SimulationConfig, examination

K = 10
LOGGER = "champion"
NEAR = "slightly worse model"
# Policies added after the others' figures were published draw their sessions and clicks from
# streams of their own, so adding one leaves every other policy's draws as they were.
OWN_DRAWS = {NEAR}
# The gate's criterion (`OffPolicySpec.gate_estimator`) where the log reaches the challenger's
# list: each model with its own click model; where it does not, the challenger's list read by the
# champion's click model (`BY_CHAMPION`).
GATE = "dr, own click model"
BY_CHAMPION = "dr, champion's click model"
# Per policy: dr with the champion's click model, and the estimate the gate reads.
CHAMPION_MODEL, GATE_VALUE = "dr-champion", "gate (dr)"
# Open Bandit Pipeline's estimators of the same quantities as ours, and its interpreter.
PEERS = {"ips": "obp iips", "snips": "obp sniips"}
OBP_PYTHON = Path(__file__).resolve().parent.parent / ".venv-obp" / "bin" / "python"
# A policy: (day index, users) -> scores over the catalogue, one row per user.
Policy = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Judged:
    """One challenger on one day: what it earned online and what each estimator said."""

    scenario: str
    day: date
    policy: str
    realised: float
    truth: float
    estimates: dict[str, Estimate]
    realised_se: float = 0.0  # the online day's standard error of `realised`
    support: float = 1.0  # share of its examination the champion's log could reach
    # Challenger - champion (recomputed) by the gate's estimator and by doubly robust estimates
    # with the challenger's own click model and with the champion's (None for the champion).
    gaps: dict[str, Estimate] | None = None
    truth_gap: float = 0.0  # its expected clicks per list minus the champion's

    @property
    def supported(self) -> bool:
        return self.support >= OffPolicySpec.min_support

    @property
    def gate_gap(self) -> Estimate:
        """Challenger - champion as the gate reads it (own click model where the log sees)."""
        return self.gaps[GATE if self.supported else BY_CHAMPION]


def policies(market: Marketplace, shift_day: int, seed: int) -> dict[str, Policy]:
    """The champion (the logger) and the challengers, as scores of the latent state: the click
    chance of the user's taste on some day, a popularity prior (within a style every artwork is
    alike to a user, so that is what orders them), and errors fixed per (user, artwork). The
    errors are mostly shared, as models trained on the same features share them; the worse model
    adds large ones of its own."""
    cfg = market.config
    days = cfg.days
    users = cfg.initial_users + days * cfg.new_users_per_day * 3  # demographic-shift triples it
    items = cfg.initial_artworks + days * cfg.new_artworks_per_day

    def errors(stream: int, spread: float) -> np.ndarray:
        return np.random.default_rng([seed, stream]).normal(0.0, spread, (users, items))

    shared = errors(1, 0.3)

    def knows(day: Callable[[int], int], own: np.ndarray) -> Policy:
        def scores(today: int, who: np.ndarray) -> np.ndarray:
            catalogue = np.arange(market.artworks.size)
            chance = market.served_click_chance(who[:, None], catalogue[None, :], day(today))
            prior = 0.3 * np.log(market.artworks.popularity)
            return np.log(chance) + prior + (shared + own)[who][:, catalogue]

        return scores

    def popular(today: int, who: np.ndarray) -> np.ndarray:
        return np.tile(np.log(market.artworks.popularity), (len(who), 1))

    return {
        LOGGER: knows(lambda today: shift_day - 1, errors(2, 0.1)),
        "next champion": knows(lambda today: today - 1, errors(3, 0.1)),
        "popularity": popular,
        "worse model": knows(lambda today: today - 1, errors(4, 1.5)),
        # Close to the champion, as a retrained model is: worse under steady tastes, and after
        # a change better than the stale champion. The case the gate's criterion is for.
        NEAR: knows(lambda today: today - 1, errors(5, 0.6)),
    }


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k best columns, best first (ties by column)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def sessions(market: Marketplace, lists: int, rng: np.random.Generator) -> np.ndarray:
    """Users opening a served list, drawn by how active they are."""
    activity = market.users.activity
    return rng.choice(len(activity), size=lists, p=activity / activity.sum())


def clicks_of(
    market: Marketplace,
    users: np.ndarray,
    shown: np.ndarray,
    today: int,
    theta: np.ndarray,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drawn clicks and their expectations for lists `shown` (users x positions)."""
    chance = theta * market.served_click_chance(users[:, None], shown, today)
    draws = market.served_rng if rng is None else rng
    return (draws.random(chance.shape) < chance).astype(float), chance


def judge_day(
    market: Marketplace,
    scenario: str,
    day: date,
    today: int,
    shift_day: int,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> tuple[list[Judged], float]:
    """The champion's exploring log of one day, then every challenger online and estimated; and
    the clicks per list the exploring champion earned (exploration's cost against its greedy
    lists, which the challengers' table holds as the champion)."""
    theta = examination(K, market.config.served_examination)
    explore = Exploration(rate=args.rate, pool=args.pool, popular=args.popular)
    popular = list(np.argsort(-market.artworks.popularity, kind="stable")[: args.popular])
    every = policies(market, shift_day, args.seed)
    users = sessions(market, args.lists, rng)
    logger_scores = every[LOGGER](today, users)
    ranked = top_k(logger_scores, K + args.pool)
    drawn = [explore.show(list(row), K, rng, popular) for row in ranked]
    shown = np.array([d.artwork_ids for d in drawn])
    propensity = np.array([d.propensities for d in drawn])
    explored = np.array([d.explored for d in drawn])
    clicks, _ = clicks_of(market, users, shown, today, theta)
    logged = LoggedLists(
        clicks,
        propensity,
        exposure(propensity, explored, theta),
        shown >= 0,
        reach(propensity, explored),
        users,
    )
    out = []
    positions: dict[str, np.ndarray] = {}
    views: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    # Per policy: its own click model and the champion's read at its list.
    models: dict[str, tuple[ClickModel, ClickModel]] = {}
    for name, policy in every.items():
        scores = policy(today, users)
        target = top_k(scores, K)
        # Where the challenger would put each logged item (0: not in its list).
        position = np.zeros(shown.shape, np.int64)
        for slot in range(K):
            position[shown == target[:, [slot]]] = slot + 1
        positions[name] = position
        views[name] = tuple(
            np.take_along_axis(of, at, 1)
            for of, at in ((scores, shown), (scores, target), (logger_scores, target))
        )
        model = own_click_model(logged, *views[name][:2], theta)
        by_champion = cross_fitted(logged, views[LOGGER][0], views[name][2], theta)
        models[name] = (model, by_champion)
        estimates = {
            "ips": ips(logged, position, args.clip),
            "snips": snips(logged, position, args.clip),
            "pbm": pbm(logged, position, theta, args.clip),
            "dr": doubly_robust(logged, position, theta, model.shown, model.listed, args.clip),
            CHAMPION_MODEL: doubly_robust(
                logged, position, theta, by_champion.shown, by_champion.listed, args.clip
            ),
        }
        reached = support(logged, position, theta)
        # What the gate reads: its own click model where the log sees the list, else the
        # champion's (`OffPolicyComparison.judged_by`).
        estimates[GATE_VALUE] = estimates[
            "dr" if reached >= OffPolicySpec.min_support else CHAMPION_MODEL
        ]
        own = np.random.default_rng([args.seed, 3, today]) if name in OWN_DRAWS else None
        online_users = sessions(market, args.lists, own or rng)
        online = top_k(policy(today, online_users), K)
        realised, expected = clicks_of(market, online_users, online, today, theta, own)
        per_list = realised.sum(axis=1)
        out.append(
            Judged(
                scenario,
                day,
                name,
                float(per_list.mean()),
                float(expected.sum(axis=1).mean()),
                estimates,
                standard_error(per_list, online_users),
                reached,
            )
        )
    champion = next(j for j in out if j.policy == LOGGER)
    for i, judged in enumerate(out):
        if judged.policy != LOGGER:
            gaps = gate_gaps(logged, theta, positions, models, judged.policy)
            out[i] = replace(judged, gaps=gaps, truth_gap=judged.truth - champion.truth)
    if args.obp:
        by_peer = peer_estimates(args.obp, logged, positions)
        out = [replace(j, estimates={**j.estimates, **by_peer[j.policy]}) for j in out]
    return out, float(clicks.sum(axis=1).mean())


def peer_estimates(
    python: str, logged: LoggedLists, positions: dict[str, np.ndarray]
) -> dict[str, dict[str, Estimate]]:
    """Open Bandit Pipeline's item-position IPS and its self-normalised form of each policy on
    the same log, run by obp's own interpreter (`bench/obp_check.py`)."""
    names = list(positions)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.npz"
        np.savez(
            path,
            clicks=logged.clicks,
            propensity=logged.propensity,
            shown=logged.shown,
            names=np.array(names),
            **{f"position_{i}": positions[name] for i, name in enumerate(names)},
        )
        script = Path(__file__).with_name("obp_check.py")
        done = subprocess.run(
            [python, str(script), str(path)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise SystemExit(f"Open Bandit Pipeline failed under {python}: {last}")
    raw = json.loads(done.stdout)
    return {
        name: {
            f"obp {estimator}": Estimate(
                f"obp {estimator}", value, low, high, logged.lists, float("nan"), 0
            )
            for estimator, (value, low, high) in raw[name].items()
        }
        for name in names
    }


def gate_gaps(
    logged: LoggedLists,
    theta: np.ndarray,
    positions: dict[str, np.ndarray],
    models: dict[str, tuple[ClickModel, ClickModel]],
    name: str,
) -> dict[str, Estimate]:
    """Challenger `name` minus the champion recomputed, list by list: doubly robust with each
    model's own calibrated click model (the gate's criterion where the log sees), by `pbm` (the
    reported estimator), and doubly robust with the champion's click model read at the
    challenger's list (the gate's where it does not). `models`: per policy, its own click model
    and the champion's read at its list."""
    where, there = positions[name], positions[LOGGER]
    champion = models[LOGGER][0]
    own, by_champion = models[name]
    return {
        "pbm": paired_difference("pbm", logged, where, there, theta, 1e9),
        GATE: paired_dr_difference(logged, (where, own), (there, champion), theta, 1e9),
        BY_CHAMPION: paired_dr_difference(
            logged, (where, by_champion), (there, champion), theta, 1e9
        ),
    }


def play(
    scenario: str, args: argparse.Namespace, console: Console
) -> tuple[list[Judged], list[float]]:
    """Simulate warm-up days, then judge `args.days` days from the change on; the judgements and
    the exploring champion's clicks per list each day."""
    warmup = 7
    config = SimulationConfig(
        scenario=Scenario(scenario),
        days=warmup + args.days,
        scenario_day=warmup,
        events_per_day=args.events_per_day,
        seed=args.seed,
    )
    market = Marketplace(config)
    rng = np.random.default_rng([args.seed, 2])
    judged: list[Judged] = []
    exploring: list[float] = []
    for index, drop in enumerate(market.days()):
        if index < warmup:
            continue
        day, logged = judge_day(market, scenario, drop.day, index, warmup, args, rng)
        judged += day
        exploring.append(logged)
        console.log(
            f"{scenario} {drop.day}: exploring champion {logged:.4f}, "
            + ", ".join(
                f"{j.policy} {j.realised:.4f} (pbm {j.estimates['pbm'].value:.4f})" for j in day
            )
        )
    return judged, exploring


def concordance(
    judged: list[Judged], estimator: str, keep: Callable[[Judged, Judged], bool] | None = None
) -> tuple[float, int]:
    """Share of policy pairs (same scenario and day, kept by `keep`) the estimate orders as
    realised, and how many pairs there were."""
    agree = total = 0
    days: dict[tuple[str, date], list[Judged]] = {}
    for j in judged:
        days.setdefault((j.scenario, j.day), []).append(j)
    for group in days.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if keep is not None and not keep(a, b):
                    continue
                total += 1
                agree += (a.realised - b.realised) * (
                    a.estimates[estimator].value - b.estimates[estimator].value
                ) > 0
    return (agree / total if total else float("nan")), total


def apart(a: Judged, b: Judged) -> bool:
    """The online day itself tells them apart (their realised difference beyond its 95 %
    interval): otherwise the realised order is a coin flip."""
    return abs(a.realised - b.realised) > 1.96 * float(np.hypot(a.realised_se, b.realised_se))


def separated(a: Judged, b: Judged) -> bool:
    """Both supported by the log, and the online day tells them apart."""
    return a.supported and b.supported and apart(a, b)


def inside(judged: list[Judged], estimator: str, value: Callable[[Judged], float]) -> float:
    return float(
        np.mean(
            [j.estimates[estimator].low <= value(j) <= j.estimates[estimator].high for j in judged]
        )
    )


def predicted(judged: list[Judged], estimator: str) -> float:
    """Share of realised values inside the estimate's 95 % prediction interval (its interval
    widened by the online day's own standard error)."""
    return float(
        np.mean([j.estimates[estimator].predicts(j.realised, j.realised_se) for j in judged])
    )


def summary(judged: list[Judged]) -> Table:
    """Per estimator: bias, interval coverage of the realised and true values, ordering; over
    every challenger-day and over those the log supports."""
    # The logger estimates itself from its own greedy slots: not a challenger to cover.
    challengers = [j for j in judged if j.policy != LOGGER]
    supported = [j for j in challengers if j.supported]
    pairs = concordance(judged, "pbm", separated)[1]
    table = Table(
        title=f"clicks per list, {len(judged)} policy-days (the logging champion included); "
        f"{len(supported)} of {len(challengers)} challenger-days the log supports (>= "
        f"{OffPolicySpec.min_support:.0%} of their examination); {pairs} supported pairs and "
        f"{concordance(judged, 'pbm', apart)[1]} pairs in all the online day separates"
    )
    for column in (
        "estimator",
        "mean bias vs realised",
        "mean |error|",
        "realised inside 95% interval",
        "truth inside",
        "pairs ordered as realised",
        "realised inside, every challenger-day",
        "separated pairs ordered, supported or not",
        "realised inside, supported challenger-days",
        "realised inside prediction interval, supported",
        "supported pairs ordered, separated online",
        "median effective lists",
    ):
        table.add_column(column, justify="right" if column != "estimator" else "left")
    for name in judged[0].estimates:
        errors = np.array([j.estimates[name].value - j.realised for j in judged])
        effective = np.median([j.estimates[name].effective_lists for j in judged])
        table.add_row(
            name,
            f"{errors.mean():+.4f}",
            f"{np.abs(errors).mean():.4f}",
            f"{inside(judged, name, lambda j: j.realised):.0%}",
            f"{inside(judged, name, lambda j: j.truth):.0%}",
            f"{concordance(judged, name)[0]:.0%}",
            f"{inside(challengers, name, lambda j: j.realised):.0%}",
            f"{concordance(judged, name, apart)[0]:.0%}",
            f"{inside(supported, name, lambda j: j.realised):.0%}",
            f"{predicted(supported, name):.0%}",
            f"{concordance(judged, name, separated)[0]:.0%}",
            f"{effective:,.0f}" if np.isfinite(effective) else "-",
        )
    return table


def per_policy(judged: list[Judged]) -> Table:
    """Mean realised clicks per list and each estimate, per challenger over all days."""
    table = Table(title="per challenger, mean over scenario-days")
    estimators = list(judged[0].estimates)
    for column in ("policy", "realised", *estimators, "support", "days supported"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for name in dict.fromkeys(j.policy for j in judged):
        mine = [j for j in judged if j.policy == name]
        table.add_row(
            name,
            f"{np.mean([j.realised for j in mine]):.4f}",
            *(f"{np.mean([j.estimates[e].value for j in mine]):.4f}" for e in estimators),
            f"{np.mean([j.support for j in mine]):.0%}",
            f"{sum(j.supported for j in mine)} of {len(mine)}",
        )
    return table


def peer_agreement(judged: list[Judged]) -> Table:
    """Ours against Open Bandit Pipeline's estimator of the same quantity on the same logs: how
    far apart the values are, and how our interval's width compares with obp's bootstrap."""
    table = Table(title=f"ours against Open Bandit Pipeline, {len(judged)} policy-days")
    for column in ("ours", "obp", "largest |value difference|", "median width, ours / obp"):
        table.add_column(column, justify="right" if column not in ("ours", "obp") else "left")
    for ours, theirs in PEERS.items():
        pairs = [(j.estimates[ours], j.estimates[theirs]) for j in judged]
        furthest = max(abs(a.value - b.value) for a, b in pairs)
        widths = [(a.high - a.low) / (b.high - b.low) for a, b in pairs if b.high > b.low]
        table.add_row(
            ours, theirs, f"{furthest:.2e}", f"{np.median(widths):.2f}" if widths else "-"
        )
    return table


def gate_table(judged: list[Judged]) -> Table:
    """Per challenger, challenger - champion as the gate reads it (doubly robust: each model with
    its own click model where the log reaches `min_support` of the challenger's examination, the
    challenger's list read by the champion's click model where it does not; held back when worse
    beyond the interval), beside what `pbm` says on supported days; and, where the log does not
    reach the list, what doubly robust estimates with either click model say."""
    table = Table(title="the gate's criterion: challenger - champion (clicks per list)")
    columns = (
        "challenger",
        "days (supported)",
        "true gap",
        "the gate, every day",
        "held back (worse in truth)",
        "held back, not worse",
        "pbm, supported days",
        "unsupported days: true gap",
        GATE,
        BY_CHAMPION,
    )
    for column in columns:
        table.add_column(column, justify="right" if column != "challenger" else "left")
    for name in dict.fromkeys(j.policy for j in judged if j.gaps is not None):
        mine = [j for j in judged if j.policy == name]
        seen = [j for j in mine if j.supported]
        held = [j for j in mine if j.gate_gap.high < 0]
        blind = [j for j in mine if not j.supported]

        def mean_gap(rows: list[Judged], key: str | None) -> str:
            if not rows:
                return "-"
            gaps = [j.gate_gap if key is None else j.gaps[key] for j in rows]
            inside = np.mean(
                [g.low <= j.truth_gap <= g.high for g, j in zip(gaps, rows, strict=True)]
            )
            worse = sum(g.high < 0 for g in gaps)
            wrong = sum(g.high < 0 <= j.truth_gap for g, j in zip(gaps, rows, strict=True))
            return (
                f"{np.mean([g.value for g in gaps]):+.4f} ({inside:.0%} cover, "
                f"{worse} worse, {wrong} of them not)"
            )

        table.add_row(
            name,
            f"{len(mine)} ({len(seen)})",
            f"{np.mean([j.truth_gap for j in mine]):+.4f}",
            mean_gap(mine, None),
            f"{len(held)} ({sum(j.truth_gap < 0 for j in held)})",
            str(sum(j.truth_gap >= 0 for j in held)),
            mean_gap(seen, "pbm"),
            f"{np.mean([j.truth_gap for j in blind]):+.4f}" if blind else "-",
            mean_gap(blind, GATE),
            mean_gap(blind, BY_CHAMPION),
        )
    return table


def pair_table(judged: list[Judged], estimator: str) -> Table:
    """Per pair of policies: on how many days the online day separates them, and on how many of
    those `estimator` orders them as realised."""
    table = Table(title=f"pairs the online day separates, ordered by {estimator}")
    for column in ("pair", "days separated", "ordered as realised"):
        table.add_column(column, justify="right" if column != "pair" else "left")
    names = list(dict.fromkeys(j.policy for j in judged))
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            share, pairs = concordance(
                [j for j in judged if j.policy in (first, second)], estimator, apart
            )
            ordered = f"{share:.0%}" if pairs else "-"
            table.add_row(f"{first} / {second}", str(pairs), ordered)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[s.value for s in Scenario],
        choices=[s.value for s in Scenario],
    )
    parser.add_argument("--days", type=int, default=5, help="judged days from the change on")
    parser.add_argument("--lists", type=int, default=20_000, help="lists served a day per policy")
    parser.add_argument("--rate", type=float, default=0.1, help="exploration: chance per slot")
    parser.add_argument("--pool", type=int, default=40, help="exploration: ranks below the list")
    parser.add_argument("--popular", type=int, default=10, help="exploration: popular artworks")
    parser.add_argument("--clip", type=float, default=1e9, help="largest weight (default: none)")
    parser.add_argument("--events-per-day", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--obp",
        metavar="PYTHON",
        default=str(OBP_PYTHON) if OBP_PYTHON.exists() else None,
        help="a Python with Open Bandit Pipeline 0.5.5 (3.9), its estimates beside ours "
        "(default: .venv-obp's, from `make obp-venv`, when it exists)",
    )
    args = parser.parse_args(argv or [])
    try:
        Exploration(rate=args.rate, pool=args.pool, popular=args.popular)
    except ValueError as bad:
        parser.error(str(bad))
    console = Console()
    judged: list[Judged] = []
    exploring: list[float] = []
    for scenario in args.scenarios:
        days, logged = play(scenario, args, console)
        judged += days
        exploring += logged
    console.print(
        f"{len(args.scenarios)} scenario(s) x {args.days} days, {args.lists:,} lists a day per "
        f"policy, exploration rate {args.rate} over the next {args.pool} ranks and the "
        f"{args.popular} most popular artworks, k={K}"
    )
    console.print(per_policy(judged))
    greedy = np.mean([j.realised for j in judged if j.policy == LOGGER])
    console.print(
        f"exploration's cost: the exploring champion earned {np.mean(exploring):.4f} clicks per "
        f"list, greedy {greedy:.4f} ({np.mean(exploring) / greedy:.2f}x)"
    )
    console.print(summary(judged))
    if args.obp:
        console.print(peer_agreement(judged))
    else:
        console.print("Open Bandit Pipeline not compared: no --obp interpreter (make obp-venv)")
    console.print(gate_table(judged))
    console.print(pair_table(judged, GATE_VALUE))
