"""Play a simulated marketplace day by day through the self-running loop and keep a timeline."""

from __future__ import annotations

import time as time_module
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from dagster import ExecuteInProcessResult

from assets.automation import DRIFTED
from assets.monitoring import DRIFT_CHECK, NOT_MEASURED
from dagster_project.loop import Loop, TickOutcome
from dagster_project.runner import failed_only_on_reference_budget, instance_for
from sands.evaluation.backtest import score
from sands.evaluation.offline import EvaluationSpec
from sands.features.training_store import has_training_set
from sands.ingest.partitions import home_partition_range, landing_days, require_before_today
from sands.models.aliases import POPULARITY_POLICY
from sands.models.model_store import served_popularity_window
from sands.models.registry import Registry
from sands.models.tags import TRAIN_CUTOFF_TAG
from sands.monitoring.champion import SERVED_POPULARITY, latest_day_ndcg
from sands.settings import SandsPaths
from sands.sim.marketplace import (
    DayDrop,
    Marketplace,
    Recommender,
    Scenario,
    SimulationConfig,
    write_drop,
)
from sands.sim.replay import ReplaySource


@dataclass
class DayRecord:
    """What happened after one day's files landed."""

    day: str
    runs: int = 0
    failed_runs: int = 0
    triggers: list[str] = field(default_factory=list)
    drift: bool | None = None
    gate: bool | None = None
    champion: int | None = None
    serving: int | None = None  # the champion when the files landed: it served this day
    # What the champion arm served: `v<N>`, or popularity (no champion yet, or the serving
    # guard found popularity better); `served_ndcg` is that policy's score on the day's labels.
    served_policy: str | None = None
    served_ndcg: float | None = None
    serving_trained_until: str | None = None  # its training labels end before this day
    champion_ndcg: float | None = None  # of `serving`, on this day's labels
    frozen: int | None = None
    frozen_ndcg: float | None = None
    popularity_ndcg: float | None = None  # the 7-day baseline every target compares with
    # The days the popularity list counted when the day began (what serving fell back to).
    popularity_window: int | None = None
    # The evidence behind the day's scores: users with a positive that day, and their positives.
    judged_users: int | None = None
    positives: int | None = None
    without_history: int | None = None  # judged users with no event in the 28 days before
    online_ctr: float | None = None  # the champion's CTR on yesterday's served lists (if served)
    unscored: str | None = None  # why the day has no score, when it has none
    seconds: float = 0.0  # files landing -> loop at rest (ingest ... promotion)
    run_ids: list[str] = field(default_factory=list)


def _checks(result: ExecuteInProcessResult) -> dict[str, bool | None]:
    """Each check's verdict; None for one that passed with nothing to measure."""
    return {
        c.check_name: None if _flag(c.metadata.get(NOT_MEASURED)) else c.passed
        for c in result.get_asset_check_evaluations()
    }


def _flag(value: object) -> bool:
    return bool(getattr(value, "value", value))


def _absorb(record: DayRecord, outcome: TickOutcome) -> None:
    record.triggers += [t for t in outcome.ranker_triggers if t not in record.triggers]
    for result in outcome.results:
        record.runs += 1
        record.run_ids.append(result.run_id)
        checks = _checks(result)
        if checks.get(DRIFT_CHECK) is not None:  # not told when there was no champion to drift from
            record.drift = not checks[DRIFT_CHECK]
        if "promotion_gate" in checks:
            record.gate = checks["promotion_gate"]
        online = result.asset_materializations_for_node("online_performance")
        if online and "champion_ctr" in online[0].metadata:
            record.online_ctr = online[0].metadata["champion_ctr"].value
        if not result.success and record.gate is not False:
            record.failed_runs += 1


@dataclass(frozen=True)
class Arrival:
    """A day whose files land when `land()` is called."""

    day: date
    land: Callable[[], object]


def play(
    paths: SandsPaths,
    config: SimulationConfig,
    on_day: Callable[[DayRecord], None] | None = None,
    warmup_days: int = 0,
    recommender: Recommender | None = None,
) -> list[DayRecord]:
    """Simulate each day, let the landing sensor and automation do everything, record it.

    `warmup_days` of history come first, ingested in bulk (a marketplace that has been running
    a while, so trailing-window features are mature); the scenario's day index counts from
    after them. The model frozen for comparison is the champion on the eve of the change. With
    a `recommender` (the running service), played days' users also browse what it serves."""
    shift = config.shift_day
    extended = replace(config, days=config.days + warmup_days, scenario_day=shift + warmup_days)

    def arrival(drop: DayDrop) -> Arrival:
        return Arrival(
            drop.day, lambda: write_drop(drop, paths.landing, paths.storage_options, "parquet")
        )

    market = Marketplace(extended)
    drops = market.days()
    history = [arrival(next(drops)) for _ in range(warmup_days)]
    market.recommender = recommender  # history days were before the service existed
    days = [extended.start + timedelta(days=i) for i in range(extended.days)]
    return play_days(
        paths, (arrival(d) for d in drops), max(shift - 1, 0), on_day, history, days=days
    )


