"""Play a simulated marketplace day by day through the self-running loop and keep a timeline."""

from __future__ import annotations

import time as time_module
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from dagster import ExecuteInProcessResult

from dagster_project.loop import Loop, TickOutcome
from dagster_project.runner import instance_for
from sands.settings import SandsPaths
from sands.simulator import Marketplace, SimulationConfig, write_drop


@dataclass
class DayRecord:
    """What happened after one day's files landed."""

    day: str
    runs: int = 0
    failed_runs: int = 0
    triggers: list[str] = field(default_factory=list)
    drift: bool | None = None
    gate: bool | None = None
    champion: int | None = None
    champion_ndcg: float | None = None
    popularity_ndcg: float | None = None
    seconds: float = 0.0  # files landing -> loop at rest (ingest ... promotion)


def _checks(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def _metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, object]:
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[-1].metadata.items()} if events else {}


def _absorb(record: DayRecord, outcome: TickOutcome) -> None:
    record.triggers += [t for t in outcome.ranker_triggers if t not in record.triggers]
    for result in outcome.results:
        record.runs += 1
        checks = _checks(result)
        if "no_dataset_drift" in checks:
            record.drift = not checks["no_dataset_drift"]
        if "promotion_gate" in checks:
            record.gate = checks["promotion_gate"]
        quality = _metadata(result, "champion_performance")
        if "ndcg_at_10" in quality:
            record.champion_ndcg = float(quality["ndcg_at_10"])
            record.popularity_ndcg = float(quality["popularity_ndcg_at_10"])
        if not result.success and record.gate is not False:
            record.failed_runs += 1


def play(
    paths: SandsPaths,
    config: SimulationConfig,
    on_day: Callable[[DayRecord], None] | None = None,
) -> list[DayRecord]:
    """Simulate each day, let the landing sensor and automation do everything, record it."""
    from dagster_project.definitions import build_defs
    from resources import build_resources

    paths.ensure_local_dirs()
    resources = build_resources()
    loop = Loop(build_defs(), instance_for(paths), resources)
    registry = resources["registry"].open()
    records = []
    for drop in Marketplace(config).days():
        write_drop(drop, paths.landing, paths.storage_options, "parquet")
        landed = time_module.perf_counter()
        record = DayRecord(day=drop.day.isoformat())
        for result in loop.landing_tick():
            record.runs += 1
            record.failed_runs += 0 if result.success else 1
        # The morning after the day closes: automation catches up on what landed.
        morning = datetime.combine(drop.day + timedelta(days=1), time(1), tzinfo=UTC)
        loop.settle(morning, on_tick=lambda outcome, r=record: _absorb(r, outcome))
        record.champion = registry.champion_version()
        record.seconds = time_module.perf_counter() - landed
        records.append(record)
        if on_day:
            on_day(record)
    return records
