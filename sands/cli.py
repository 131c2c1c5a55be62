"""`sands`: the Shifting Sands command line."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from sands.dbt_vars import longest_feature_window
from sands.settings import SandsPaths, SettingError

if TYPE_CHECKING:
    from sands.simulator import Scenario

# History loaded before a scenario or replay starts: the longest feature window fills.
WARMUP_DAYS = longest_feature_window()

console = Console()
stderr = Console(stderr=True)
# Set by `sands --debug`: an error shows its traceback instead of one line.
_debug = False


def _error(line: str) -> None:
    """One line on stderr, never wrapped, no markup: an error or a failed run."""
    stderr.print(f"error: {line}", style="red", markup=False, highlight=False, soft_wrap=True)


class Refusal(Exception):
    """A command that cannot go on (nothing to work on, say); its message is one line, exit 1."""


class SandsGroup(TyperGroup):
    """Every command ends an error in one line on stderr: exit 2 for a bad argument, 1 for
    anything else; `sands --debug` shows the traceback instead."""

    def invoke(self, ctx: typer.Context) -> object:
        given = [*ctx._protected_args, *ctx.args]  # the command line, before it is consumed
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except UsageError as error:
            if _debug:
                raise
            where = error.ctx.command_path if error.ctx else ctx.command_path
            _error(f"{where}{_bad_value(error, given)}")
            raise typer.Exit(2) from None
        except (SettingError, Refusal) as error:
            if _debug:
                raise
            _error(str(error))
            raise typer.Exit(1) from None
        except Exception as error:
            if _debug:
                raise
            first = next(iter(str(error).strip().splitlines()), "")
            command = ctx.invoked_subcommand or ""
            _error(f"{type(error).__name__}: {first} (`sands --debug {command}` shows where)")
            raise typer.Exit(1) from None


def _bad_value(error: UsageError, given: list[str]) -> str:
    """`: message`, or ` --option value: message` when an option's value was out of range."""
    param = getattr(error, "param", None)
    if param is None or not getattr(param, "opts", None):
        return f": {getattr(error, 'message', None) or error.format_message()}"
    for index, arg in enumerate(given):
        for opt in param.opts:
            if arg.startswith(f"{opt}="):
                return f" {opt} {arg.split('=', 1)[1]}: {error.message}"
            if arg == opt and index + 1 < len(given):
                return f" {opt} {given[index + 1]}: {error.message}"
    return f": {error.format_message()}"


app = typer.Typer(
    cls=SandsGroup,
    help="Shifting Sands: a self-running data and model platform for a digital art marketplace.\n\n"
    "All state lives under SANDS_HOME (default ./.sands). Exit status: 0 done; 1 a run, a "
    "blocking check or a setting failed (one line each); 2 a bad argument.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the traceback, not one line.")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _paths(create: bool = True) -> SandsPaths:
    """SANDS_HOME's locations, once it is known to be a folder this process can write."""
    paths = SandsPaths.from_env()
    paths.require_home(create)
    return paths