def replay(
    paths: SandsPaths,
    source: ReplaySource,
    days: list[date],
    on_day: Callable[[DayRecord], None] | None = None,
    history: list[date] | None = None,
    notify: Callable[[str], None] | None = None,
    max_reject_share: float | None = None,
) -> list[DayRecord]:
    """Feed a recorded landing zone through the loop day by day (after bulk-loading `history`);
    the first champion is frozen for comparison. The daily partitions cover the days staged
    (and any already in the home's landing zone), wherever they lie in time. `max_reject_share`:
    the ingestion runs' reject budget (None: the assets' default)."""

    require_before_today([*(history or []), *days])

    def arrival(day: date) -> Arrival:
        return Arrival(day, lambda: source.stage(day, paths.landing, paths.storage_options))

    earlier = history or []
    return play_days(
        paths,
        (arrival(d) for d in days),
        0,
        on_day,
        [arrival(d) for d in earlier],
        days=[*earlier, *days],
        notify=notify,
        max_reject_share=max_reject_share,
    )


def play_days(
    paths: SandsPaths,
    arrivals: Iterable[Arrival],
    freeze_after: int,
    on_day: Callable[[DayRecord], None] | None = None,
    history: list[Arrival] | None = None,
    days: Sequence[date] = (),
    notify: Callable[[str], None] | None = None,
    max_reject_share: float | None = None,
) -> list[DayRecord]:
    """Land each day's files, tick the sensor and automation until at rest, record the day.

    The daily partitions are the closed range over `days` (every day that will land) and the
    days already in the landing zone; one outside them (`SANDS_PARTITIONS_START` after it) fails
    here, before anything runs, with a one-line `PartitionsError`. Each day also scores, on its
    newest labels, the champion that served it, a model frozen at the end of day `freeze_after`
    (or the first champion after it), and popularity. `notify` hears one line per reference feed
    whose rows the contract rejected."""
    from dagster_project.definitions import build_defs
    from resources import build_resources

    paths.ensure_local_dirs()
    already_in = landing_days(paths.landing, paths.storage_options)
    covered = home_partition_range(paths, upcoming=days, closed=bool(days))
    covered.require(days)
    resources = build_resources()
    loop = Loop(
        build_defs(partitions=covered), instance_for(paths), resources, notify, max_reject_share
    )
    if history:
        for earlier in history:
            earlier.land()
        loop.preload([a.day.isoformat() for a in history])
    elif already_in:  # a replay going on in a home that holds the days before
        loop.resume(max(already_in))
    registry = resources["registry"].open()
    records: list[DayRecord] = []
    frozen: int | None = None
    for index, arrival in enumerate(arrivals):
        serving = registry.champion_version()
        guarded = registry.serving_policy() == POPULARITY_POLICY
        window = served_popularity_window(paths.lake, paths.storage_options)
        arrival.land()
        landed = time_module.perf_counter()
        record = DayRecord(
            day=arrival.day.isoformat(),
            serving=serving,
            serving_trained_until=_trained_until(registry, serving),
            frozen=frozen,
            served_policy=POPULARITY_POLICY if guarded or serving is None else f"v{serving}",
            popularity_window=window,
        )
        for result in loop.landing_tick():
            record.runs += 1
            record.run_ids.append(result.run_id)
            # Reference rows over the reject budget were told to `notify`; the accepted ones
            # are in bronze and the day goes on with them.
            ok = result.success or failed_only_on_reference_budget(result)
            record.failed_runs += 0 if ok else 1
        # The morning after the day closes: automation catches up on what landed.
        morning = datetime.combine(arrival.day + timedelta(days=1), time(1), tzinfo=UTC)
        loop.settle(morning, on_tick=lambda outcome, r=record: _absorb(r, outcome))
        record.champion = registry.champion_version()
        record.seconds = time_module.perf_counter() - landed
        _score(record, registry, paths)
        if frozen is None and index >= freeze_after:
            frozen = record.champion
        records.append(record)
        if on_day:
            on_day(record)
    return records


