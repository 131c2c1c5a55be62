"""Which negatives and which input groups earn their place in the ranker, measured offline.

On a simulated history built once (`bench.history`), or any home a `sands replay` filled (`--home`:
a real history), every evaluated day is judged as the loop judges a challenger: the training set
is the last 7 label days, the ranker trains on all but the newest, and the newest day is ranked
over the full catalogue (NDCG@10) beside 7-day popularity. Variants change one thing: the
negative mix, a left-out input group, the trees, the recency weights or the popularity prior.
With `--frozen`, each variant trains once, on the eve of the first judged day, and ranks every
judged day: how fast a recipe goes stale when nothing retrains it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sands.models.ranking import RankerParams


@dataclass(frozen=True)
class Variant:
    """One training recipe: negatives per positive and input columns left out."""

    name: str
    viewed: int
    popular: int
    uniform: int
    excluded: tuple[str, ...] = ()
    half_life_days: float | None = 1.5
    # None: the default's.
    trees: int | None = None
    max_depth: int | None = None
    # With rounds, trees chosen by early stopping (up to `trees`); None: exactly `trees`.
    early_stopping_rounds: int | None = None
    # The weight of log1p(7-day popularity) the margins start from; None: the default's.
    popularity_prior: float | None = None
    # Train on labels up to this many days before the judged day: what holding out the newest
    # label days for the gate costs a model that serves as trained.
    stale_days: int = 0
    # XGBoost's row/column subsampling seed; with `bagged` > 1, that many models on seeds from
    # here, their margins averaged: how much of a day's score is the draw of one model.
    seed: int = 0
    bagged: int = 1
    # Trees a round; None: the default's.
    parallel_trees: int | None = None


@dataclass
class Bag:
    """Models of one recipe on several seeds, ranking by their mean margin."""

    models: list

    @property
    def spec(self):
        return self.models[0].spec

    def scores(self, rows: pa.Table) -> np.ndarray:
        return np.mean([m.scores(rows) for m in self.models], axis=0)

    def grid_scores(self, users: pa.Table, items, engaged=None) -> np.ndarray:
        return np.mean([m.grid_scores(users, items, engaged) for m in self.models], axis=0)


def variants() -> list[Variant]:
    from sands.models.ranking import SHARE_FEATURES, TREND_FEATURES

    trends = (*TREND_FEATURES, *SHARE_FEATURES)
    return [
        Variant("2 viewed + 2 popular, no trend inputs (before)", 2, 2, 0, trends),
        Variant("2 viewed + 2 popular", 2, 2, 0),
        Variant("2 viewed + 4 uniform", 2, 0, 4),
        Variant("1 viewed + 4 uniform", 1, 0, 4),
        Variant("4 uniform", 0, 0, 4),
        Variant("8 uniform", 0, 0, 8),
        Variant("4 uniform, no artwork trend inputs", 0, 0, 4, TREND_FEATURES),
        Variant("4 uniform, no style/medium share inputs", 0, 0, 4, SHARE_FEATURES),
        Variant("4 uniform, neither", 0, 0, 4, trends),
        Variant("4 uniform, no declared style", 0, 0, 4, ("declared_style_match",)),
        Variant("4 uniform, no engaged input", 0, 0, 4, ("engaged_before",)),
        Variant("4 uniform, trained 1 day stale", 0, 0, 4, stale_days=1),
        Variant("4 uniform, trained 7 days stale", 0, 0, 4, stale_days=7),
        Variant("4 uniform, one tree a round, seed 1", 0, 0, 4, seed=1, parallel_trees=1),
        Variant("4 uniform, one tree a round, seed 2", 0, 0, 4, seed=2, parallel_trees=1),
        Variant(
            "4 uniform, one tree a round, 3 seeds averaged", 0, 0, 4, bagged=3, parallel_trees=1
        ),
        Variant("4 uniform, one tree a round", 0, 0, 4, parallel_trees=1),
        # Scoring cost grows with the trees: the gate and monitoring rank the full catalogue.
        Variant("4 uniform, 300 trees", 0, 0, 4, trees=300),
        Variant("4 uniform, 50 trees", 0, 0, 4, trees=50),
        # Deeper trees cost more per tree; 100 of depth 6 still walk fewer levels than 300 of 4.
        Variant("4 uniform, depth 6", 0, 0, 4, max_depth=6),
        Variant("4 uniform, early stopping", 0, 0, 4, early_stopping_rounds=20),
        # Recency against evidence: on small histories a short half-life leaves few positives.
        Variant("4 uniform, half-life 0.5 d", 0, 0, 4, half_life_days=0.5),
        Variant("4 uniform, half-life 3 d", 0, 0, 4, half_life_days=3.0),
        Variant("4 uniform, half-life 7 d", 0, 0, 4, half_life_days=7.0),
        Variant("4 uniform, no recency weights", 0, 0, 4, half_life_days=None),
        # Popularity as the trees' starting point (the default) against trees alone.
        Variant("4 uniform, no popularity prior", 0, 0, 4, popularity_prior=0.0),
        Variant("4 uniform, popularity prior 3", 0, 0, 4, popularity_prior=3.0),
    ]


@dataclass
class Lake:
    """A built history's events, catalogue and feature logs, read once."""

    events: pa.Table
    catalogue: pa.Table
    users: pa.Table
    artworks: pa.Table