def _day(value: str, option: str) -> date:
    """A YYYY-MM-DD option value, or a one-line usage error naming the option (exit 2)."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise typer.BadParameter(f"{option} {value!r} is not a day: expected YYYY-MM-DD")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, help="Number of days to simulate.")] = 14,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2026-09-01",
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed; same seed and options, same files.")
    ] = 7,
    events_per_day: Annotated[
        int, typer.Option(min=1, help="Approximate interaction events per day.")
    ] = 20_000,
    initial_users: Annotated[int, typer.Option(min=1)] = 2_000,
    initial_artworks: Annotated[int, typer.Option(min=1)] = 1_000,
    new_users_per_day: Annotated[int, typer.Option(min=0)] = 40,
    new_artworks_per_day: Annotated[int, typer.Option(min=0)] = 20,
    scenario: Annotated[
        str, typer.Option(help="steady | taste-shift | new-trend | demographic-shift")
    ] = "steady",
    scenario_day: Annotated[
        int | None,
        typer.Option(min=0, help="Day index the scenario starts, below --days (default: middle)."),
    ] = None,
    bad_rows: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of malformed rows to inject.")
    ] = 0.0,
    file_format: Annotated[str, typer.Option("--format", help="parquet | csv | jsonl")] = "parquet",
) -> None:
    """Write simulated daily drops (users, artworks, interactions) into the landing zone."""
    from sands.simulator import Marketplace, Scenario, SimulationConfig

    if file_format not in ("parquet", "csv", "jsonl"):
        raise typer.BadParameter(f"--format {file_format!r}: expected parquet, csv or jsonl")
    try:
        chosen = Scenario(scenario)
    except ValueError as error:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}: use {', '.join(s.value for s in Scenario)}"
        ) from error
    _within_days(scenario_day, days, "--scenario-day")
    config = SimulationConfig(
        seed=seed,
        start=_day(start, "--start"),
        days=days,
        events_per_day=events_per_day,
        initial_users=initial_users,
        initial_artworks=initial_artworks,
        new_users_per_day=new_users_per_day,
        new_artworks_per_day=new_artworks_per_day,
        scenario=chosen,
        scenario_day=scenario_day,
        bad_rows=bad_rows,
    )
    paths = _paths()
    paths.ensure_local_dirs()
    _write_drops(paths, Marketplace(config).days(), days, file_format)


def _within_days(index: int | None, days: int, option: str) -> None:
    """A day index the played or simulated days reach: 0 to days - 1 (exit 2 otherwise)."""
    if index is not None and index >= days:
        raise typer.BadParameter(
            f"{option} {index} is past the last day index: expected 0..{days - 1} (--days {days})"
        )


def _write_drops(paths: SandsPaths, drops, days: int, file_format: str = "parquet") -> None:
    """Write `days` drops into the landing zone with progress, then a table of what was written."""
    from sands.simulator import write_drop

    table = Table(
        "day", "events", "late", "bad", "users new/upd", "artworks new/upd", title="Simulated drops"
    )
    with _progress() as progress:
        task = progress.add_task("simulating", total=days)
        for drop in itertools.islice(drops, days):
            write_drop(drop, paths.landing, paths.storage_options, file_format)
            c = drop.counts
            table.add_row(
                str(drop.day),
                f"{c['events']:,}",
                f"{c['late_events']:,}",
                f"{c['bad_events']:,}",
                f"{c['new_users']:,}/{c['updated_users']:,}",
                f"{c['new_artworks']:,}/{c['repriced_artworks']:,}",
            )
            progress.advance(task)
    console.print(table)
    console.print(f"Landing zone: [cyan]{paths.landing}[/]")


def _landing_days(paths: SandsPaths) -> list[str]:
    from sands.contract import INTERACTIONS
    from sands.landing import filesystem, list_files

    fs, root = filesystem(paths.landing, paths.storage_options)
    return sorted({f.day.isoformat() for f in list_files(fs, root, INTERACTIONS) if f.day})


@app.command()
def ingest(
    day: Annotated[
        list[str] | None, typer.Option(help="Landing day(s) to ingest; default: every day present.")
    ] = None,
) -> None:
    """Validate landing drops into the bronze Delta tables (runs go to the Dagster instance)."""
    paths = _paths()
    chosen = _landing_day_options(paths, day or [])
    with _runs_checked(paths):
        _ingest(paths, chosen or None)


def _landing_span(days: list[str]) -> str:
    if not days:
        return "the landing zone has no days yet (`sands simulate` writes some)"
    return f"its days are {days[0]}..{days[-1]}"


def _landing_day_options(paths: SandsPaths, values: list[str]) -> list[str]:
    """The --day values, each a YYYY-MM-DD day with landing files (exit 2 otherwise)."""
    chosen = [_day(value, "--day").isoformat() for value in values]
    present = _landing_days(paths) if chosen else []
    for day in chosen:
        if day not in present:
            raise typer.BadParameter(
                f"--day {day} has no landing files in {paths.landing}: {_landing_span(present)}"
            )
    return chosen


def _ingest(paths: SandsPaths, days: list[str] | None) -> bool:
    from dagster_project.runner import (
        instance_for,
        rejected_files,
        rejected_reference_rows,
        run_ingestion,
    )
    from sands.partitions import home_partition_range

    chosen = days or _landing_days(paths)
    # Before any output: a bad SANDS_PARTITIONS_START or a day it leaves out is one line.
    home_partition_range(paths).require(date.fromisoformat(d) for d in chosen)
    instance = instance_for(paths)
    summary = Table(
        "run", "status", "read", "accepted", "rejected", "Delta version", title="Ingestion"
    )
    ok = True
    with _progress() as progress:
        task = progress.add_task("ingesting", total=len(chosen) + 1)

        def done(label: str, result) -> None:
            nonlocal ok
            ok &= result.success
            for event in result.get_asset_materialization_events():
                m = event.materialization
                meta = {k: v.value for k, v in m.metadata.items()}
                summary.add_row(
                    m.asset_key.to_user_string() if m.partition is None else label,
                    "[green]ok[/]" if result.success else "[red]failed[/]",
                    f"{meta.get('rows_read', 0):,}",
                    f"{meta.get('rows_accepted', 0):,}",
                    f"{meta.get('rows_rejected', 0):,}",
                    str(meta.get("delta_version", "")),
                )
            if not result.success:
                summary.add_row(label, "[red]failed[/]", "", "", "", "")
            notes.extend(rejected_reference_rows(result))
            notes.extend(rejected_files(result))
            progress.advance(task)

        notes: list[str] = []
        run_ingestion(chosen, instance, done)
    console.print(summary)
    for line in notes:
        _note(line)
    return ok


@app.command()
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
    from sands.simulator import Scenario

    try:
        return Scenario(name)
    except ValueError:
        names = ", ".join(s.value for s in Scenario)
        raise typer.BadParameter(f"unknown scenario {name!r}: use {names}") from None


def _demo(paths: SandsPaths, start: date, days: int, events_per_day: int, bad_rows: float) -> None:
    """Simulate, ingest, build features and the training set, train, then serve a day."""
    from sands.simulator import Marketplace, SimulationConfig

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
    from sands import backtest
    from sands.serving_process import ServiceRecommender, running_service
    from sands.simulator import write_drop

    env = {"SANDS_SERVE_SIMULATED_CLOCK": "1", "SANDS_SERVE_LOG_FLUSH_SECONDS": "1"}
    playing = console.status("starting sands serve and playing a day of users against it")
    # Live, not ready: if the gate kept every model out, users still get the fallbacks.
    with playing, running_service(paths, env, ready="/v2/health/live") as service:
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


SHORT_TRIGGERS = {
    "scheduled": "cron",
    "new training data": "data",
    "champion below objective or stale": "quality",
    "drift detected": "drift",
    "online CTR below objective": "online",
}


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
    from sands.simulator import SimulationConfig

    scenario = chosen.value
    config = SimulationConfig(
        seed=7,
        start=date(2026, 9, 1),
        days=days,
        events_per_day=events_per_day,
        scenario=chosen,
        scenario_day=shift_day,
    )
    table = _timeline(f"{scenario}: what the loop did by itself")

    def run(recommender=None):
        return _quietly(
            paths,
            f"playing {days} days ({scenario}) after {warmup_days} days of history",
            lambda: play(paths, config, lambda r: _show(table, r), warmup_days, recommender),
        )

    if serve:
        from sands.serving_process import ServiceRecommender, running_service

        paths.ensure_local_dirs()
        env = {
            "SANDS_SERVE_SIMULATED_CLOCK": "1",
            "SANDS_SERVE_POLL_SECONDS": "0.5",
            "SANDS_SERVE_LOG_FLUSH_SECONDS": "1",
        }
        # Live, not ready: nothing is trained yet when the service starts.
        with running_service(paths, env, ready="/v2/health/live") as service:
            recommender = ServiceRecommender(service.url)
            records = run(recommender)
        console.print(f"The service served {recommender.served:,} lists to simulated users.")
    else:
        records = run()
    console.print(table)
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


@app.command()
def replay(
    landing: Annotated[
        str, typer.Option(help="A landing zone (path or s3:// URI) holding a history.")
    ],
    start: Annotated[str | None, typer.Option(help="First day to replay (YYYY-MM-DD).")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="How many days to replay.")] = None,
    warmup_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Days before the first replayed one loaded in bulk as history (default "
            "start: the first day after them).",
        ),
    ] = WARMUP_DAYS,
) -> None:
    """Backtest the retraining loop: feed a recorded landing zone through it day by day."""
    from sands.replay import ReplaySource, replay_days, warm_start

    first = _day(start, "--start") if start else None  # before the slow imports below
    paths = _paths()
    if paths.landing.rstrip("/") == landing.rstrip("/") or (
        "://" not in landing and Path(paths.landing).resolve() == Path(landing).resolve()
    ):
        raise typer.BadParameter("--landing must not be SANDS_HOME's own landing zone")
    source = ReplaySource(landing, paths.storage_options)
    available = source.days()
    try:
        chosen = replay_days(available, first or warm_start(available, warmup_days), days)
    except ValueError as error:
        raise typer.BadParameter(f"--landing {landing}: {error}") from error
    from dagster_project.loop import HistoryLoadError
    from dagster_project.scenario import replay as replay_days_through_loop

    history = [d for d in available if d < chosen[0]][-warmup_days:] if warmup_days else []
    table = _timeline(f"replay of {landing}: what the loop did by itself")
    # The partitions follow the replayed days, wherever they lie in time: no setting needed.
    with _runs_checked(paths), _one_line_errors(HistoryLoadError):
        records = _quietly(
            paths,
            f"replaying {len(chosen)} days ({chosen[0]}..{chosen[-1]}) after {len(history)} "
            "days of history",
            lambda: replay_days_through_loop(
                paths, source, chosen, lambda r: _show(table, r), history, _note
            ),
        )
        console.print(table)
        _summary(records, "while a frozen model existed")
        _write_report(paths, records, "replay", landing=landing, history_days=len(history))
        _report_failures(records)


def _timeline(title: str) -> Table:
    return Table(
        "day",
        "runs",
        "retrain trigger",
        "drift",
        "gate",
        "champion",
        "served by",
        "NDCG@10",
        "frozen",
        "popularity",
        "online CTR",
        "s",
        title=title,
    )


def _show(table: Table, r) -> None:
    """Add a day to the timeline and say one line about it while the play goes on."""

    from sands.backtest import fmt, unlabelled

    def score(value: float | None) -> str:
        return fmt(value)

    # A day without labelled users has no score: "-", with the reason, never nan.
    served = score(r.served_ndcg if r.served_ndcg is not None else r.champion_ndcg)
    served += " (no labels)" if unlabelled(r) and r.serving else ""
    table.add_row(
        r.day,
        f"{r.runs}" + (f" ({r.failed_runs}!)" if r.failed_runs else ""),
        ", ".join(SHORT_TRIGGERS.get(t, t) for t in r.triggers) or "-",
        {None: "-", True: "[red]drifted[/]", False: "ok"}[r.drift],
        {None: "-", True: "[green]pass[/]", False: "[yellow]reject[/]"}[r.gate],
        f"v{r.champion}" if r.champion else "-",
        r.served_policy or (f"v{r.serving}" if r.serving else "-"),
        served,
        f"{score(r.frozen_ndcg)} (v{r.frozen})" if r.frozen else "-",
        score(r.popularity_ndcg),
        score(r.online_ctr),
        f"{r.seconds:.0f}",
    )
    _say(f"{r.day}: {r.runs} runs, triggers: {', '.join(r.triggers) or 'none'}")


def _summary(records, when: str) -> None:
    from sands.backtest import backtest, describe, split

    retrains = [r.day for r in records if r.triggers]
    on_drift = [r.day for r in records if "drift detected" in r.triggers]
    console.print(
        f"{len(retrains)} retrain requests; drift-triggered on: {', '.join(on_drift) or 'no day'}"
    )
    if backtest(records) is None and not split(records)[1]:
        console.print("No day had both a serving champion and a frozen model to compare.")
        return
    console.print(f"Next-day NDCG@10 {when}, {describe(records)}.")


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


def _materializations(result) -> dict[str, dict[str, object]]:
    return {
        e.materialization.asset_key.to_user_string(): {
            k: v.value for k, v in e.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def _failed_checks(result) -> list[str]:
    return [
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:"
        f"{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]


def _quietly(paths: SandsPaths, label: str, run):
    """Run `run()` under a spinner, sending dbt's console output to SANDS_HOME/logs/dbt.log."""
    log = Path(paths.home, "logs", "dbt.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    # Bound to the terminal now, so the spinner keeps drawing while stdout goes to the log.
    live = Console(file=sys.stdout)
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=live) as progress:
        progress.add_task(label, total=None)
        _live.append(live)
        try:
            with log.open("a") as sink, redirect_stdout(sink):
                return run()
        finally:
            _live.pop()


