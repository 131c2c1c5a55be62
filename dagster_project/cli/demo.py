"""`sands demo` and `sands replay`: the whole pipeline on a simulated marketplace, a scenario or a
recorded landing zone played through the loop day by day, and the report of each play."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagster_project.cli.common import (
    Refusal,
    RepeatedNotes,
    _day,
    _note,
    _one_line_errors,
    _paths,
    _quietly,
    _runs_checked,
    _say,
    _within_days,
    console,
)
from dagster_project.cli.data import (
    _feature_window,
    _features,
    _ingest,
    _training_data,
    _write_drops,
    status,
)
from dagster_project.cli.models import _train
from dagster_project.cli.ops import SERVE_COMMAND
from dagster_project.cli.timeline import Timeline
from sands.features.dbt_vars import longest_feature_window
from sands.settings import SandsPaths, environment

if TYPE_CHECKING:
    from sands.sim.marketplace import Scenario


# History loaded before a scenario or replay starts: the longest feature window fills.
WARMUP_DAYS = longest_feature_window()
# Per slot, in `--serve` scenario plays (`sands.serving.exploration`).
SCENARIO_EXPLORATION_RATE = 0.1


def demo(
    days: Annotated[int, typer.Option(min=1)] = 14,
    events_per_day: Annotated[int, typer.Option(min=1)] = 20_000,
    bad_rows: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.01,
    fresh: Annotated[bool, typer.Option(help="Wipe SANDS_HOME first.")] = False,
    start: Annotated[
        str | None,
        typer.Option(
            help="First simulated day (YYYY-MM-DD). By default the demo's days end today (UTC), "
            "the served day last, so the UI's daily partitions are the demo's days and no more."
        ),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Play day by day through the sensors and automation instead (steady | "
            "taste-shift | new-trend | demographic-shift), printing a timeline."
        ),
    ] = None,
    shift_day: Annotated[
        int | None, typer.Option(min=0, help="Day index the scenario starts, below --days.")
    ] = None,
    warmup_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Scenario only: days of history loaded in bulk before day 0, so 28-day "
            "feature windows are full (a young marketplace's growth reads as drift).",
        ),
    ] = WARMUP_DAYS,
    serve: Annotated[
        bool,
        typer.Option(
            help="Scenario only: run `sands serve` throughout; each played day's users also "
            "browse what it serves, and the timeline shows the champion's online CTR."
        ),
    ] = False,
) -> None:
    """The main job on embedded defaults: simulate a marketplace, then run the pipeline on it."""
    paths = _paths()
    _within_days(shift_day, days, "--shift-day")
    first = _day(start, "--start") if start else datetime.now(UTC).date() - timedelta(days=days)
    chosen = _scenario(scenario) if scenario is not None else None  # before --fresh wipes
    if fresh:
        shutil.rmtree(paths.home)
        paths.require_home()
    with _runs_checked(paths):
        if chosen is not None:
            _play(paths, days, events_per_day, chosen, shift_day, warmup_days, serve)
        else:
            _demo(paths, first, days, events_per_day, bad_rows)


def _scenario(name: str) -> Scenario:
    """The named simulator scenario, or a usage error listing them (exit 2)."""
    from sands.sim.marketplace import Scenario

    try:
        return Scenario(name)
    except ValueError:
        names = ", ".join(s.value for s in Scenario)
        raise typer.BadParameter(f"unknown scenario {name!r}: use {names}") from None


def _demo(paths: SandsPaths, start: date, days: int, events_per_day: int, bad_rows: float) -> None:
    """Simulate, ingest, build features and the training set, train, then serve a day."""
    from sands.sim.marketplace import Marketplace, SimulationConfig

    config = SimulationConfig(
        seed=7,
        start=start,
        days=days + 1,  # the last day is played against the service
        events_per_day=events_per_day,
        bad_rows=bad_rows,
    )
    market = Marketplace(config)
    drops = market.days()
    paths.ensure_local_dirs()
    _write_drops(paths, drops, days)
    ok = _ingest(paths, None)
    ok = ok and _features(paths, *_feature_window(paths, None, None))
    ok = ok and _training_data(paths)
    ok = ok and _train(paths, {})
    ok = ok and _served_day(paths, market, drops)
    status()
    console.print(
        "Open the UI with [bold]make ui[/] (or [bold]sands ui[/]) to see assets, checks and runs."
    )
    console.print(
        "Evaluation reports: "
        f"[bold]{paths.reports}[/]; MLflow UI: [bold]sands mlflow[/] (http://127.0.0.1:5000)."
    )
    if not ok:
        raise typer.Exit(1)


def _served_day(paths: SandsPaths, market, drops) -> bool:
    """Close the loop: start `sands serve`, let one more simulated day's users browse what it
    serves, build that day, judge the champion on it (drift, its labels, online CTR per arm)
    and write the day's report, so every asset of the graph is materialized."""
    from dagster_project.runner import instance_for, run_champion_monitoring
    from dagster_project.scenario import served_day_record
    from dagster_project.served_impressions import report_served_impressions
    from sands.evaluation import backtest
    from sands.serving.process import ServiceRecommender, running_service
    from sands.sim.marketplace import write_drop

    env = {"SANDS_SERVE_SIMULATED_CLOCK": "1", "SANDS_SERVE_LOG_FLUSH_SECONDS": "1"}
    playing = console.status("starting sands serve and playing a day of users against it")
    # Live, not ready: if the gate kept every model out, users still get the fallbacks.
    with playing, running_service(paths, SERVE_COMMAND, env, ready="/v2/health/live") as service:
        market.recommender = recommender = ServiceRecommender(service.url)
        drop = next(drops)
        write_drop(drop, paths.landing, paths.storage_options, "parquet")
    console.print(
        f"{drop.day}: the service served {recommender.served:,} lists to simulated users "
        f"({recommender.refused:,} refused: users who signed up that day)"
    )
    instance = instance_for(paths)
    report_served_impressions(instance, paths)
    day = drop.day.isoformat()
    ok = _ingest(paths, [day]) and _features(paths, day, day)
    # Simulated users act within minutes of being served, and the day's data ends at midnight:
    # a one-hour window lets every list served before 23:00 count today.
    window = {"window_hours": 1.0}
    result = _quietly(
        paths,
        "drift, offline and online quality of the champion on the served day",
        lambda: run_champion_monitoring(instance, window),
    )
    if not result.success:
        return False
    metadata = result.asset_materializations_for_node("online_performance")[0].metadata
    console.print("Online quality of what was served (ranked lists, 1 h attribution):")
    console.print(metadata["by_arm"].value)
    for check in result.get_asset_check_evaluations():
        reason = check.metadata.get("reason")
        detail = reason.value if reason is not None else check.check_name
        console.print(f"{'[green]✓' if check.passed else '[red]✗'}[/] {detail}")
    ctr = metadata.get("champion_ctr")
    record = served_day_record(
        paths, drop.day, [result.run_id], ctr.value if ctr is not None else None
    )
    console.print(
        f"{record.day}: served {record.served_policy}, NDCG@10 on the day's labels "
        f"{backtest.fmt(record.served_ndcg)} (popularity {backtest.fmt(record.popularity_ndcg)})"
    )
    _write_report(paths, [record], "demo")
    return ok


