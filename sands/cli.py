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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

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
from rich.table import Table

from sands.dbt_vars import longest_feature_window
from sands.settings import SandsPaths, SettingError

# History loaded before a scenario or replay starts: the longest feature window fills.
WARMUP_DAYS = longest_feature_window()

app = typer.Typer(
    help="Shifting Sands: a self-running data and model platform for a digital art marketplace.\n\n"
    "All state lives under SANDS_HOME (default ./.sands).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
console = Console()


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
    seed: Annotated[int, typer.Option(help="Random seed; same seed and options, same files.")] = 7,
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
        int | None, typer.Option(help="Day index the scenario starts (default: middle).")
    ] = None,
    bad_rows: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of malformed rows to inject.")
    ] = 0.0,
    file_format: Annotated[str, typer.Option("--format", help="parquet | csv | jsonl")] = "parquet",
) -> None:
    """Write simulated daily drops (users, artworks, interactions) into the landing zone."""
    from sands.simulator import Marketplace, Scenario, SimulationConfig

    if file_format not in ("parquet", "csv", "jsonl"):
        raise typer.BadParameter("--format must be parquet, csv or jsonl")
    try:
        chosen = Scenario(scenario)
    except ValueError as error:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}: use {', '.join(s.value for s in Scenario)}"
        ) from error
    config = SimulationConfig(
        seed=seed,
        start=date.fromisoformat(start),
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
    paths = SandsPaths.from_env()
    paths.ensure_local_dirs()
    _write_drops(paths, Marketplace(config).days(), days, file_format)


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
    with _one_line_errors():
        _ingest(SandsPaths.from_env(), day or None)


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
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Play day by day through the sensors and automation instead (steady | "
            "taste-shift | new-trend | demographic-shift), printing a timeline."
        ),
    ] = None,
    shift_day: Annotated[int | None, typer.Option(help="Day index the scenario starts.")] = None,
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
    paths = SandsPaths.from_env()
    if fresh and Path(paths.home).exists():
        shutil.rmtree(paths.home)
    if scenario is not None:
        with _one_line_errors():
            played = _play(paths, days, events_per_day, scenario, shift_day, warmup_days, serve)
        if not played:
            raise typer.Exit(1)
        return
    from sands.simulator import Marketplace, SimulationConfig

    config = SimulationConfig(
        seed=7,
        start=date(2026, 9, 1),
        days=days + 1,  # the last day is played against the service
        events_per_day=events_per_day,
        bad_rows=bad_rows,
    )
    market = Marketplace(config)
    drops = market.days()
    paths.ensure_local_dirs()
    _write_drops(paths, drops, days)
    ok = _ingest(paths, None)
    ok = ok and _features(paths, None, None)
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
    serves, ingest that day and measure online CTR per arm from the prediction log."""
    from dagster_project.runner import instance_for, run_online_quality
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
    ok = _ingest(paths, [drop.day.isoformat()])
    # Simulated users act within minutes of being served, and the day's data ends at midnight:
    # a one-hour window lets every list served before 23:00 count today.
    window = {"window_hours": 1.0}
    result = _quietly(
        paths, "online performance", lambda: run_online_quality(instance_for(paths), window)
    )
    if not result.success:
        console.print("[red]online_performance failed[/]")
        return False
    metadata = result.asset_materializations_for_node("online_performance")[0].metadata
    console.print("Online quality of what was served (ranked lists, 1 h attribution):")
    console.print(metadata["by_arm"].value)
    for check in result.get_asset_check_evaluations():
        console.print(
            f"{'[green]✓' if check.passed else '[red]✗'}[/] {check.metadata['reason'].value}"
        )
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
    scenario: str,
    shift_day: int | None,
    warmup_days: int,
    serve: bool = False,
) -> bool:
    """Play a scenario through the self-running loop; print the timeline and the verdicts."""
    from dagster_project.scenario import play, verdicts
    from sands.simulator import Scenario, SimulationConfig

    try:
        chosen = Scenario(scenario)
    except ValueError as error:
        raise typer.BadParameter(f"unknown scenario {scenario!r}") from error
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
    return _report_failures(records)


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
    from dagster_project.loop import HistoryLoadError
    from dagster_project.scenario import replay as replay_days_through_loop
    from sands.replay import ReplaySource, replay_days, warm_start

    paths = SandsPaths.from_env()
    if paths.landing.rstrip("/") == landing.rstrip("/") or (
        "://" not in landing and Path(paths.landing).resolve() == Path(landing).resolve()
    ):
        raise typer.BadParameter("--landing must not be SANDS_HOME's own landing zone")
    source = ReplaySource(landing, paths.storage_options)
    available = source.days()
    try:
        first = date.fromisoformat(start) if start else warm_start(available, warmup_days)
        chosen = replay_days(available, first, days)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    history = [d for d in available if d < chosen[0]][-warmup_days:] if warmup_days else []
    table = _timeline(f"replay of {landing}: what the loop did by itself")
    # The partitions follow the replayed days, wherever they lie in time: no setting needed.
    with _one_line_errors(HistoryLoadError):
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
    if not _report_failures(records):
        raise typer.Exit(1)


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


def _report_failures(records) -> bool:
    troubled = [r.day for r in records if r.failed_runs]
    if troubled:
        console.print(f"[yellow]Runs failed on {', '.join(troubled)}[/] (see the Dagster UI).")
    return not (records and records[-1].failed_runs)


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
def _one_line_errors(*also: type[Exception]) -> Iterator[None]:
    """A bad setting (or one of `also`) ends the command with its one-line message, exit 1."""
    try:
        yield
    except (SettingError, *also) as error:
        console.print(f"error: {error}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def features(
    start: Annotated[str | None, typer.Option(help="First landing day (default: first).")] = None,
    end: Annotated[str | None, typer.Option(help="Last landing day; default: the last.")] = None,
) -> None:
    """dbt build and feature publishing for a window of landing days, as one run."""
    if not _features(SandsPaths.from_env(), start, end):
        raise typer.Exit(1)


def _features(paths: SandsPaths, start: str | None, end: str | None) -> bool:
    from dagster_project.runner import instance_for, run_feature_build

    days = _landing_days(paths)
    if not days and not (start and end):
        console.print("[red]No landing days found: run `sands simulate` first.[/]")
        return False
    first, last = start or days[0], end or days[-1]
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
    failed = _failed_checks(result)
    if failed or not result.success:
        console.print(f"[red]Feature build failed[/]; failed checks: {', '.join(failed) or 'none'}")
        console.print(f"dbt output: {Path(paths.home, 'logs', 'dbt.log')}")
    return result.success


@app.command("training-data")
def training_data() -> None:
    """Refresh the online store and rebuild the point-in-time training set."""
    if not _training_data(SandsPaths.from_env()):
        raise typer.Exit(1)


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
    if not result.success:
        console.print(f"[red]Training data failed[/]: {', '.join(_failed_checks(result)) or ''}")
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
    trees: Annotated[int | None, typer.Option(help="Boosting rounds (default 300).")] = None,
    segments: Annotated[int | None, typer.Option(help="User segments (default 6).")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Tree depth (default 4).")] = None,
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
    if not _train(SandsPaths.from_env(), config):
        raise typer.Exit(1)


@app.command()
def retrain() -> None:
    """On-demand retrain (trigger 1 of 5): monitoring, training, evaluation, gated promotion."""
    if not _train(SandsPaths.from_env(), {}, tags={"sands/trigger": "on demand"}):
        raise typer.Exit(1)


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
    # A gate rejection fails the evaluation step by design; any other step failure is an error.
    errors = [
        event
        for event in result.get_step_failure_events()
        if not (rejected and event.step_key == "evaluation_report")
    ]
    for event in errors:
        error = event.step_failure_data.error
        console.print(f"[red]{event.step_key} failed[/]: {error.message.strip() if error else ''}")
    return not errors and (result.success or rejected)


def _registry():
    from resources import build_resources

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
    guard = [c for c in registry.history() if c.action.startswith("serving_policy_")]
    why = f" since {guard[-1].ts:%Y-%m-%d %H:%M}: {guard[-1].reason}" if guard else ""
    console.print(f"The champion arm serves: [bold]{policy}[/]{why}")


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"


def _actor() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


@app.command()
def promote(
    version: Annotated[int, typer.Argument(help="Registered version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Move the `champion` alias to VERSION by hand (logged in the champion history)."""
    from sands.registry import RegistryError

    registry = _registry()
    try:
        change = registry.promote(version, f"cli:{_actor()}", reason)
    except RegistryError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] ({reason})")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why, for the champion history.")] = "manual",
) -> None:
    """Give the `champion` alias back to the previous champion (logged)."""
    from sands.registry import RegistryError

    registry = _registry()
    try:
        change = registry.rollback(f"cli:{_actor()}", reason)
    except RegistryError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"champion: {_v(change.previous)} -> [bold]v{change.version}[/] (rollback)")


@app.command()
def mlflow(port: Annotated[int, typer.Option()] = 5000) -> None:
    """Start the MLflow UI on the embedded tracking store and artifacts."""
    paths = SandsPaths.from_env()
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

    paths = SandsPaths.from_env()
    table = Table(
        "table",
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
def ui(port: Annotated[int, typer.Option()] = 3000) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this code location."""
    paths = SandsPaths.from_env()
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
    console.print(
        f"Serving on http://{host}:{port} with {workers} worker(s) ({paths.home})", soft_wrap=True
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
        console.print(f"error: {error}", style="red", markup=False, highlight=False, soft_wrap=True)
        code = 1
    except BaseException:
        console.print_exception()
        code = 1
    # Python's own exit handlers still run (multiprocessing cleans up its semaphores); only the
    # C-level teardown where the abort happens is skipped.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