# The terminal while `_quietly` sends stdout to the log: progress lines still reach the user.
_live: list[Console] = []


def _say(text: str) -> None:
    (_live[-1] if _live else console).print(text)


def _note(line: str) -> None:
    """A one-line notice (never wrapped, no markup): e.g. reference rows the contract rejected."""
    (_live[-1] if _live else console).print(
        line, style="yellow", markup=False, highlight=False, soft_wrap=True
    )


@contextmanager
def _one_line_errors(*expected: type[Exception]) -> Iterator[None]:
    """An `expected` error (its message is one line) ends the command with it, exit 1."""
    try:
        yield
    except expected as error:
        if _debug:
            raise
        _error(str(error))
        raise typer.Exit(1) from None


@contextmanager
def _runs_checked(paths: SandsPaths) -> Iterator[None]:
    """Around a command that runs jobs: first fail the runs a killed `sands` left STARTED; at
    the end, one line per failed step or blocking check of the runs it launched, and exit 1."""
    from dagster_project.failures import LaunchedRuns, fail_orphaned_runs
    from dagster_project.runner import instance_for

    instance = instance_for(paths)
    for line in fail_orphaned_runs(instance):
        _note(line)
    launched = LaunchedRuns(instance)
    failures = []
    try:
        yield
    finally:
        failures = launched.failures(Path(paths.home, "logs", "runs"))
        for failure in failures:
            _error(failure.line())
    if failures:
        raise typer.Exit(1)