def _play(
    paths: SandsPaths,
    days: int,
    events_per_day: int,
    chosen: Scenario,
    shift_day: int | None,
    warmup_days: int,
    serve: bool = False,
) -> None:
    """Play a scenario through the self-running loop; print the timeline and the verdicts."""
    from dagster_project.scenario import play, verdicts
    from sands.sim.marketplace import SimulationConfig

    scenario = chosen.value
    config = SimulationConfig(
        seed=7,
        start=date(2026, 9, 1),
        days=days,
        events_per_day=events_per_day,
        scenario=chosen,
        scenario_day=shift_day,
    )
    table = Timeline(f"{scenario}: what the loop did by itself")

    def run(recommender=None):
        return _quietly(
            paths,
            f"playing {days} days ({scenario}) after {warmup_days} days of history",
            lambda: play(paths, config, lambda r: _show(table, r), warmup_days, recommender),
        )

    if serve:
        from sands.serving.process import ServiceRecommender, running_service

        paths.ensure_local_dirs()
        env = {
            "SANDS_SERVE_SIMULATED_CLOCK": "1",
            "SANDS_SERVE_POLL_SECONDS": "0.5",
            "SANDS_SERVE_LOG_FLUSH_SECONDS": "1",
            # Scenarios explore a little, so off-policy estimates can judge each challenger
            # (`docs/ope.md`); the service alone stays greedy unless told otherwise.
            "SANDS_SERVE_EXPLORATION_RATE": os.environ.get(
                "SANDS_SERVE_EXPLORATION_RATE", str(SCENARIO_EXPLORATION_RATE)
            ),
        }
        # Live, not ready: nothing is trained yet when the service starts.
        with running_service(paths, SERVE_COMMAND, env, ready="/v2/health/live") as service:
            recommender = ServiceRecommender(service.url)
            records = run(recommender)
        console.print(f"The service served {recommender.served:,} lists to simulated users.")
    else:
        records = run()
    _print_timeline(table)
    shift = config.shift_day
    promises = []
    if shift < len(records):
        console.print(f"The scenario starts on {records[shift].day} (day index {shift}).")
        _summary(records[shift:], "after the change")
        promises = verdicts(records, chosen, shift)
        for claim, holds in promises:
            console.print(f"{'[green]✓' if holds else '[red]✗'}[/] {claim}")
    _write_report(
        paths,
        records,
        f"scenario-{scenario}",
        shift=shift,
        verdicts=promises,
        scenario=scenario,
        warmup_days=warmup_days,
        events_per_day=events_per_day,
    )
    _report_failures(records)


