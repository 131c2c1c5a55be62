"""Feature build over a 90-day history at one million events per day: full rebuild vs one day.

Bronze Delta tables are written straight from the simulator (landing-file validation is the
ingestion benchmark's business) and cached with --keep. The full rebuild is `dbt build` over the
first N days into a fresh DuckDB warehouse (in --chunk-days windows one after the other, as
Dagster's single-run backfill slices its dbt calls), then `publish_snapshots` of both tables to
Delta; the incremental run appends day N+1 to bronze and does the same for that one day. The peer
is the full rebuild itself: the incremental day should cost a small fraction of it. dbt is
stopped if free disk falls below --min-free-gb (DuckDB spills), and what it had done is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from sands.features.dbt_vars import build_window_env
from sands.features.offline import FEATURE_TABLES, publish_snapshots
from sands.features.warehouse import model_rows
from sands.ingest.bronze import bronze_uri, history_uri
from sands.ingest.contract import ARTWORKS, INTERACTIONS, LANDING_DAY_COLUMN, USERS, Entity
from sands.lake import delta
from sands.sim.marketplace import DayDrop, Marketplace, SimulationConfig

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT = REPO / "dbt"
# The dbt beside this interpreter, as resources/dbt.py finds it (no PATH activation needed).
DBT = Path(sys.executable).with_name("dbt")
T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _as_contract(rows: pa.Table, entity: Entity) -> pa.Table:
    """Rows in exactly the contract's Delta schema (simulator columns, contract nullability)."""
    schema = entity.arrow_schema()
    return pa.Table.from_arrays([rows.column(f.name).cast(f.type) for f in schema], schema=schema)


@dataclass(frozen=True)
class Day:
    """What one landing day adds to bronze: its events (late ones included) and reference rows."""

    day: date
    events: pa.Table
    users: pa.Table
    artworks: pa.Table

    @classmethod
    def from_drop(cls, drop: DayDrop) -> Day:
        events = pa.concat_tables([drop.late_interactions, drop.interactions])
        return cls(drop.day, events, drop.users, drop.artworks)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("events", "users", "artworks"):
            pq.write_table(getattr(self, name), folder / f"{name}.parquet")
        (folder / "day.txt").write_text(self.day.isoformat())

    @classmethod
    def load(cls, folder: Path) -> Day:
        day = date.fromisoformat((folder / "day.txt").read_text())
        names = ("events", "users", "artworks")
        return cls(day, *(pq.read_table(folder / f"{n}.parquet") for n in names))


def write_interactions(lake_root: str, day: Day) -> None:
    """One landing day's events as that day's bronze partition (replaced, as ingestion does)."""
    landed = day.events.append_column(
        LANDING_DAY_COLUMN, pa.array([day.day] * day.events.num_rows, pa.date32())
    )
    delta.replace_partition(
        bronze_uri(lake_root, INTERACTIONS),
        _as_contract(landed, INTERACTIONS),
        LANDING_DAY_COLUMN,
        day.day,
    )


def upsert_reference(lake_root: str, users: list[pa.Table], artworks: list[pa.Table]) -> None:
    """What reference ingestion writes: the latest row per id, and every version in history."""
    for entity, parts in ((USERS, users), (ARTWORKS, artworks)):
        rows = _as_contract(pa.concat_tables(parts), entity)
        version = entity.version_column or ""
        delta.upsert(bronze_uri(lake_root, entity), rows, entity.key, version)
        delta.insert_new(history_uri(lake_root, entity), rows, [entity.key, version])


@dataclass
class Bronze:
    """The generated history (in `lake`), the held-back next day, and how long making it took."""

    lake: Path
    history: list[date]
    history_events: int
    next_day: Day
    seconds: float


