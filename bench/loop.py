"""Continuous-training latency: from a day's files landing to the loop at rest (ingest, dbt,
features, training set, monitoring, retrain, evaluation, gated promotion), per day, at a given
scale, with the slowest steps. The loop is `dagster_project.scenario.play` (sensor + automation
ticked in process), after `--warmup-days` of history loaded in bulk. There is no peer: the figure
is seconds per day and events/s through the whole loop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench loop")
    parser.add_argument("--events-per-day", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--artworks", type=int, default=4_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--warmup-days", type=int, default=7)
    parser.add_argument("--home", help="SANDS_HOME to use (default: a temporary folder)")
    args = parser.parse_args(argv)

    home = args.home or tempfile.mkdtemp(prefix="sands-loop-")
    shutil.rmtree(home, ignore_errors=True)
    os.environ["SANDS_HOME"] = home
    os.environ["DAGSTER_HOME"] = str(Path(home, "dagster"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Imported after SANDS_HOME is set: resources resolve it on build.
    from dagster_project.runner import instance_for
    from dagster_project.scenario import play
    from sands.settings import SandsPaths
    from sands.sim.marketplace import SimulationConfig

    config = SimulationConfig(
        seed=7,
        start=date(2026, 9, 1),
        days=args.days,
        events_per_day=args.events_per_day,
        initial_users=args.users,
        initial_artworks=args.artworks,
        new_users_per_day=max(args.users // 100, 1),
        new_artworks_per_day=max(args.artworks // 100, 1),
    )
    console = Console()
    console.print(
        f"{args.events_per_day:,} events/day, {args.users:,} users, {args.artworks:,} artworks; "
        f"{args.warmup_days} days of history, then {args.days} days through the loop ({home})"
    )
    paths = SandsPaths.from_env()
    records = play(
        paths,
        config,
        lambda r: console.print(f"{r.day}: {r.seconds:.0f} s"),
        warmup_days=args.warmup_days,
    )
    instance = instance_for(paths)
    table = Table(
        "day",
        "runs",
        "triggers",
        "gate",
        "champion",
        "landing -> rest (s)",
        "events/s",
        "slowest steps (s)",
        title="continuous-training latency",
    )
    for r in records:
        steps: dict[str, float] = defaultdict(float)
        for run_id in r.run_ids:
            for stat in instance.get_run_step_stats(run_id):
                if stat.start_time and stat.end_time:
                    steps[stat.step_key] += stat.end_time - stat.start_time
        slowest = sorted(steps.items(), key=lambda kv: -kv[1])[:5]
        table.add_row(
            r.day,
            str(r.runs),
            ", ".join(r.triggers) or "-",
            {None: "-", True: "pass", False: "reject"}[r.gate],
            f"v{r.champion}" if r.champion else "-",
            f"{r.seconds:.0f}",
            f"{args.events_per_day / r.seconds:,.0f}",
            ", ".join(f"{k} {v:.0f}" for k, v in slowest),
        )
    console.print(table)