@app.command()
def features(
    start: Annotated[str | None, typer.Option(help="First landing day (default: first).")] = None,
    end: Annotated[str | None, typer.Option(help="Last landing day; default: the last.")] = None,
) -> None:
    """dbt build and feature publishing for a window of landing days, as one run."""
    paths = _paths()
    first, last = _feature_window(paths, start, end)
    with _runs_checked(paths):
        if not _features(paths, first, last):
            raise typer.Exit(1)


def _feature_window(paths: SandsPaths, start: str | None, end: str | None) -> tuple[str, str]:
    """The days to build: --start and --end, by default the first and last landing day."""
    first = _day(start, "--start").isoformat() if start else None
    last = _day(end, "--end").isoformat() if end else None
    if first and last and first > last:
        raise typer.BadParameter(f"--start {first} is after --end {last}: expected start <= end")
    if first and last:
        return first, last  # the lake may hold days the landing zone no longer lists
    days = _landing_days(paths)
    if not days:
        raise Refusal(f"no landing days in {paths.landing}: `sands simulate` writes some")
    first, last = first or days[0], last or days[-1]
    if first > last:
        option = "--start" if start else "--end"
        raise typer.BadParameter(
            f"{option} leaves an empty window {first}..{last}: {_landing_span(days)}"
        )
    return first, last