def bronze(cache: Path, config: SimulationConfig, console: Console) -> Bronze:
    """Simulate `config.days` days into `cache`: all but the last go to bronze, the last is held
    back. A cache made with the same config is reused, since simulating is not what is measured.
    """
    marker = cache / "bronze.json"
    wanted = repr(config)
    if marker.exists() and json.loads(marker.read_text())["config"] == wanted:
        saved = json.loads(marker.read_text())
        console.log(f"bronze: reusing {cache}")
        return Bronze(
            cache / "lake",
            [date.fromisoformat(d) for d in saved["history"]],
            saved["events"],
            Day.load(cache / "next-day"),
            saved["seconds"],
        )
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    drops = Marketplace(config).days()
    users: list[pa.Table] = []
    artworks: list[pa.Table] = []
    history, events = [], 0
    for _ in range(config.days - 1):
        day = Day.from_drop(next(drops))
        write_interactions(str(cache / "lake"), day)
        users.append(day.users)
        artworks.append(day.artworks)
        history.append(day.day)
        events += day.events.num_rows
        if len(history) % 10 == 0:
            console.log(f"bronze: {len(history)} days, {events:,} events")
    upsert_reference(str(cache / "lake"), users, artworks)
    Day.from_drop(next(drops)).save(cache / "next-day")
    seconds = time.perf_counter() - start
    marker.write_text(
        json.dumps(
            {
                "config": wanted,
                "history": [d.isoformat() for d in history],
                "events": events,
                "seconds": seconds,
            }
        )
    )
    return Bronze(cache / "lake", history, events, Day.load(cache / "next-day"), seconds)


@dataclass
class Warehouse:
    """Where dbt builds, the environment its profile and sources read, and a disk-space floor."""

    lake: str
    path: str
    target: Path
    logs: Path
    min_free_bytes: int
    executable: Path = DBT
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SANDS_LAKE_URI": self.lake,
            "SANDS_WAREHOUSE_PATH": self.path,
            "DO_NOT_TRACK": "1",
            **self.extra_env,
        }


@dataclass
class DbtRun:
    """dbt invocations: wall time, per-node execution times (run_results.json) and the most disk
    the run took beyond what was in use when it started (DuckDB spills to `<warehouse>.tmp`)."""

    seconds: float = 0.0
    nodes: dict[str, float] = field(default_factory=dict)
    peak_disk_bytes: int = 0
    invocations: int = 0

    def add(self, other: DbtRun) -> None:
        self.seconds += other.seconds
        for node, seconds in other.nodes.items():
            self.nodes[node] = self.nodes.get(node, 0.0) + seconds
        self.peak_disk_bytes = max(self.peak_disk_bytes, other.peak_disk_bytes)
        self.invocations += other.invocations


class DiskFull(RuntimeError):
    """dbt was stopped before it could fill the disk."""


def dbt(command: str, warehouse: Warehouse, first: date, last: date) -> DbtRun:
    """Run `dbt <command>` for the landing-day window [first, last], as the transform asset does.

    The run is stopped if free disk space falls below the floor: at full size DuckDB's spill
    files can fill a shared machine's disk, which would break everything else running on it.
    """
    args = [
        str(warehouse.executable),
        command,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        # Artifacts and logs in the temp dir, so the repo's dbt/target is never touched.
        "--target-path",
        str(warehouse.target),
        "--log-path",
        str(warehouse.logs),
    ]
    warehouse.logs.mkdir(parents=True, exist_ok=True)
    output = warehouse.logs / f"dbt-{command}-{first}-{last}.out"
    start_free = lowest_free = shutil.disk_usage(warehouse.logs).free
    start = time.perf_counter()
    with open(output, "w") as out:
        process = subprocess.Popen(
            args,
            env=warehouse.env() | build_window_env(first, last),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        while process.poll() is None:
            lowest_free = min(lowest_free, shutil.disk_usage(warehouse.logs).free)
            if lowest_free < warehouse.min_free_bytes:
                process.terminate()
                process.wait()
                # A killed DuckDB leaves its spill files behind; they are what filled the disk.
                shutil.rmtree(f"{warehouse.path}.tmp", ignore_errors=True)
                raise DiskFull(
                    f"dbt {command} {first}..{last} stopped after "
                    f"{time.perf_counter() - start:.0f}s: free disk fell below "
                    f"{warehouse.min_free_bytes / 1e9:.0f} GB (see {warehouse.logs}/dbt.log)"
                )
            time.sleep(0.5)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"dbt {command} failed:\n{output.read_text()[-4000:]}")
    results = json.loads((warehouse.target / "run_results.json").read_text())["results"]
    nodes = {r["unique_id"]: float(r["execution_time"]) for r in results}
    return DbtRun(seconds, nodes, start_free - lowest_free, 1)


@dataclass
class Build:
    """Timings of one feature build (full or incremental)."""

    dbt: DbtRun
    read_s: dict[str, float] = field(default_factory=dict)
    publish_s: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def node_seconds(self, kind: str) -> float:
        return sum(s for node, s in self.dbt.nodes.items() if node.startswith(kind + "."))

    @property
    def total(self) -> float:
        return self.dbt.seconds + sum(self.read_s.values()) + sum(self.publish_s.values())