def read_lake(home: str) -> Lake:
    from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
    from sands.features.training_store import LABEL_EVENT_COLUMNS
    from sands.ingest.contract import ARTWORKS, INTERACTIONS, LANDING_DAY_COLUMN
    from sands.lake import delta

    root = str(Path(home, "lake"))
    bronze = Path(root, "bronze")
    events = delta.open_table(str(bronze / INTERACTIONS.name)).to_pyarrow_table(
        columns=[*LABEL_EVENT_COLUMNS, LANDING_DAY_COLUMN]
    )
    catalogue = delta.open_table(str(bronze / ARTWORKS.name)).to_pyarrow_table(
        columns=["artwork_id"]
    )
    return Lake(
        events=events,
        catalogue=catalogue,
        users=delta.open_table(USER_FEATURES.uri(root)).to_pyarrow_table(),
        artworks=delta.open_table(ARTWORK_FEATURES.uri(root)).to_pyarrow_table(),
    )


def judged_examples(data: Lake, day, variant: Variant, label_days: int = 7) -> pa.Table:
    """The training examples of the `label_days` landed days up to `day`, negatives as the
    variant draws them."""
    from sands.features.engagement import with_engaged
    from sands.features.training_set import LabelSpec, training_examples, training_labels
    from sands.ingest.contract import LANDING_DAY_COLUMN

    first = day - timedelta(days=label_days - 1)
    landed = data.events[LANDING_DAY_COLUMN]
    window = pc.and_(pc.greater_equal(landed, first), pc.less_equal(landed, day))
    events = data.events.filter(window).drop_columns([LANDING_DAY_COLUMN])
    spec = LabelSpec(
        viewed_negatives=variant.viewed,
        popular_negatives=variant.popular,
        uniform_negatives=variant.uniform,
    )
    labels = with_engaged(training_labels(events, data.catalogue, spec), data.events)
    return training_examples(labels, data.users, data.artworks, timedelta(hours=48))


def _midnight(day) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def train_before(data: Lake, day, variant: Variant, examples: pa.Table | None = None):
    """The variant's ranker trained as the loop trains a challenger on the eve of `day` (on
    `examples`, when `judged_examples` of that day are at hand)."""
    from sands.evaluation.offline import temporal_split
    from sands.models.ranking import train_ranker

    examples = examples if examples is not None else judged_examples(data, day, variant)
    train, _ = temporal_split(examples, _midnight(day - timedelta(days=variant.stale_days)))
    params = variant_params(variant)
    if variant.bagged == 1:
        return train_ranker(train, None, params)
    seeds = range(variant.seed, variant.seed + variant.bagged)
    return Bag([train_ranker(train, None, replace(params, seed=seed)) for seed in seeds])