def _features(paths: SandsPaths, first: str, last: str) -> bool:
    from dagster_project.runner import instance_for, run_feature_build

    instance = instance_for(paths)
    result = _quietly(
        paths,
        f"dbt build + feature publishing {first}..{last}",
        lambda: run_feature_build(first, last, instance),
    )
    table = Table("feature table", "Delta version", "snapshot rows", "appended", "restated")
    for name, meta in _materializations(result).items():
        if "schema_hash" in meta:
            table.add_row(
                name,
                str(meta["delta_version"]),
                f"{meta['dagster/row_count']:,}",
                f"{meta['rows_appended']:,}",
                f"{meta['rows_restated']:,}",
            )
    console.print(table)
    if not result.success:
        console.print(f"dbt's output: {Path(paths.home, 'logs', 'dbt.log')}")
    return result.success


@app.command("training-data")
def training_data() -> None:
    """Refresh the online store and rebuild the point-in-time training set."""
    paths = _paths()
    with _runs_checked(paths):
        _training_data(paths)


def _training_data(paths: SandsPaths) -> bool:
    from dagster_project.runner import instance_for, run_training_data

    instance = instance_for(paths)
    result = _quietly(paths, "online store + training set", lambda: run_training_data(instance))
    meta = _materializations(result)
    online = meta.get("online_features", {})
    for name in ("user_features", "artwork_features"):
        if f"{name}_rows" in online:
            console.print(
                f"online {name}: {online[f'{name}_rows']:,} vectors from Delta "
                f"v{online[f'{name}_delta_version']}, lookup p50 "
                f"{online[f'{name}_lookup_p50_us']} µs"
            )
    examples = meta.get("training_examples")
    if examples:
        console.print(
            f"training_examples: {examples['dagster/row_count']:,} rows, Delta "
            f"v{examples['delta_version']}, positive share {examples['positive_share']}"
        )
        console.print(Markdown(examples["composition"]))
        console.print(Markdown(examples["source_versions"]))
    return result.success