def replay(
    landing: Annotated[
        str, typer.Option(help="A landing zone (path or s3:// URI) holding a history.")
    ],
    start: Annotated[str | None, typer.Option(help="First day to replay (YYYY-MM-DD).")] = None,
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="How many landing days to replay: days with an interactions/<day>/ folder (the "
            "loop's clock jumps over days without one).",
        ),
    ] = None,
    warmup_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Landing days before the first replayed one loaded in bulk as history "
            "(default start: the first day after them).",
        ),
    ] = WARMUP_DAYS,
    max_reject_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of a drop's rows the contract may reject before its run fails its "
            "blocking check and stops what depends on it (default: IngestionConfig's).",
        ),
    ] = None,
) -> None:
    """Backtest the retraining loop: feed a recorded landing zone through it day by day."""
    from sands.ingest.landing import unlisted_notes
    from sands.ingest.partitions import landing_days
    from sands.sim.replay import ReplaySource, gaps, relanded, replay_days, span, warm_start

    first = _day(start, "--start") if start else None  # before the slow imports below
    paths = _paths()
    if paths.landing.rstrip("/") == landing.rstrip("/") or (
        "://" not in landing and Path(paths.landing).resolve() == Path(landing).resolve()
    ):
        raise typer.BadParameter("--landing must not be SANDS_HOME's own landing zone")
    if "://" not in landing and not Path(landing).is_dir():
        raise typer.BadParameter(f"--landing {landing}: no such folder")
    # A backtest missing a day it cannot see would measure another history: stop first.
    if unlisted := unlisted_notes(landing, paths.storage_options, "replayed"):
        raise Refusal(unlisted[0])
    source = ReplaySource(landing, paths.storage_options)
    available = source.days()
    try:
        chosen = replay_days(available, first or warm_start(available, warmup_days), days)
    except ValueError as error:
        raise typer.BadParameter(f"--landing {landing}: {error}") from error
    landed = landing_days(paths.landing, paths.storage_options)
    if again := relanded(chosen, landed, available):
        raise typer.BadParameter(again)
    if missing := source.missing_feeds():
        raise typer.BadParameter(
            f"--landing {landing}: no {' or '.join(f'{m}/' for m in missing)} files; the loop "
            "reads every event against its user and artwork, so a history needs both reference "
            "feeds (docs/data-contract.md)"
        )
    from dagster_project.loop import HistoryLoadError
    from dagster_project.scenario import replay as replay_days_through_loop
    from sands.ingest.landing import skipped_notes

    for line in skipped_notes(landing, paths.storage_options, "replayed"):
        _note(line)
    for name, dated in source.dated_after():
        _note(
            f"{name} is dated {dated}, after the history's last day ({available[-1]}): an "
            "export's date, not its rows'; staged with the first replayed day, as undated files are"
        )
    if first and first not in available:
        _note(f"no interactions landed on --start {first}: the replay starts at {chosen[0]}")
    if days and len(chosen) < days:
        _note(f"--days {days}: the landing zone holds {len(chosen)} from {chosen[0]} on")
    for first_gap, last_gap in gaps([d for d in available if d <= chosen[-1]]):
        _note(
            f"no interactions landed on {span(first_gap, last_gap)}: the loop's clock jumps over it"
        )

    before = [d for d in available if d < chosen[0]][-warmup_days:] if warmup_days else []
    positives = _positives_by_what_landed(source, [*before, *chosen])
    if len(before) < warmup_days:
        _note(
            f"{_days(len(before))} of history before {chosen[0]} in --landing, not the "
            f"{_days(warmup_days)} of --warmup-days: early days score on immature features"
        )
    # Days already in this home (a replay going on from where it stopped) are not loaded again.
    history = sorted(set(before) - set(landed))
    table = Timeline(f"replay of {landing}: what the loop did by itself")
    # The partitions follow the replayed days, wherever they lie in time: no setting needed.
    notes = RepeatedNotes()
    with _runs_checked(paths), _one_line_errors(HistoryLoadError), environment(positives):
        try:
            records = _quietly(
                paths,
                f"replaying {_landing_days(chosen)} after {_landing_days(history)} of history",
                lambda: replay_days_through_loop(
                    paths,
                    source,
                    chosen,
                    lambda r: _show(table, r),
                    history,
                    notes,
                    max_reject_share,
                ),
            )
        finally:
            notes.close()
        _print_timeline(table)
        _summary(records, "while a frozen model existed")
        _write_report(paths, records, "replay", landing=landing, history_days=len(history))
        _report_failures(records)


