"""DuckDB + delta-rs against Spark + delta-spark on the same 90-day history, stage by stage.

The same bronze tables (simulated, cached with --keep) go through each engine's path:
- transform: `dbt build` of the one dbt project in 15-day windows, as the transform asset runs it
  (DuckDB: `dbt`; Spark: `sands-dbt-spark`, dbt-spark inside a local Spark session);
- publish: read the two snapshot models (DuckDB file / Spark's Delta tables) and append them to the
  feature logs with `publish_snapshots`;
- training set: the point-in-time join of the same labels to the feature logs;
- ranker: XGBoost in process against XGBoost's Spark estimator, on the same training set.
Outputs must agree before a time is reported: rows and content hash of every dbt model, feature
log and the training set. Several sizes (--events-per-day) show how each engine scales here.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench.feature_build import Warehouse, bronze, dbt, windows, workdir
from resources.dbt import dbt_entry_point
from resources.warehouse import WarehouseResource
from sands.engines.parity import content_hash
from sands.engines.spark import SparkSettings, spark_session
from sands.engines.spark_training import delta_frame
from sands.engines.spark_training import train_ranker as train_spark_ranker
from sands.engines.spark_training import training_examples as spark_training_examples
from sands.features.offline import FEATURE_TABLES, publish_snapshots
from sands.features.training_set import LabelSpec, training_examples, training_labels
from sands.features.training_store import feature_rows_since, label_events
from sands.features.warehouse import MODEL_TABLES
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import ARTWORKS, INTERACTIONS
from sands.lake import delta
from sands.models.ranking import RankerParams, train_ranker
from sands.sim.marketplace import SimulationConfig

ENGINES = ("duckdb", "spark")
EVERYTHING = (date(1970, 1, 1), date(2999, 12, 31))
TTL = timedelta(hours=48)
T = TypeVar("T")


@dataclass
class EngineRun:
    """One engine's seconds per stage and the fingerprints of what it produced."""

    engine: str
    seconds: dict[str, float] = field(default_factory=dict)
    hashes: dict[str, tuple[int, str]] = field(default_factory=dict)