def judge_day(data: Lake, day, variant: Variant, model=None) -> dict[str, float]:
    """NDCG@10 of the variant and of popularity on `day`; the ranker is `model`, or trained on
    the label days before `day`."""
    from sands.evaluation.offline import (
        PRIMARY,
        EvaluationSpec,
        PopularityRecommender,
        RankerRecommender,
        evaluate,
        evaluation_setup,
    )

    examples = judged_examples(data, day, variant, 7 + variant.stale_days)
    model = model if model is not None else train_before(data, day, variant, examples)
    split = _midnight(day)
    setup = evaluation_setup(
        examples, data.users, data.artworks, None, split, EvaluationSpec(), events=data.events
    )
    ranked = evaluate(RankerRecommender("ranker", model), setup).overall
    popular = evaluate(PopularityRecommender(), setup).overall
    return {"ranker": ranked[PRIMARY], "popularity": popular[PRIMARY], "users": ranked["users"]}


def variant_params(variant: Variant) -> RankerParams:
    """The ranker's params for `variant`: the defaults with what the variant changes."""
    from sands.models.ranking import RankerParams

    params = replace(
        RankerParams(),
        excluded_features=variant.excluded,
        half_life_days=variant.half_life_days,
        early_stopping_rounds=variant.early_stopping_rounds,
        seed=variant.seed,
    )
    if variant.parallel_trees is not None:
        params = replace(params, parallel_trees=variant.parallel_trees)
    if variant.trees is not None:
        params = replace(params, trees=variant.trees)
    if variant.max_depth is not None:
        params = replace(params, max_depth=variant.max_depth)
    if variant.popularity_prior is None:
        return params
    return replace(params, popularity_prior=variant.popularity_prior)


def judge_days(
    console: Console,
    name: str,
    data: Lake,
    days: list,
    chosen: list[Variant],
    frozen: bool = False,
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]]]:
    """Each variant's NDCG@10 on each day (keyed by `name` and variant), and popularity's. With
    `frozen`, each variant trains once, on the eve of the first day, and ranks every day: how
    fast the recipe goes stale."""
    results: dict[tuple[str, str], list[float]] = {}
    popularity: dict[str, list[float]] = {}
    models = {v.name: train_before(data, days[0], v) for v in chosen} if frozen else {}
    for day in days:
        for variant in chosen:
            scores = judge_day(data, day, variant, models.get(variant.name))
            results.setdefault((name, variant.name), []).append(scores["ranker"])
            console.print(
                f"{name} {day} {variant.name}: {scores['ranker']:.4f} "
                f"(popularity {scores['popularity']:.4f}, {scores['users']:.0f} users)"
            )
        popularity.setdefault(name, []).append(scores["popularity"])
    return results, popularity


def converting_days(events: pa.Table) -> list:
    """Landing days holding a conversion, oldest first: the days a model can be judged on."""
    from sands.ingest.contract import CONVERSION_EVENTS, LANDING_DAY_COLUMN

    kinds = pa.array(CONVERSION_EVENTS, events["event_type"].type)
    converting = events.filter(pc.is_in(events["event_type"], kinds))
    return sorted(set(converting[LANDING_DAY_COLUMN].to_pylist()))


def paired_gap(days: list[float], reference: list[float]) -> str:
    """Mean day-by-day difference from the reference recipe and its standard error over the
    judged days: one day's users are the same for both, so the pairing removes their noise."""
    gaps = np.subtract(days, reference)
    if len(gaps) < 2:
        return f"{gaps.mean():+.4f}"
    return f"{gaps.mean():+.4f} ± {gaps.std(ddof=1) / np.sqrt(len(gaps)):.4f}"