def _landing_days(days: list[date]) -> str:
    """ "9 days (2000-12-16..2000-12-30)", saying how many calendar days they span when some
    between them landed nothing: "9 landing days (2000-12-16..2000-12-30, 15 calendar days)"."""
    if not days:
        return _days(0)
    calendar = (days[-1] - days[0]).days + 1
    if calendar == len(days):
        return f"{_days(len(days))} ({days[0]}..{days[-1]})"
    return f"{len(days)} landing days ({days[0]}..{days[-1]}, {calendar} calendar days)"


def _conversions_told(day: date, counts: Counter[str]) -> None:
    """Which events the models learn from, and how rare they are: on a session log most events
    are clicks, which then only feed the inputs."""
    from sands.ingest.contract import CONVERSION_EVENTS, EVENT_TYPES
    from sands.settings import POSITIVE_EVENTS_VAR

    positives, events = sum(counts[t] for t in CONVERSION_EVENTS), sum(counts.values())
    inputs = [t for t in EVENT_TYPES if t not in CONVERSION_EVENTS and counts[t]]
    others = f"; {' and '.join(inputs)} events are inputs only" if inputs else ""
    _note(
        f"positives (what models learn and are judged on) are {' and '.join(CONVERSION_EVENTS)} "
        f"events: {positives:,} of {events:,} events ({positives / events:.1%}) on {day}, the "
        f"first day of the history loaded or replayed holding one{others} ({POSITIVE_EVENTS_VAR}="
        f"{','.join(EVENT_TYPES[1:])} would label clicks too)"
    )