def _timed(run: EngineRun, stage: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    value = fn()
    run.seconds[stage] = time.perf_counter() - start
    return value


def _fingerprint(table: pa.Table) -> tuple[int, str]:
    return table.num_rows, content_hash(table)


def transform(run: EngineRun, root: Path, history: list[date], chunk: int) -> WarehouseResource:
    """`dbt build` over the history on the run's engine; the warehouse it built."""
    engine = run.engine
    resource = WarehouseResource(
        path=str(root / "warehouse.duckdb"),
        engine=engine,
        spark_catalog=str(root / "spark"),
        spark_models=str(root / "lake" / "dbt"),
    )
    warehouse = Warehouse(
        str(root / "lake"),
        resource.path,
        root / f"dbt-target-{engine}",
        root / "dbt-logs",
        0,
        executable=dbt_entry_point(engine),
        extra_env=resource.dbt_environment(str(root / "lake"), {}),
    )
    calls = windows(history, chunk)
    _timed(run, "transform", lambda: [dbt("build", warehouse, f, last) for f, last in calls])
    for model, column in MODEL_TABLES.items():
        run.hashes[model] = _fingerprint(resource.model_rows(model, *EVERYTHING, column))
    return resource


def publish(run: EngineRun, resource: WarehouseResource, lake_root: str) -> None:
    """Both snapshot models appended to the feature logs, stamped at one fixed time."""
    stamped = datetime(2030, 1, 1, tzinfo=UTC)  # the same created_ts on both engines

    def both() -> None:
        for table in FEATURE_TABLES:
            rows = resource.model_rows(table.model, *EVERYTHING)
            publish_snapshots(table.uri(lake_root), rows, table.key, stamped)

    _timed(run, "publish", both)
    for table in FEATURE_TABLES:
        log = delta.open_table(table.uri(lake_root)).to_pyarrow_table()
        run.hashes[table.name] = _fingerprint(log)


def training_set(run: EngineRun, lake_root: str, labels: pa.Table, since: datetime) -> pa.Table:
    """The point-in-time join of `labels` on the run's engine."""
    uris = [t.uri(lake_root) for t in FEATURE_TABLES]
    if run.engine == "spark":
        spark = _timed(run, "spark session start", lambda: spark_session(SparkSettings.from_env()))
        frames = [delta_frame(spark, uri, None, since) for uri in uris]
        examples = _timed(
            run,
            "training set (PIT join)",
            lambda: spark_training_examples(spark, labels, *frames, TTL),
        )
    else:

        def join() -> pa.Table:
            users, works = (feature_rows_since(uri, since)[0] for uri in uris)
            return training_examples(labels, users, works, TTL)

        examples = _timed(run, "training set (PIT join)", join)
    run.hashes["training_examples"] = _fingerprint(examples)
    return examples


def ranker(run: EngineRun, examples: pa.Table, lake_root: str) -> None:
    """The ranker on the run's engine (no segments, default parameters)."""
    params = RankerParams()
    if run.engine == "spark":
        spark = spark_session(SparkSettings.from_env())
        uri = str(Path(lake_root, "bench-training"))
        delta.overwrite(uri, examples, {})
        frame = delta_frame(spark, uri)
        _timed(run, "ranker", lambda: train_spark_ranker(frame, None, params))
    else:
        _timed(run, "ranker", lambda: train_ranker(examples, None, params))


def run_size(
    work: Path, config: SimulationConfig, chunk: int, console: Console
) -> dict[str, EngineRun]:
    """Both engines over one history size."""
    history = bronze(work / f"bronze-{config.events_per_day}", config, console)
    console.log(f"bronze: {history.history_events:,} events over {len(history.history)} days")
    runs = {}
    labels = since = None
    for engine in ENGINES:
        run = runs[engine] = EngineRun(engine)
        root = work / f"run-{config.events_per_day}-{engine}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(history.lake, root / "lake")
        lake_root = str(root / "lake")
        resource = transform(run, root, history.history, chunk)
        console.log(f"{engine}: transform {run.seconds['transform']:.1f}s")
        publish(run, resource, lake_root)
        if labels is None:
            events, catalogue, _ = label_events(
                bronze_uri(lake_root, INTERACTIONS), bronze_uri(lake_root, ARTWORKS), 7
            )
            labels = training_labels(events, catalogue, LabelSpec(("favourite", "purchase")))
            since = min(events["event_ts"].to_pylist()) - TTL
        examples = training_set(run, lake_root, labels, since)
        console.log(f"{engine}: training set {examples.num_rows:,} rows")
        ranker(run, examples, lake_root)
        console.log(f"{engine}: {', '.join(f'{k} {v:.1f}s' for k, v in run.seconds.items())}")
    return runs


def stage_table(runs: dict[str, EngineRun], events: int) -> Table:
    """Seconds per stage for both engines and their ratio."""
    table = Table("stage", "DuckDB + delta-rs s", "Spark + delta-spark s", "Spark / DuckDB")
    duck, spark = runs["duckdb"], runs["spark"]
    stages = dict.fromkeys([*duck.seconds, *spark.seconds])
    for stage in stages:
        d, s = duck.seconds.get(stage), spark.seconds.get(stage)
        ratio = f"{s / d:.1f}x" if d and s else ""
        table.add_row(stage, f"{d:.1f}" if d else "-", f"{s:.1f}" if s else "-", ratio)
    total_d, total_s = sum(duck.seconds.values()), sum(spark.seconds.values())
    table.add_row("total", f"{total_d:.1f}", f"{total_s:.1f}", f"{total_s / total_d:.1f}x")
    table.add_row("events/s", f"{events / total_d:,.0f}", f"{events / total_s:,.0f}", "")
    return table


def parity_table(runs: dict[str, EngineRun]) -> tuple[Table, bool]:
    """Rows and content hash per output, and whether every one matches."""
    table = Table("output", "rows", "DuckDB hash", "Spark hash", "match")
    same = True
    for name, (rows, digest) in runs["duckdb"].hashes.items():
        other_rows, other = runs["spark"].hashes[name]
        match = rows == other_rows and digest == other
        same &= match
        table.add_row(name, f"{rows:,}", digest, other, "yes" if match else "[red]NO")
    return table, same


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--events-per-day", type=int, nargs="+", default=[20_000, 100_000], help="sizes to run"
    )
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--artworks", type=int, default=2_000)
    parser.add_argument("--chunk-days", type=int, default=15)
    parser.add_argument("--keep", help="work in this directory and leave it (bronze cache)")
    args = parser.parse_args(argv or [])
    console = Console()
    with workdir(args.keep) as work:
        for events_per_day in args.events_per_day:
            config = SimulationConfig(
                days=args.days + 1,
                events_per_day=events_per_day,
                initial_users=args.users,
                initial_artworks=args.artworks,
            )
            runs = run_size(work, config, args.chunk_days, console)
            events = args.days * events_per_day
            console.print(f"{args.days} days x {events_per_day:,} events/day")
            console.print(stage_table(runs, events))
            parity, same = parity_table(runs)
            console.print(parity)
            if not same:
                console.print("[bold red]engines disagree: the timings above do not count")
