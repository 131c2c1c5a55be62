"""Dagster's per-run overhead on the embedded instance: the pooled event log against Dagster's own
`SqliteEventLogStorage`, in the same run, on the same job.

Each storage gets a fresh `DAGSTER_HOME` in its own process and runs a chain of `--assets` trivial
assets `--runs` times in process (after one warm-up run): what is left is run creation, planned
events and the event log, the fixed cost every step of the loop pays.

    python -m bench event_log [--assets 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster import (
    AssetsDefinition,
    DagsterInstance,
    Definitions,
    JobDefinition,
    MaterializeResult,
    asset,
)
from rich.console import Console
from rich.table import Table

STORAGES = {
    "dagster SqliteEventLogStorage": "",
    "sands PooledSqliteEventLogStorage": (
        "event_log_storage:\n  module: dagster_project.event_log_storage\n"
        "  class: PooledSqliteEventLogStorage\n"
    ),
}


def _step(i: int, previous: AssetsDefinition | None) -> AssetsDefinition:
    @asset(name=f"step_{i}", deps=[previous] if previous else [])
    def _materialize() -> MaterializeResult:
        return MaterializeResult(metadata={"i": i})

    return _materialize


def _chain(assets: int) -> JobDefinition:
    made: list[AssetsDefinition] = []
    for i in range(assets):
        made.append(_step(i, made[-1] if made else None))
    return Definitions(assets=made).resolve_implicit_global_asset_job_def()


def measure(home: str, assets: int, runs: int) -> dict[str, float]:
    """Seconds per run and events per run of the chain, on the instance in `home`."""
    os.environ["DAGSTER_HOME"] = home
    instance = DagsterInstance.get()
    job = _chain(assets)
    job.execute_in_process(instance=instance, raise_on_error=True)
    started = time.perf_counter()
    last = None
    for _ in range(runs):
        last = job.execute_in_process(instance=instance, raise_on_error=True)
    seconds = (time.perf_counter() - started) / runs
    events = len(instance.all_logs(last.run_id))
    return {"seconds_per_run": seconds, "events_per_run": events}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench event_log")
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], args.assets, args.runs)))
        return
    results = {}
    for name, yaml in STORAGES.items():
        with tempfile.TemporaryDirectory() as home:
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + yaml)
            command = [sys.executable, "-m", "bench", "event_log", "--child", home]
            command += ["--assets", str(args.assets), "--runs", str(args.runs)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
    table = Table(
        "event log storage",
        "s per run",
        "events per run",
        "ms per event",
        "vs dagster",
        title=f"a chain of {args.assets} assets, {args.runs} runs in process",
    )
    base = results["dagster SqliteEventLogStorage"]["seconds_per_run"]
    for name, r in results.items():
        per_event = 1000 * r["seconds_per_run"] / r["events_per_run"]
        table.add_row(
            name,
            f"{r['seconds_per_run']:.2f}",
            f"{r['events_per_run']:.0f}",
            f"{per_event:.1f}",
            f"{base / r['seconds_per_run']:.2f}x",
        )
    Console().print(table)
