"""A simulated marketplace history built once into a SANDS_HOME (landing, bronze, dbt, feature
logs) for the offline quality benchmarks, which then replay days from it without the loop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path


@dataclass(frozen=True)
class History:
    """Where a built history lives and which days it holds."""

    home: str
    first: date
    days: int
    shift_day: int  # index of the first changed day

    def day(self, index: int) -> date:
        return self.first + timedelta(days=index)


def build_history(
    home: str,
    scenario: str,
    days: int,
    shift_day: int,
    events_per_day: int,
    seed: int = 7,
    start: date = date(2026, 9, 1),
) -> History:
    """Simulate `days` days of `scenario` (changing on index `shift_day`) into `home` and build
    bronze and the feature logs; a home already built is reused as it is."""
    history = History(home=home, first=start, days=days, shift_day=shift_day)
    marker = Path(home, "history-built")
    if marker.exists():
        return history
    os.environ["SANDS_HOME"] = home
    os.environ["DAGSTER_HOME"] = str(Path(home, "dagster"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from dagster_project.runner import instance_for, run_feature_build, run_ingestion
    from sands.settings import SandsPaths
    from sands.sim.marketplace import Marketplace, Scenario, SimulationConfig, write_drop

    paths = SandsPaths.from_env()
    paths.ensure_local_dirs()
    config = SimulationConfig(
        seed=seed,
        start=start,
        days=days,
        events_per_day=events_per_day,
        scenario=Scenario(scenario),
        scenario_day=shift_day,
    )
    for drop in Marketplace(config).days():
        write_drop(drop, paths.landing, paths.storage_options, "parquet")
    instance = instance_for(paths)
    landed = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    failed = [r.run_id for r in run_ingestion(landed, instance) if not r.success]
    build = run_feature_build(landed[0], landed[-1], instance)
    if failed or not build.success:
        raise RuntimeError(f"building the history in {home} failed")
    marker.write_text(f"{scenario} {days} {shift_day} {events_per_day}\n")
    return history