def _positives_by_what_landed(source, days: list[date]) -> dict[str, str]:
    """A click or view log has no conversion to learn from: unless `SANDS_POSITIVE_EVENTS` says
    what a positive is, the replay labels its strongest funnel step, and says so. The setting
    for the replay's runs."""
    from sands.ingest.contract import EVENT_TYPES, strongest_positives
    from sands.settings import POSITIVE_EVENTS_VAR, positive_events_setting

    if positive_events_setting(EVENT_TYPES) is not None:
        return {}
    first, counts = source.event_counts(days)
    landed = set(counts)
    chosen = strongest_positives(landed)
    if not chosen:
        if first is not None:
            _conversions_told(first, counts)
        return {}
    value = ",".join(chosen)
    # `FAVOURITE` is rejected by the contract: said here, or views would quietly become labels.
    cased = sorted(t for t in landed if t not in EVENT_TYPES and t.strip().lower() in EVENT_TYPES)
    spelt = (
        f"; {', '.join(repr(t) for t in cased)} landed too, which the contract rejects "
        f"(event types are {', '.join(EVENT_TYPES)}, lower case)"
        if cased
        else ""
    )
    _note(
        f"no favourite or purchase in the replayed days: a {chosen[0]} or any later funnel step "
        f"is a positive ({POSITIVE_EVENTS_VAR}={value}; set it to choose){spelt}"
    )
    return {POSITIVE_EVENTS_VAR: value}


def _print_timeline(timeline: Timeline) -> None:
    """The timeline at the terminal's width, saying which columns it left out."""
    table, left_out = timeline.render(console.width)
    console.print(table)
    if left_out:
        console.print(
            f"Left out at {console.width} columns: {', '.join(left_out)} "
            "(every column is in the report's CSV and HTML page)."
        )


def _show(timeline: Timeline, r) -> None:
    """Add a day to the timeline and say one line about it while the play goes on."""
    timeline.add(r)
    _say(f"{r.day}: {r.runs} runs, triggers: {', '.join(r.triggers) or 'none'}")


def _summary(records, when: str) -> None:
    from sands.evaluation.backtest import backtest, describe, describe_served, split

    retrains = [r.day for r in records if r.triggers]
    on_drift = [r.day for r in records if "drift detected" in r.triggers]
    console.print(
        f"{len(retrains)} retrain requests; drift-triggered on: {', '.join(on_drift) or 'no day'}"
    )
    if backtest(records) is None and not split(records)[1]:
        console.print("No day had both a serving champion and a frozen model to compare.")
    else:
        console.print(f"Next-day NDCG@10 {when}, {describe(records)}.")
    console.print(f"What served, every day: {describe_served(records)}.")


def _write_report(paths: SandsPaths, records, kind: str, **context) -> None:
    """The play's summary as CSV, JSON and an HTML page under reports/, recorded in Dagster."""
    from dagster_project.backtest_report import report

    if not records:
        return
    files = report(paths, records, kind, **context)
    console.print(
        f"Reports: [bold]{files.html}[/] (NDCG@10 over the days), {files.csv}, {files.json}; "
        "in the Dagster UI: asset [bold]backtest_report[/], runs tagged "
        f"sands/play={files.label}."
    )


def _report_failures(records) -> None:
    """Which played days had failed runs (each failure is told, in one line, at the end)."""
    troubled = [r.day for r in records if r.failed_runs]
    if troubled:
        console.print(f"[yellow]Runs failed on {', '.join(troubled)}[/].")


def _days(count: int) -> str:
    """'1 day', '3 days'."""
    return f"{count} day" if count == 1 else f"{count} days"