def served_day_record(
    paths: SandsPaths, day: date, run_ids: Sequence[str] = (), online_ctr: float | None = None
) -> DayRecord:
    """A day the current champion served, as a play's record scored on that day's labels (the
    demo's served day, so its report reads like a one-day play)."""
    from resources import build_resources

    registry = build_resources()["registry"].open()
    serving = registry.champion_version()
    guarded = registry.serving_policy() == POPULARITY_POLICY
    record = DayRecord(
        day=day.isoformat(),
        runs=len(run_ids),
        run_ids=list(run_ids),
        champion=serving,
        serving=serving,
        serving_trained_until=_trained_until(registry, serving),
        served_policy=POPULARITY_POLICY if guarded or serving is None else f"v{serving}",
        popularity_window=served_popularity_window(paths.lake, paths.storage_options),
        frozen=serving,  # nothing retrained since: the champion is its own frozen model
        online_ctr=online_ctr,
    )
    _score(record, registry, paths)
    return record


def _trained_until(registry: Registry, version: int | None) -> str | None:
    if version is None:
        return None
    return registry.version(version).tags[TRAIN_CUTOFF_TAG][:10]


def _score(record: DayRecord, registry: Registry, paths: SandsPaths) -> None:
    if not has_training_set(paths.lake, paths.storage_options):
        # Nothing labelled yet (a replay's first days without warm-up): not scored.
        record.unscored = "no training set yet"
        return
    versions = sorted({v for v in (record.serving, record.frozen) if v})
    latest = latest_day_ndcg(
        registry,
        paths.lake,
        versions,
        EvaluationSpec(),
        paths.storage_options,
        record.popularity_window,
    )
    scores = latest.scores
    if latest.day != record.day:
        # No label landed this day (only views, or every row rejected): the newest label day is
        # an earlier one, and scoring it again would count that day twice; its own fault
        # (nothing to rank on it) said as that day's.
        if latest.day and latest.unscored:
            newest = f"the newest, {latest.day}: {latest.unscored}"
            record.unscored = f"no positive dated this day ({newest})"
        else:
            record.unscored = latest.unscored or "no positive landed on this day"
        return
    if latest.unscored:  # this day's labels, but nothing could be ranked on them
        record.unscored = latest.unscored
        return
    record.judged_users, record.positives = latest.users, latest.positives
    record.without_history = latest.without_history
    # A day without labelled users scores nan: stored as None (no score), never averaged.
    record.champion_ndcg = score(scores[f"v{record.serving}"]) if record.serving else None
    record.frozen_ndcg = score(scores[f"v{record.frozen}"]) if record.frozen else None
    record.popularity_ndcg = score(scores["popularity"])
    if record.popularity_ndcg is None:
        record.unscored = "no user with a positive could be ranked"
    fell_back = score(scores.get(SERVED_POPULARITY, scores["popularity"]))
    served = fell_back if record.served_policy == POPULARITY_POLICY else None
    record.served_ndcg = served if served is not None else record.champion_ndcg


def verdicts(
    records: list[DayRecord], scenario: Scenario, shift: int, within_days: int = 3
) -> list[tuple[str, bool]]:
    """The scenario's promises, each with whether this play kept it."""
    drift_days = [i for i, r in enumerate(records) if DRIFTED in r.triggers]
    judged = records if scenario is Scenario.steady else records[shift:]
    served, popular = _means(judged, "popularity_ndcg")
    never_worse = (
        "what served scored at least popularity's NDCG@10 on the labelled days "
        + ("played" if scenario is Scenario.steady else "from the change on"),
        served is not None and served >= popular,
    )
    if scenario is Scenario.steady:
        return [("no retrain on drift", not drift_days), never_worse]
    window = range(shift, shift + within_days)
    served, frozen = _means(judged, "frozen_ndcg")
    return [
        ("no retrain on drift before the shift", all(i >= shift for i in drift_days)),
        (
            f"drift retrain within {within_days} days of the shift",
            any(i in window for i in drift_days),
        ),
        (
            "what served from the change on (retrained champions, or popularity while the guard "
            "held) beat the model frozen before it",
            served is not None and served > frozen,
        ),
        never_worse,
    ]


def _means(records: list[DayRecord], other: str) -> tuple[float | None, float | None]:
    """Mean NDCG@10 of what served and of `other` over the days both were scored."""
    pairs = [
        (r.served_ndcg, getattr(r, other))
        for r in records
        if r.served_ndcg is not None and getattr(r, other) is not None
    ]
    if not pairs:
        return None, None
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)