def windows(days: list[date], chunk: int) -> list[tuple[date, date]]:
    """[first, last] landing-day windows of at most `chunk` days (0: one window)."""
    size = chunk or len(days)
    return [(part[0], part[-1]) for part in (days[i : i + size] for i in range(0, len(days), size))]


def build(warehouse: Warehouse, lake_root: str, days: list[date], chunk: int = 0) -> Build:
    """`dbt build` (models, then their tests) over the days, then publish both feature tables.

    `dbt build`, as the transform asset runs it: a separate `dbt test` cannot even run here,
    because the Delta sources are views over Arrow datasets that only the dbt process that
    registered them can see. With `chunk`, dbt runs window after window (the models are
    incremental per day, so the result is the same); publishing is one call either way.
    """
    result = Build(DbtRun())
    for first, last in windows(days, chunk):
        result.dbt.add(dbt("build", warehouse, first, last))
    for table in FEATURE_TABLES:
        snapshot, result.read_s[table.name] = _timed(
            lambda table=table: model_rows(warehouse.path, table.model, days[0], days[-1])
        )
        outcome, result.publish_s[table.name] = _timed(
            lambda table=table, snapshot=snapshot: publish_snapshots(
                table.uri(lake_root), snapshot, table.key, datetime.now(UTC)
            )
        )
        result.rows[table.name] = outcome.rows_appended
    return result


@contextmanager
def workdir(keep: str | None) -> Iterator[Path]:
    """A temp dir, or `keep` (created, never deleted) so the bronze cache outlives the run."""
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else ""


def figures(full: Build, incremental: Build, full_events: int, day_events: int) -> Table:
    """Stage by stage: the full rebuild, the one-day increment and their ratio."""
    table = Table(
        "stage",
        "full rebuild s",
        "incremental (1 day) s",
        "incremental / full",
    )

    def row(stage: str, full_s: float, incremental_s: float) -> None:
        table.add_row(stage, f"{full_s:.1f}", f"{incremental_s:.1f}", _ratio(incremental_s, full_s))

    row(
        f"dbt build (wall, {full.dbt.invocations} + {incremental.dbt.invocations} invocations)",
        full.dbt.seconds,
        incremental.dbt.seconds,
    )
    row("  of which models", full.node_seconds("model"), incremental.node_seconds("model"))
    row("  of which tests", full.node_seconds("test"), incremental.node_seconds("test"))
    for name in full.read_s:
        row(f"read {name} snapshots (model_rows)", full.read_s[name], incremental.read_s[name])
        row(f"publish_snapshots {name}", full.publish_s[name], incremental.publish_s[name])
    table.add_row(
        "rows appended (user + artwork)",
        f"{sum(full.rows.values()):,}",
        f"{sum(incremental.rows.values()):,}",
        "",
    )
    row("total", full.total, incremental.total)
    table.add_row(
        "most disk one dbt invocation took (spill + growth), GB",
        f"{full.dbt.peak_disk_bytes / 1e9:.1f}",
        f"{incremental.dbt.peak_disk_bytes / 1e9:.1f}",
        "",
    )
    table.add_row(
        "events/s (total)",
        f"{full_events / full.total:,.0f}",
        f"{day_events / incremental.total:,.0f}",
        "",
    )
    return table


def node_table(full: Build, incremental: Build, top_tests: int = 5) -> Table:
    """Where the dbt time goes: every model, and the slowest tests (run_results.json)."""
    table = Table("dbt node", "full s", "incremental s", "share of full dbt build")

    def row(name: str, full_s: float, incremental_s: float) -> None:
        table.add_row(
            name, f"{full_s:.1f}", f"{incremental_s:.1f}", _ratio(full_s, full.dbt.seconds)
        )

    nodes = sorted(full.dbt.nodes.items(), key=lambda kv: -kv[1])
    tests = [(n, s) for n, s in nodes if n.startswith("test.")]
    for node, seconds in nodes:
        if node.startswith("model."):
            row(node.split(".")[-1], seconds, incremental.dbt.nodes.get(node, 0.0))
    for node, seconds in tests[:top_tests]:
        row("test: " + node.split(".")[2], seconds, incremental.dbt.nodes.get(node, 0.0))
    rest = tests[top_tests:]
    row(
        f"the other {len(rest)} tests",
        sum(s for _, s in rest),
        sum(incremental.dbt.nodes.get(n, 0.0) for n, _ in rest),
    )
    return table


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DONE = re.compile(
    r"\d+ of \d+ (OK|PASS|ERROR|FAIL \d+|WARN \d+) (?:created \S+ \S+ model main\.|"
    r"creating \S+ \S+ model main\.)?(\S+).* in ([\d.]+)s\]"
)
_STARTED = re.compile(r"^(\S+) .*\d+ of \d+ START (?:\S+ \S+ model main\.|test )(\S+)")


