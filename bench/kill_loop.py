"""kill -9 at random points of ingestion and feature publishing, each kill followed by a rerun.

Each round lands one simulated day (1 % bad rows; the first day also carries a corrupt Parquet
file and a damaged JSON line). A worker process ingests the reference feeds and the day, then
publishes the day's user features through `sands.features.offline.publish_snapshots` (the asset's
Delta write path; the snapshot is a small aggregate of bronze rather than a dbt build, which
takes too long to kill twenty times). Rounds take the three stages in turn: once the worker
reports the round's stage, it is killed with SIGKILL after a random delay within that stage's
duration in a clean run; then the round is rerun to completion. At the end every table must be
readable, hold no event id twice, have no staging files left, and hold the same rows as a clean
run of the same days.

Workers fork from a forkserver that imported everything once, so a kill costs no import time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from rich.console import Console
from rich.table import Table

from sands.features.offline import USER_FEATURES, publish_snapshots
from sands.ingest.bronze import (
    bronze_uri,
    history_uri,
    ingest_day,
    ingest_reference,
    quarantine_uri,
)
from sands.ingest.contract import ARTWORKS, INTERACTIONS, LANDING_DAY_COLUMN, USERS
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop

# What workers import once, in the forkserver. Installed modules by name: Python 3.11's
# forkserver ignores sys.path, so this module itself only preloads when run from the repository
# root. pandera imports its hypothesis strategies on first use when hypothesis is installed.
PRELOAD = [
    "sands.ingest.bronze",
    "sands.features.offline",
    "pandera.strategies.pandas_strategies",
    __name__,
]
STAGES = ("reference feeds", "landing day", "feature publish", "done")
_STAGING = re.compile(r"(#\d+|\.tmp)$")


def tables(lake: str) -> dict[str, str]:
    """Every Delta table the job writes, by a short name."""
    found = {f"features/{USER_FEATURES.name}": USER_FEATURES.uri(lake)}
    for entity in (INTERACTIONS, USERS, ARTWORKS):
        found[f"bronze/{entity.name}"] = bronze_uri(lake, entity)
        found[f"quarantine/{entity.name}"] = quarantine_uri(lake, entity)
    for entity in (USERS, ARTWORKS):
        found[f"bronze/{entity.name}_history"] = history_uri(lake, entity)
    return found


def land(landing: str, days: int, events_per_day: int, seed: int) -> list[date]:
    """Simulate `days` landing days (with some hostile input on the first); their dates."""
    config = SimulationConfig(
        seed=seed,
        days=days,
        events_per_day=events_per_day,
        initial_users=max(events_per_day // 10, 50),
        initial_artworks=max(events_per_day // 20, 30),
        bad_rows=0.01,
    )
    dates = []
    for drop in Marketplace(config).days():
        write_drop(drop, landing)
        dates.append(drop.day)
    folder = Path(landing, "interactions", dates[0].isoformat())
    (folder / "corrupt.parquet").write_bytes(b"PAR1" + os.urandom(64))
    (folder / "damaged.jsonl").write_text('{"event_id": "x1", "user_id": "u"\n[1, 2]\n')
    return dates


def day_features(lake: str, day: date) -> pa.Table:
    """Per-user event counts of one landing day, shaped as a feature snapshot."""
    events = DeltaTable(bronze_uri(lake, INTERACTIONS)).to_pyarrow_dataset()
    rows = events.to_table(
        columns=["user_id"], filter=pc.field(LANDING_DAY_COLUMN) == pa.scalar(day)
    )
    counts = rows.group_by("user_id").aggregate([("user_id", "count")])
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return pa.table(
        {
            "user_id": counts.column("user_id"),
            "feature_date": pa.array([day] * counts.num_rows, pa.date32()),
            "feature_ts": pa.array([end] * counts.num_rows, pa.timestamp("us", tz="UTC")),
            "events_1d": counts.column("user_id_count"),
        }
    )


def _quiet(stage: str) -> None:
    """Stages go nowhere."""


def job(landing: str, lake: str, day: date, mark: Callable[[str], None] = _quiet) -> None:
    """One round: reference feeds, the landing day, its feature publish (what a rerun repeats);
    `mark` is told each stage as it starts, and "done"."""
    mark(STAGES[0])
    for entity in (USERS, ARTWORKS):
        ingest_reference(entity, landing, lake)
    mark(STAGES[1])
    ingest_day(landing, lake, day)
    mark(STAGES[2])
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    publish_snapshots(USER_FEATURES.uri(lake), day_features(lake, day), "user_id", end)
    mark(STAGES[3])


def _worker(landing: str, lake: str, day: str, stages: Connection) -> None:
    job(landing, lake, date.fromisoformat(day), stages.send)


@dataclass
class Snapshot:
    """What the lake holds: rows per table, unreadable tables, duplicates, staging files."""

    rows: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    duplicate_event_ids: int = 0
    duplicate_feature_rows: int = 0
    staging_files: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def inspect(lake: str) -> Snapshot:
    """Read every table back in full and look for duplicates and leftover staging files."""
    found = Snapshot()
    for name, uri in tables(lake).items():
        try:
            data = DeltaTable(uri).to_pyarrow_table()
        except Exception as exc:  # any failure to read is the finding
            found.unreadable.append(f"{name}: {type(exc).__name__}")
            continue
        found.rows[name] = data.num_rows
        if name == "bronze/interactions":
            ids = data.column("event_id")
            found.duplicate_event_ids = len(ids) - len(pc.unique(ids))
            found.event_ids = sorted(ids.to_pylist())
        if name.startswith("features/"):
            keys = data.group_by(["user_id", "feature_date"]).aggregate([])
            found.duplicate_feature_rows = data.num_rows - keys.num_rows
    found.staging_files = staging_files(lake)
    return found


def staging_files(lake: str) -> list[str]:
    """Files a killed writer left mid-write: object_store staging files and dot temporaries."""
    return [str(p) for p in Path(lake).rglob("*") if _STAGING.search(p.name)]


@dataclass
class LoopResult:
    """How the kills landed and what the lake looked like after them, next to a clean run."""

    kills: int
    killed_in: Counter
    clean: Snapshot
    after: Snapshot
    clean_seconds: float
    loop_seconds: float
    left_by_kills: int = 0  # staging files found right after the kills, before their reruns

    @property
    def same_as_clean(self) -> bool:
        return self.after.rows == self.clean.rows and self.after.event_ids == self.clean.event_ids

    @property
    def ok(self) -> bool:
        after = self.after
        clean_state = not (after.unreadable or after.staging_files)
        unique = after.duplicate_event_ids == 0 and after.duplicate_feature_rows == 0
        failed = any(stage.startswith("worker failed") for stage in self.killed_in)
        return clean_state and unique and self.same_as_clean and not failed


def _stages_until(stages: Connection, target: str) -> list[str]:
    """Stages the worker reports, up to `target` (or until it stops reporting)."""
    seen: list[str] = []
    while not seen or seen[-1] not in (target, STAGES[-1]):
        try:
            seen.append(stages.recv())
        except EOFError:
            break
    return seen


def _kill_round(
    context: BaseContext, landing: str, lake: str, day: date, target: str, delay: float
) -> str:
    """Start a worker on `day`; once it reports `target`, SIGKILL it after `delay` seconds.
    Returns the stage it was in when killed."""
    stages, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_worker, args=(landing, lake, day.isoformat(), sender))
    worker.start()
    sender.close()  # the worker holds the only sender: its death ends the stream
    seen = _stages_until(stages, target)
    worker.join(timeout=delay)
    if worker.exitcode is None:
        worker.kill()
        worker.join()
    seen += _stages_until(stages, STAGES[-1])
    if worker.exitcode == 0:
        return "finished before the kill"
    if worker.exitcode != -signal.SIGKILL:
        return f"worker failed (exit {worker.exitcode})"
    return seen[-1] if seen else "starting"


def _clean_run(landing: str, lake: str, days: list[date]) -> dict[date, dict[str, float]]:
    """Run every day once, undisturbed; how long each stage took."""
    durations: dict[date, dict[str, float]] = {}
    for day in days:
        marks: list[tuple[str, float]] = []

        def mark(stage: str, marks: list = marks) -> None:
            marks.append((stage, time.perf_counter()))

        job(landing, lake, day, mark)
        durations[day] = {s: t1 - t0 for (s, t0), (_, t1) in pairwise(marks)}
    return durations


def run(root: Path, kills: int, events_per_day: int, seed: int, days: int = 0) -> LoopResult:
    """Land `days` days (default: one per kill), run them once cleanly, then in another lake kill
    and rerun one round per kill, cycling over the days."""
    landing, clean_lake, lake = (str(root / n) for n in ("landing", "clean", "lake"))
    dates = land(landing, days or kills, events_per_day, seed)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()  # it imports everything while the clean run goes on
    started = time.perf_counter()
    durations = _clean_run(landing, clean_lake, dates)
    clean_seconds = time.perf_counter() - started
    rng = random.Random(seed)
    killed_in: Counter = Counter()
    left_by_kills = 0
    started = time.perf_counter()
    for index in range(kills):
        day = dates[index % len(dates)]
        target = STAGES[index % (len(STAGES) - 1)]  # each stage in turn, at a random point
        delay = rng.uniform(0.0, durations[day][target])
        killed_in[_kill_round(context, landing, lake, day, target, delay)] += 1
        left_by_kills += len(staging_files(lake))
        job(landing, lake, day)  # the rerun
    return LoopResult(
        kills=kills,
        killed_in=killed_in,
        clean=inspect(clean_lake),
        after=inspect(lake),
        clean_seconds=clean_seconds,
        loop_seconds=time.perf_counter() - started,
        left_by_kills=left_by_kills,
    )


def report(result: LoopResult) -> Table:
    """The tables' rows after the loop next to the clean run's, and where the kills landed."""
    table = Table("table", "rows, clean run", "rows after kills + reruns", "equal")
    for name, rows in result.clean.rows.items():
        after = result.after.rows.get(name)
        shown = f"{after:,}" if after is not None else "-"
        table.add_row(name, f"{rows:,}", shown, str(rows == after))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--days", type=int, default=0, help="Landing days; default: one a kill.")
    parser.add_argument("--events-per-day", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv or [])
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), args.kills, args.events_per_day, args.seed, args.days)
    console.print(report(result))
    after = result.after
    console.print(f"kills: {result.kills}, by stage reached: {dict(result.killed_in)}")
    console.print(
        f"unreadable tables: {after.unreadable or 'none'}; duplicate event ids: "
        f"{after.duplicate_event_ids}; duplicate feature rows: {after.duplicate_feature_rows}; "
        f"staging files found after the kills: {result.left_by_kills}, left at the end: "
        f"{len(after.staging_files)}"
    )
    console.print(
        f"clean run {result.clean_seconds:.1f} s; kill loop (kills + reruns) "
        f"{result.loop_seconds:.1f} s; {'PASS' if result.ok else 'FAIL'}"
    )
    if not result.ok:
        raise SystemExit(1)
