"""`sands` commands on data: simulate drops, ingest them, build features and the training set,
show the lake, and write the data contract's docs."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Column, Table

from dagster_project.cli.common import (
    Refusal,
    RepeatedNotes,
    _day,
    _error,
    _materializations,
    _note,
    _paths,
    _progress,
    _quietly,
    _runs_checked,
    _within_days,
    console,
)
from sands.settings import SandsPaths


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
    from sands.sim.marketplace import Marketplace, Scenario, SimulationConfig

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


def _write_drops(paths: SandsPaths, drops, days: int, file_format: str = "parquet") -> None:
    """Write `days` drops into the landing zone with progress, then a table of what was written."""
    from sands.sim.marketplace import write_drop

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
    from sands.ingest.contract import INTERACTIONS
    from sands.ingest.landing import filesystem, list_files

    fs, root = filesystem(paths.landing, paths.storage_options)
    return sorted({f.day.isoformat() for f in list_files(fs, root, INTERACTIONS) if f.day})


def ingest(
    day: Annotated[
        list[str] | None, typer.Option(help="Landing day(s) to ingest; default: every day present.")
    ] = None,
) -> None:
    """Validate landing drops into the bronze Delta tables (runs go to the Dagster instance)."""
    paths = _paths()
    chosen = _landing_day_options(paths, day or [])
    with _runs_checked(paths):
        if not _ingest(paths, chosen or None):
            raise typer.Exit(1)


def _landing_span(days: list[str]) -> str:
    if not days:
        return "the landing zone has no days yet (`sands simulate` writes some)"
    return f"its days are {days[0]}..{days[-1]}"


def _landing_day_options(paths: SandsPaths, values: list[str]) -> list[str]:
    """The --day values, each a YYYY-MM-DD day with landing files (exit 2 otherwise)."""
    chosen = [_day(value, "--day").isoformat() for value in values]
    present = _landing_days(paths) if chosen else []
    for day in chosen:
        _require_listed(paths, day)
        if day not in present:
            raise typer.BadParameter(
                f"--day {day} has no landing files in {paths.landing}: {_landing_span(present)}"
            )
    return chosen


def _require_listed(paths: SandsPaths, day: str) -> None:
    """Exit 1 with one line when the day's folder (or its feed's) cannot be listed."""
    from sands.ingest.landing import unlisted_notes

    for line in unlisted_notes(paths.landing, paths.storage_options):
        if line.startswith((f"interactions/{day}:", "interactions:")):
            _error(line)
            raise typer.Exit(1)


def _ingest(paths: SandsPaths, days: list[str] | None) -> bool:
    from dagster import AssetCheckSeverity

    from dagster_project.runner import (
        ingestion_notes,
        instance_for,
        rejected_files,
        run_ingestion,
    )
    from sands.ingest.landing import skipped_notes, unlisted_notes
    from sands.ingest.partitions import home_partition_range

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
            # A feed is failed by its own checks, not by a sibling's in the same run.
            checked = {
                e.asset_key
                for e in result.get_asset_check_evaluations()
                if not e.passed and e.severity == AssetCheckSeverity.ERROR
            }
            for event in result.get_asset_materialization_events():
                m = event.materialization
                meta = {k: v.value for k, v in m.metadata.items()}
                files = len(meta.get("rejected_files") or [])
                status = "[red]failed[/]" if m.asset_key in checked else "[green]ok[/]"
                if files and m.asset_key not in checked:
                    status = f"[red]{files} file{'s' if files > 1 else ''} unread[/]"
                summary.add_row(
                    m.asset_key.to_user_string() if m.partition is None else label,
                    status,
                    f"{meta.get('rows_read', 0):,}",
                    f"{meta.get('rows_accepted', 0):,}",
                    f"{meta.get('rows_rejected', 0):,}",
                    str(meta.get("delta_version", "")),
                )
            if not result.success and not checked:
                # Failed before or beside what it wrote: a row of its own (a failed check
                # already marks its feed's row).
                summary.add_row(label, "[red]failed[/]", "", "", "", "")
            notes.extend(ingestion_notes(result))
            # A file quarantined whole is data not ingested: named, and the command fails.
            unread.extend(rejected_files(result))
            progress.advance(task)

        notes: list[str] = []
        unread: list[str] = []
        run_ingestion(chosen, instance, done)
    console.print(summary)
    told = RepeatedNotes()
    for line in notes + skipped_notes(paths.landing, paths.storage_options):
        if line not in unread:
            told(line)
    told.close()
    # Files nobody could read or list are files not ingested: said, and the command fails.
    unlisted = unlisted_notes(paths.landing, paths.storage_options)
    for line in unread + unlisted:
        _error(line)
    return ok and not unread and not unlisted


def features(
    start: Annotated[str | None, typer.Option(help="First landing day (default: first).")] = None,
    end: Annotated[str | None, typer.Option(help="Last landing day; default: the last.")] = None,
) -> None:
    """dbt build and feature publishing for a window of landing days, as one run."""
    paths = _paths()
    first, last = _feature_window(paths, start, end)
    _require_bronze_interactions(paths)
    with _runs_checked(paths):
        if not _features(paths, first, last):
            raise typer.Exit(1)


def _require_bronze_interactions(paths: SandsPaths) -> None:
    """One line before any run when nothing was ingested (dbt would fail deep in its sources)."""
    from sands.ingest.bronze import bronze_uri
    from sands.ingest.contract import INTERACTIONS
    from sands.lake.delta import open_table

    uri = bronze_uri(paths.lake, INTERACTIONS)
    if open_table(uri, paths.storage_options) is None:
        raise Refusal(
            f"no bronze interactions at {uri}: `sands ingest` lands the landing zone first"
        )


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
    from dagster_project.runner import instance_for, run_feature_build, warned_dbt_tests

    instance = instance_for(paths)
    result = _quietly(
        paths,
        f"dbt build + feature publishing {first}..{last}",
        lambda: run_feature_build(first, last, instance),
    )
    table = Table("feature table", "Delta version", "snapshot rows", "appended", "restated")
    snapshot_rows = 0
    for name, meta in _materializations(result).items():
        if "schema_hash" in meta:
            snapshot_rows += meta["dagster/row_count"]
            table.add_row(
                name,
                str(meta["delta_version"]),
                f"{meta['dagster/row_count']:,}",
                f"{meta['rows_appended']:,}",
                f"{meta['rows_restated']:,}",
            )
    console.print(table)
    if result.success and snapshot_rows == 0:
        # Feature dates are landing days with events: a window without any builds nothing.
        _note(f"no feature rows for {first}..{last}: no events landed on those days")
    for line in warned_dbt_tests(result):
        _note(line)
    if not result.success:
        console.print(f"dbt's output: {Path(paths.home, 'logs', 'dbt.log')}")
    return result.success


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


def status() -> None:
    """Show the lake's tables: Delta version, rows, quarantined rows and rejected files."""
    from sands.features.offline import FEATURE_TABLES
    from sands.features.training_store import TRAINING_EXAMPLES
    from sands.ingest import quarantine
    from sands.ingest.bronze import bronze_uri, quarantine_uri
    from sands.ingest.contract import ENTITIES
    from sands.lake.delta import open_table
    from sands.serving.prediction_log import impressions_uri

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


def contract_docs(
    output: Annotated[Path, typer.Option(help="Where to write the markdown.")] = Path(
        "docs/data-contract.md"
    ),
) -> None:
    """Regenerate docs/data-contract.md from the pandera schemas."""
    from sands.ingest.contract_docs import render_contract

    output.write_text(render_contract())
    console.print(f"Wrote {output}")