def _check_outcomes(result, check: str) -> list[dict[str, object]]:
    return [
        {k: v.value for k, v in e.asset_check_evaluation_data.metadata.items()}
        | {"passed": e.asset_check_evaluation_data.passed}
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == check
    ]


@app.command()
def train(
    trees: Annotated[int | None, typer.Option(min=1, help="Boosting rounds (default 300).")] = None,
    segments: Annotated[int | None, typer.Option(min=1, help="User segments (default 6).")] = None,
    max_depth: Annotated[int | None, typer.Option(min=1, help="Tree depth (default 4).")] = None,
    shuffle_labels: Annotated[
        bool, typer.Option(help="Gate drill: train on shuffled labels; it must not be promoted.")
    ] = False,
) -> None:
    """Train, register, evaluate and (only if the gate passes) promote the ranker."""
    config: dict[str, dict] = {}
    if trees is not None or shuffle_labels:
        config["ranker"] = {"shuffle_labels": shuffle_labels}
        if trees is not None:
            config["ranker"]["trees"] = trees
    if max_depth is not None:
        config.setdefault("ranker", {})["max_depth"] = max_depth
    if segments is not None:
        config["user_segments"] = {"segments": segments}
    paths = _paths()
    with _runs_checked(paths):
        _train(paths, config)


@app.command()
def retrain() -> None:
    """On-demand retrain (trigger 1 of 5): monitoring, training, evaluation, gated promotion."""
    paths = _paths()
    with _runs_checked(paths):
        _train(paths, {}, tags={"sands/trigger": "on demand"})


MONITORING_ASSETS = ("feature_drift", "champion_performance")


def _train(paths: SandsPaths, config: dict[str, dict], tags: dict[str, str] | None = None) -> bool:
    """Run the model_training job; a gate rejection is an outcome, not an error."""
    from dagster_project.runner import instance_for, run_model_training

    instance = instance_for(paths)
    result = _quietly(
        paths,
        "segments, similarity, ranker, evaluation, promotion",
        lambda: run_model_training(instance, config, tags),
    )
    meta = _materializations(result)
    ranker = meta.get("ranker")
    if ranker:
        console.print(
            f"ranker: registered [bold]{ranker['model_uri']}[/] from {ranker['train_rows']:,} "
            f"rows before {ranker['train_cutoff']} (train AUC {ranker['train_auc']})"
        )
    report = meta.get("evaluation_report")
    if report:
        console.print(Markdown(report["summary"]))
        console.print(f"report: [bold]{report['report']}[/]")
    gate = _check_outcomes(result, "promotion_gate")
    rejected = bool(gate) and not gate[-1]["passed"]
    if rejected:
        console.print(Markdown(gate[-1]["criteria"]))
        console.print("[yellow]Gate rejected the challenger; the champion stays.[/]")
    deployed = meta.get("deployed_ranker")
    if deployed:
        console.print(f"[green]{deployed['decision']}[/]")
    signals = [c for c in _failed_checks(result) if c.split(":")[0] in MONITORING_ASSETS]
    if signals:
        console.print(f"monitoring signals (retraining triggers): {', '.join(signals)}")
    # A gate rejection fails the evaluation step by design; any other step failure is an error
    # (told with its run id by `_runs_checked`).
    errors = [
        event
        for event in result.get_step_failure_events()
        if not (rejected and event.step_key == "evaluation_report")
    ]
    return not errors and (result.success or rejected)


