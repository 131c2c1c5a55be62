"""How much of a day's judgement newcomers carry: per played day, the users with a conversion
(those next-day NDCG is averaged over) and how many of them joined from the change on.

Under `demographic-shift` the change is who arrives, not how anyone behaves, so only newcomers can
be ranked better by a retrained model; their share bounds what `served / frozen` can reach
(`docs/benchmarks.md`). The same simulation as `python -m bench quality`, without the loop.

    python -m bench newcomers [--scenario demographic-shift] [--events-per-day 20000]
"""

from __future__ import annotations

import argparse
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from sands.ingest.contract import CONVERSION_EVENTS
from sands.sim.marketplace import Marketplace, Scenario, SimulationConfig


def judged_users(events: pa.Table) -> set[str]:
    """Users with a conversion on the day: the users a day's NDCG@10 is averaged over."""
    kinds = pa.array(CONVERSION_EVENTS, events["event_type"].type)
    return set(events.filter(pc.is_in(events["event_type"], kinds))["user_id"].to_pylist())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench newcomers")
    parser.add_argument("--scenario", default="demographic-shift", choices=[s for s in Scenario])
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--warmup-days", type=int, default=28)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--shift-day", type=int, default=3)
    args = parser.parse_args(argv)
    shift = args.warmup_days + args.shift_day
    config = SimulationConfig(
        seed=7,
        start=date(2026, 9, 1),
        days=args.warmup_days + args.days,
        events_per_day=args.events_per_day,
        scenario=Scenario(args.scenario),
        scenario_day=shift,
    )
    table = Table(
        "day", "judged users", "newcomers", "share", title=f"{args.scenario}: who is judged"
    )
    before: set[str] = set()  # everyone who had joined before the change
    shares = []
    for index, drop in enumerate(Marketplace(config).days()):
        if index < shift:
            before |= set(drop.users["user_id"].to_pylist())
            continue
        judged = judged_users(drop.interactions)
        newcomers = len(judged - before)
        shares.append(newcomers / max(len(judged), 1))
        table.add_row(str(drop.day), f"{len(judged):,}", f"{newcomers:,}", f"{shares[-1]:.1%}")
    console = Console()
    console.print(table)
    mean = sum(shares) / len(shares)
    console.print(
        f"mean newcomer share {mean:.1%}: with everyone else ranked as before, served / frozen = "
        f"1.15 needs newcomers' NDCG@10 raised by 0.15 x frozen / {mean:.3f} = "
        f"{0.15 / mean:.2f} x the frozen model's mean"
    )