def ablation_table(
    scenarios: list[str],
    chosen: list[Variant],
    results: dict[tuple[str, str], list[float]],
    popularity: dict[str, list[float]],
) -> Table:
    """Mean NDCG@10 per scenario and recipe, with each recipe's paired gap to the first one."""
    reference = chosen[0].name
    columns = [c for s in scenarios for c in (f"{s} NDCG@10", f"{s} vs {reference}")]
    table = Table("variant", *columns, title="ranker ablation")
    table.add_row(
        "popularity (7 days)",
        *[c for s in scenarios for c in (f"{np.mean(popularity[s]):.4f}", "")],
    )
    for variant in chosen:
        cells = []
        for scenario in scenarios:
            days = results[(scenario, variant.name)]
            mean = float(np.mean(days))
            cells.append(f"{mean:.4f} ({mean / np.mean(popularity[scenario]):.2f}x)")
            same = variant.name == reference
            cells.append("" if same else paired_gap(days, results[(scenario, reference)]))
        table.add_row(variant.name, *cells)
    return table


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return number


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ranker_ablation")
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--warmup-days", type=int, default=28)
    parser.add_argument("--days", type=int, default=10, help="days after the warm-up")
    parser.add_argument("--shift-day", type=int, default=3, help="change day, after warm-up")
    parser.add_argument("--scenarios", nargs="+", default=["steady", "taste-shift"])
    parser.add_argument("--judge", nargs="+", type=int, help="played day indexes to judge")
    parser.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    parser.add_argument("--homes", default=tempfile.gettempdir(), help="where histories live")
    parser.add_argument(
        "--home",
        help="a home `sands replay` filled (any history, real ones too): judge its newest "
        "--last-days landed days with conversions instead of simulating",
    )
    parser.add_argument(
        "--last-days", type=positive, default=7, help="days judged with --home (at least 1)"
    )
    parser.add_argument(
        "--frozen",
        action="store_true",
        help="train each variant once, on the eve of the first judged day, and rank every "
        "judged day with it (how fast it goes stale) instead of retraining each day",
    )
    args = parser.parse_args(argv)
    from bench.history import build_history

    console = Console()
    known = [v.name for v in variants()]
    unknown = [name for name in args.only or [] if name not in known]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {known}")
    chosen = [v for v in variants() if not args.only or v.name in args.only]
    if args.home:
        if not Path(args.home, "lake", "bronze", "interactions").is_dir():
            parser.error(f"{args.home} holds no history: fill it with `sands replay` first")
        data = read_lake(args.home)
        days = converting_days(data.events)[-args.last_days :]
        if not days:
            parser.error(f"{args.home} has no landed day with a conversion to judge")
        name = Path(args.home).name
        results, popularity = judge_days(console, name, data, days, chosen, args.frozen)
        console.print(ablation_table([name], chosen, results, popularity))
        console.print(f"days judged: {', '.join(str(d) for d in days)} of {args.home}")
        return
    judged = args.judge or list(range(args.shift_day, args.days))
    results: dict[tuple[str, str], list[float]] = {}
    popularity: dict[str, list[float]] = {}
    for scenario in args.scenarios:
        home = str(Path(args.homes, f"sands-quality-{scenario}-{args.events_per_day}"))
        started = time.perf_counter()
        history = build_history(
            home,
            scenario,
            args.warmup_days + args.days,
            args.warmup_days + args.shift_day,
            args.events_per_day,
        )
        console.print(f"{scenario}: history in {home} ({time.perf_counter() - started:.0f} s)")
        days = [history.day(args.warmup_days + index) for index in judged]
        scored, popular = judge_days(console, scenario, read_lake(home), days, chosen, args.frozen)
        results.update(scored)
        popularity.update(popular)
    console.print(ablation_table(args.scenarios, chosen, results, popularity))
    console.print(f"days judged: played days {judged} of {args.days}, after {args.warmup_days}")
