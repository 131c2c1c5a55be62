"""Drift false alarms and detection delay: Evidently's rule against the calibrated one.

Per volume, one simulated history goes through the real pipeline once (ingestion, dbt features,
the point-in-time training set via `dagster_project.runner`), after 28 days of warm-up so trailing
features are mature. Then for each judged day d, day d's labelled rows are compared with the
three preceding label days' rows (the reference shape `champion_drift` uses) under both rules.

The history is `taste-shift` with the change on a known judged day. Before the change its days are
draw for draw those of `steady` with the same seed (the scenario only alters tastes from the
shift day on), so the days before it are the `steady` sample: a flagged one is a false alarm.
Reported per volume: the false-alarm rate over those days, which groups raised them, the share
of single columns flagged on them (a finer view of the same), and the days from the change to
the first flag (0 = flagged on the day of the change).

Volumes: 5,000 events/day (the demo's shape), ~470/day (the real public history of issue 16)
and ~30/day over a 10,000-artwork catalogue (the second, sparse real history).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from sands.monitoring.drift import DriftRule
from sands.monitoring.verdicts import compare

console = Console()
START = date(2026, 7, 1)
REFERENCE_DAYS = 3  # as DriftConfig.reference_days
SHARES = {"user": 0.5, "artwork": 0.5, "label": 0.3}  # DriftConfig's defaults


@dataclass(frozen=True)
class Volume:
    name: str
    events_per_day: int
    users: int
    artworks: int


VOLUMES = {
    "5k": Volume("5k", 5_000, 2_000, 1_000),
    "470": Volume("470", 470, 1_000, 2_000),
    "30": Volume("30", 30, 500, 10_000),
}


def build(volume: Volume, judged: int, shift: int, warmup: int, seed: int, cache: Path) -> Path:
    """Simulate, ingest, build features and one training set over every judged day (plus the
    reference days before the first); cache its rows as parquet."""
    out = cache / f"examples-{volume.name}-j{judged}-s{shift}-w{warmup}-seed{seed}.parquet"
    if out.exists():
        return out
    home = tempfile.mkdtemp(prefix=f"sands-drift-{volume.name}-")
    os.environ["SANDS_HOME"] = home
    os.environ["DAGSTER_HOME"] = str(Path(home, "dagster"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from dagster_project.definitions import build_defs
    from dagster_project.runner import QUIET, instance_for, run_feature_build, run_ingestion
    from sands.features.training_store import read_training_set
    from sands.settings import SandsPaths
    from sands.sim.marketplace import Marketplace, Scenario, SimulationConfig, write_drop

    paths = SandsPaths.from_env()
    paths.ensure_local_dirs()
    days = warmup + REFERENCE_DAYS + judged
    config = SimulationConfig(
        seed=seed,
        start=START,
        days=days,
        events_per_day=volume.events_per_day,
        initial_users=volume.users,
        initial_artworks=volume.artworks,
        new_users_per_day=max(volume.users // 100, 1),
        new_artworks_per_day=max(volume.artworks // 100, 1),
        scenario=Scenario.taste_shift,
        scenario_day=warmup + REFERENCE_DAYS + shift,
    )
    started = time.perf_counter()
    stamps = []
    for drop in Marketplace(config).days():
        write_drop(drop, paths.landing, paths.storage_options, "parquet")
        stamps.append(drop.day.isoformat())
    instance = instance_for(paths)
    failed = [r.run_id for r in run_ingestion(stamps, instance) if not r.success]
    built = run_feature_build(stamps[0], stamps[-1], instance)
    if failed or not built.success:
        raise RuntimeError(f"building the {volume.name} history failed")
    run_config = dict(QUIET)
    run_config["ops"] = {"training_examples": {"config": {"label_days": REFERENCE_DAYS + judged}}}
    trained = (
        build_defs()
        .resolve_job_def("training_data")
        .execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    )
    if not trained.success:
        raise RuntimeError(f"the {volume.name} training set failed")
    examples, _, _ = read_training_set(paths.lake, None, paths.storage_options)
    cache.mkdir(parents=True, exist_ok=True)
    pq.write_table(examples, out)
    console.print(
        f"{volume.name}: {days} days built in {time.perf_counter() - started:.0f} s, "
        f"{examples.num_rows:,} training rows ({home})"
    )
    return out


def _label_days(examples: pa.Table) -> np.ndarray:
    stamps = pc.cast(examples["label_ts"], pa.timestamp("us", tz="UTC"))
    return np.asarray(pc.days_between(pa.scalar(START), pc.cast(stamps, pa.date32())))


@dataclass
class Verdicts:
    """Per judged day: whether each rule flagged it, and which groups."""

    day: date
    rows: int
    positives: int
    flags: dict[str, list[str]]
    columns: dict[str, tuple[int, int]]  # rule -> (columns flagged, columns compared)


def judge(examples: pa.Table, first: int, judged: int, rules: dict[str, DriftRule]) -> list:
    index = _label_days(examples)
    verdicts = []
    for d in range(first, first + judged):
        current = examples.filter(pa.array(index == d))
        reference = examples.filter(pa.array((index >= d - REFERENCE_DAYS) & (index < d)))
        flags, columns = {}, {}
        for name, rule in rules.items():
            result = compare(
                reference,
                current,
                np.zeros(reference.num_rows),
                np.zeros(current.num_rows),
                SHARES,
                rule,
            )
            flags[name] = [g for g, (_, _, drifted) in result.features.groups.items() if drifted]
            compared = [c for c in result.features.columns if c.method != "empty"]
            columns[name] = (sum(c.drifted for c in compared), len(compared))
        verdicts.append(
            Verdicts(
                START + timedelta(days=d),
                current.num_rows,
                int(pc.sum(current["label"]).as_py() or 0),
                flags,
                columns,
            )
        )
    return verdicts


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench drift_alarms")
    parser.add_argument("--volumes", default="5k,470,30", help=f"of {','.join(VOLUMES)}")
    parser.add_argument("--judged-days", type=int, default=20)
    parser.add_argument("--shift", type=int, default=14, help="Judged day (0-based) of change.")
    parser.add_argument("--warmup-days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir(), "sands-drift-alarms")))
    parser.add_argument("--verbose", action="store_true", help="Print every day's verdicts.")
    args = parser.parse_args(argv)
    rules = {"evidently": DriftRule(calibrated=False), "calibrated": DriftRule()}
    first = args.warmup_days + REFERENCE_DAYS
    table = Table(
        "volume",
        "rows/day (positives)",
        "rule",
        "false alarms (steady days)",
        "groups",
        "columns flagged (steady days)",
        "delay after the change",
        "judge s/day",
        title="drift verdicts: day d against the 3 days before",
    )
    for name in args.volumes.split(","):
        volume = VOLUMES[name]
        path = build(
            volume, args.judged_days, args.shift, args.warmup_days, args.seed, Path(args.cache)
        )
        examples = pq.read_table(path)
        started = time.perf_counter()
        verdicts = judge(examples, first, args.judged_days, rules)
        seconds = (time.perf_counter() - started) / args.judged_days / len(rules)
        steady, after = verdicts[: args.shift], verdicts[args.shift :]
        if args.verbose:
            for v in verdicts:
                console.print(
                    f"{volume.name} {v.day} rows {v.rows} positives {v.positives} {v.flags}"
                )
        rows = np.mean([v.rows for v in verdicts])
        positives = np.mean([v.positives for v in verdicts])
        for rule in rules:
            alarms = [v for v in steady if v.flags[rule]]
            groups = sorted({g for v in alarms for g in v.flags[rule]})
            delay = next((i for i, v in enumerate(after) if v.flags[rule]), None)
            flagged = sum(v.columns[rule][0] for v in steady)
            compared = sum(v.columns[rule][1] for v in steady)
            table.add_row(
                volume.name,
                f"{rows:,.0f} ({positives:,.0f})",
                rule,
                f"{len(alarms)}/{len(steady)} = {len(alarms) / max(len(steady), 1):.0%}",
                ", ".join(groups) or "-",
                f"{flagged}/{compared} = {flagged / max(compared, 1):.1%}",
                "none" if delay is None else f"{delay} d",
                f"{seconds:.2f}",
            )
    console.print(table)