def _registry():
    from resources import build_resources

    _paths()  # the embedded MLflow store and the champion history live under it
    return build_resources()["registry"].open()


@app.command()
def models() -> None:
    """List registered ranker versions with their aliases, gate verdict and NDCG@10."""
    registry = _registry()
    table = Table("version", "aliases", "gate", "NDCG@10", "trained before", "created")
    aliases, _, policy = registry.serving_state()
    for version in registry.versions():
        tags = version.tags
        table.add_row(
            str(version.version),
            ", ".join(sorted(a for a, v in aliases.items() if v == int(version.version))),
            tags.get("sands.gate", "not evaluated"),
            tags.get("sands.eval.ndcg_at_10", "")[:6],
            tags.get("sands.train_cutoff", "")[:10],
            datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).strftime(
                "%Y-%m-%d %H:%M"
            ),
        )
    console.print(table)
    _version_links(registry, aliases)
    guard = [c for c in registry.history() if c.action.startswith("serving_policy_")]
    why = f" since {guard[-1].ts:%Y-%m-%d %H:%M}: {guard[-1].reason}" if guard else ""
    console.print(f"The champion arm serves: [bold]{policy}[/]{why}")


def _version_links(registry, aliases: dict[str, int]) -> None:
    """Where the champion and the challenger are in the MLflow UI, and the Dagster run that
    trained each (SANDS_MLFLOW_UI_URL, SANDS_DAGSTER_URL; default `sands mlflow`, `sands ui`)."""
    from sands.aliases import CHALLENGER, CHAMPION
    from sands.tracking import DAGSTER_RUN_URL_TAG, EVALUATION_RUN_TAG

    by_version: dict[int, list[str]] = {}
    for alias in (CHAMPION, CHALLENGER):
        if alias in aliases:
            by_version.setdefault(aliases[alias], []).append(alias)
    for number, names in by_version.items():
        tags = registry.version(number).tags
        links = [
            ("MLflow model", registry.ui_link(number)),
            ("MLflow run", registry.run_link(number)),
        ]
        if tags.get(EVALUATION_RUN_TAG):
            links.append(("evaluation run", registry.run_url(tags[EVALUATION_RUN_TAG])))
        if tags.get(DAGSTER_RUN_URL_TAG):
            links.append(("Dagster run", tags[DAGSTER_RUN_URL_TAG]))
        console.print(f"{', '.join(names)} v{number}:")
        for label, url in links:
            console.print(
                f"  {label + ':':15} {url}", markup=False, highlight=False, soft_wrap=True
            )


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"


def _actor() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