def progress(log: Path) -> Table:
    """What a stopped dbt run had finished, and what it was running, from its dbt.log."""
    table = Table("dbt node (stopped run)", "status", "seconds")
    running = None
    # dbt appends to dbt.log: only the last invocation's lines matter.
    last = _ANSI.sub("", log.read_text()).split("Running with dbt=")[-1]
    for line in last.splitlines():
        if done := _DONE.search(line):
            table.add_row(done.group(2), done.group(1), done.group(3))
            running = None
        elif started := _STARTED.search(line):
            running = f"{started.group(2)} (started {started.group(1)}, never finished)"
    if running:
        table.add_row(running, "", "")
    return table


def run(
    days: int,
    events_per_day: int,
    initial_users: int,
    initial_artworks: int,
    chunk_days: int,
    min_free_gb: float,
    keep: str | None,
    console: Console,
) -> list[Table]:
    """Generate bronze, time the full rebuild and the next day's increment; return the figures."""
    config = SimulationConfig(
        days=days + 1,
        events_per_day=events_per_day,
        initial_users=initial_users,
        initial_artworks=initial_artworks,
    )
    with workdir(keep) as work:
        history = bronze(work / "bronze-cache", config, console)
        console.log(
            f"bronze: {history.history_events:,} events over {days} days "
            f"(made in {history.seconds:.0f}s)"
        )
        # Every run starts from the pristine history: a fresh lake copy and a fresh warehouse.
        run_dir = work / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(history.lake, run_dir / "lake")
        lake_root = str(run_dir / "lake")
        warehouse = Warehouse(
            lake_root,
            str(run_dir / "warehouse.duckdb"),
            run_dir / "dbt-target",
            run_dir / "dbt-logs",
            int(min_free_gb * 1e9),
        )
        try:
            full = build(warehouse, lake_root, history.history, chunk_days)
        except DiskFull as stopped:
            console.print(f"[bold red]{stopped}")
            return [progress(warehouse.logs / "dbt.log")]
        console.log(f"full rebuild: {full.total:.1f}s")
        day = history.next_day
        _, appended_s = _timed(
            lambda: (
                write_interactions(lake_root, day),
                upsert_reference(lake_root, [day.users], [day.artworks]),
            )
        )
        console.log(f"{day.day} appended to bronze in {appended_s:.1f}s (not counted)")
        incremental = build(warehouse, lake_root, [day.day])
        console.log(f"incremental: {incremental.total:.1f}s")
    return [
        figures(full, incremental, history.history_events, day.events.num_rows),
        node_table(full, incremental),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90, help="history for the full rebuild")
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--initial-users", type=int, default=50_000)
    parser.add_argument("--initial-artworks", type=int, default=20_000)
    parser.add_argument(
        "--chunk-days",
        type=int,
        # One 90-day window spills over 65 GB in user_affinity at 1M events/day; 15-day windows
        # build the same tables within a few GB.
        default=15,
        help="rebuild in dbt windows of this many days (0: one window, as a single-run backfill)",
    )
    parser.add_argument(
        "--min-free-gb", type=float, default=10.0, help="stop dbt if free disk falls below this"
    )
    parser.add_argument("--keep", help="work in this directory and leave it (bronze cache, run)")
    args = parser.parse_args(argv or [])
    console = Console()
    tables = run(
        args.days,
        args.events_per_day,
        args.initial_users,
        args.initial_artworks,
        args.chunk_days,
        args.min_free_gb,
        args.keep,
        console,
    )
    chunks = f", dbt in {args.chunk_days}-day windows" if args.chunk_days else ""
    console.print(
        f"{args.days} days x {args.events_per_day:,} events/day, "
        f"{args.initial_users:,} users, {args.initial_artworks:,} artworks{chunks}"
    )
    for table in tables:
        console.print(table)