@app.command()
def promote(
    version: Annotated[int, typer.Argument(min=1, help="Registered version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Move the `champion` alias to VERSION by hand (logged in the champion history)."""
    from sands.registry import RegistryError

    registry = _registry()
    with _one_line_errors(RegistryError):
        change = registry.promote(version, f"cli:{_actor()}", reason)
    if change is None:
        console.print(f"v{version} is already the champion: nothing changed")
        return
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] ({reason})")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Give the `champion` alias back to the previous champion (logged)."""
    from sands.registry import RegistryError

    registry = _registry()
    with _one_line_errors(RegistryError):
        change = registry.rollback(f"cli:{_actor()}", reason)
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] (rollback)")


@app.command()
def mlflow(port: Annotated[int, typer.Option(min=1, max=65535)] = 5000) -> None:
    """Start the MLflow UI on the embedded tracking store and artifacts."""
    paths = _paths()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        paths.mlflow_tracking_uri,
        "--default-artifact-root",
        paths.mlflow_artifacts,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    raise typer.Exit(subprocess.call(command))


@app.command()
def status() -> None:
    """Show the lake's tables: Delta version, rows, quarantined rows and rejected files."""
    from sands import quarantine
    from sands.contract import ENTITIES
    from sands.feature_store import FEATURE_TABLES
    from sands.ingest import bronze_uri, quarantine_uri
    from sands.lake import open_table
    from sands.prediction_log import impressions_uri
    from sands.training_store import TRAINING_EXAMPLES

    paths = _paths(create=False)
    table = Table(
        Column("table", no_wrap=True),  # names are what people grep for: never folded
        "Delta version",
        "rows",
        "quarantined",
        "files rejected",
        title=f"Lake at {paths.lake}",
    )
    for entity in ENTITIES.values():
        bronze = open_table(bronze_uri(paths.lake, entity), paths.storage_options)
        bad, files = quarantine.counts(quarantine_uri(paths.lake, entity), paths.storage_options)
        table.add_row(
            f"bronze/{entity.name}",
            str(bronze.version()) if bronze else "-",
            f"{bronze.count() if bronze is not None else 0:,}",
            f"{bad:,}",
            f"{files:,}",
        )
    for name, uri in [
        *((f"features/{t.name}", t.uri(paths.lake)) for t in FEATURE_TABLES),
        ("training/training_examples", TRAINING_EXAMPLES.uri(paths.lake)),
        ("serving/impressions", impressions_uri(paths.lake)),
    ]:
        found = open_table(uri, paths.storage_options)
        if found is not None:
            table.add_row(name, str(found.version()), f"{found.count():,}", "")
    console.print(table)


@app.command()
def ui(port: Annotated[int, typer.Option(min=1, max=65535)] = 3000) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this code location."""
    paths = _paths()
    from dagster_project.runner import instance_for

    instance_for(paths)
    env = {**os.environ, "DAGSTER_HOME": paths.dagster_home, "SANDS_HOME": paths.home}
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(port)]
    raise typer.Exit(subprocess.call(command, env=env))


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Processes; each loads the models.")] = 1,
) -> None:
    """Serve recommendations, the Open Inference Protocol and /metrics (champion + canary)."""
    from sands.serving_process import ServeError, listen
    from sands.serving_process import serve as run_service

    paths = SandsPaths.from_env()
    os.environ["SANDS_HOME"] = paths.home
    with _one_line_errors(ServeError):  # e.g. the port is taken: refused before any worker starts
        sockets = listen(host, port, workers)
        if workers > 1:
            # Created once here: workers racing to create a fresh home's registry store crash.
            from resources import build_resources

            build_resources()["registry"].open()
        console.print(
            f"Serving on http://{host}:{port} with {workers} worker(s) ({paths.home})",
            soft_wrap=True,
        )
        run_service(sockets)


@app.command("spark-jars")
def spark_jars(
    destination: Annotated[Path, typer.Argument(help="Folder to copy the jars into.")],
) -> None:
    """Fetch the Delta jars Spark needs (Maven Central) into a folder, for offline machines and
    images: then set SANDS_SPARK_JARS to that folder."""
    from sands.spark import seed_jars

    with console.status("Resolving io.delta jars through a Spark session..."):
        jars = seed_jars(str(destination))
    for jar in jars:
        console.print(f"  {jar}")
    console.print(f"{len(jars)} jars in {destination}: export SANDS_SPARK_JARS={destination}")


@app.command("contract-docs")
def contract_docs(
    output: Annotated[Path, typer.Option(help="Where to write the markdown.")] = Path(
        "docs/data-contract.md"
    ),
) -> None:
    """Regenerate docs/data-contract.md from the pandera schemas."""
    from sands.contract_docs import render_contract

    output.write_text(render_contract())
    console.print(f"Wrote {output}")


def main() -> None:
    """The `sands` entry point. It leaves with os._exit: delta-rs's reader threads can abort the
    process's C-level teardown ("terminate called without an active exception", delta-rs#2184),
    which would turn a finished command's exit status into 134."""
    code = 0
    # The CLI prints its own summaries; library chatter and API-stability notes are noise here.
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        app()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except SettingError as error:  # e.g. a malformed SANDS_PARTITIONS_START: one line, no trace
        _error(str(error))
        code = 1
    except BaseException:  # only with --debug: otherwise SandsGroup ends errors in one line
        stderr.print_exception()
        code = 1
    # Python's own exit handlers still run (multiprocessing cleans up its semaphores); only the
    # C-level teardown where the abort happens is skipped.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
