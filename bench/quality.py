"""Model quality while the data shifts: each scenario played through the self-running loop, and
the served policy's next-day NDCG@10 against a model frozen before the change and popularity.

Per scenario: `--warmup-days` of history loaded in bulk, then `--days` days played through the
landing sensor and automation (`dagster_project.scenario.play`), the change on day `--shift-day`.
Means are over the days from the change on; days without labels are skipped and counted. The
drift false-alarm rate is the share of days flagged before the change (every day under
`steady`); detection is the first flagged day from the change on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

SCENARIOS = ("steady", "taste-shift", "new-trend", "demographic-shift")
# The targets: served >= popularity everywhere, >= 1.15x frozen after a change, and
# >= 1.3x popularity under steady; drift false alarms at most 10 % of days.
TARGETS = {"vs_popularity": 1.0, "vs_frozen_after_change": 1.15, "steady_vs_popularity": 1.3}
MAX_FALSE_ALARMS = 0.10


@dataclass
class ScenarioResult:
    """Means over the days from the change on, and the drift verdicts' timing."""

    scenario: str
    days: int
    unlabelled_days: int
    served: float | None
    frozen: float | None
    popularity: float | None
    false_alarm_rate: float
    detection_delay: int | None
    popularity_served_days: int
    seconds: float
    seed: int | None = None  # None: pooled over seeds

    @property
    def label(self) -> str:
        return f"{self.scenario} ({'pooled' if self.seed is None else f'seed {self.seed}'})"


def _mean(values: list[float | None]) -> tuple[float | None, int]:
    kept = [v for v in values if v is not None and v == v]
    return (sum(kept) / len(kept) if kept else None), len(values) - len(kept)


def pooled(runs: list[ScenarioResult]) -> ScenarioResult:
    """One scenario over several seeds: the runs' means and false-alarm rates averaged (each run
    plays the same days), days summed, detection the latest run's (none if one run missed it)."""

    def mean(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return sum(kept) / len(kept) if kept else None

    delays = [r.detection_delay for r in runs if r.detection_delay is not None]
    return ScenarioResult(
        scenario=runs[0].scenario,
        days=sum(r.days for r in runs),
        unlabelled_days=sum(r.unlabelled_days for r in runs),
        served=mean([r.served for r in runs]),
        frozen=mean([r.frozen for r in runs]),
        popularity=mean([r.popularity for r in runs]),
        false_alarm_rate=sum(r.false_alarm_rate for r in runs) / len(runs),
        detection_delay=max(delays) if len(delays) == len(runs) else None,
        popularity_served_days=sum(r.popularity_served_days for r in runs),
        seconds=sum(r.seconds for r in runs),
    )


def summarise(
    scenario: str, records: list, shift: int, seconds: float, seed: int | None = None
) -> ScenarioResult:
    """The scenario's figures from its day records (see `dagster_project.scenario.DayRecord`)."""
    after = records[shift:] if scenario != "steady" else records
    served, unlabelled = _mean([r.served_ndcg for r in after])
    frozen, _ = _mean([r.frozen_ndcg for r in after])
    popularity, _ = _mean([r.popularity_ndcg for r in after])
    quiet = records if scenario == "steady" else records[:shift]
    alarms = sum(1 for r in quiet if r.drift)
    flagged = [i - shift for i, r in enumerate(records) if i >= shift and r.drift]
    return ScenarioResult(
        scenario=scenario,
        days=len(after),
        unlabelled_days=unlabelled,
        served=served,
        frozen=frozen,
        popularity=popularity,
        false_alarm_rate=alarms / max(len(quiet), 1),
        detection_delay=None if scenario == "steady" or not flagged else flagged[0],
        popularity_served_days=sum(1 for r in after if r.served_policy == "popularity"),
        seconds=seconds,
        seed=seed,
    )


def play_scenario(
    scenario: str, events_per_day: int, warmup: int, days: int, shift: int, home: str, seed: int = 7
) -> ScenarioResult:
    shutil.rmtree(home, ignore_errors=True)
    os.environ["SANDS_HOME"] = home
    os.environ["DAGSTER_HOME"] = str(Path(home, "dagster"))
    from dagster_project.scenario import play
    from sands.settings import SandsPaths
    from sands.sim.marketplace import Scenario, SimulationConfig

    config = SimulationConfig(
        seed=seed,
        start=date(2026, 9, 1),
        days=days,
        events_per_day=events_per_day,
        scenario=Scenario(scenario),
        scenario_day=shift,
    )
    console = Console()
    started = time.perf_counter()
    records = play(
        SandsPaths.from_env(),
        config,
        lambda r: console.print(
            f"  {scenario} {r.day}: served {r.served_policy} {_fmt(r.served_ndcg)}, frozen "
            f"{_fmt(r.frozen_ndcg)}, popularity {_fmt(r.popularity_ndcg)}, drift {r.drift}, "
            f"gate {r.gate}, {r.seconds:.0f} s"
        ),
        warmup_days=warmup,
    )
    result = summarise(scenario, records, shift, time.perf_counter() - started, seed)
    Path(home, "quality.json").write_text(
        json.dumps({"summary": asdict(result), "days": [asdict(r) for r in records]}, default=str)
    )
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"


def _ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or not theirs:
        return "-"
    return f"{mine / theirs:.2f}x"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench quality")
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--warmup-days", type=int, default=28)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--shift-day", type=int, default=3)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--homes", default=tempfile.gettempdir())
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[7],
        help="simulation seeds; with more than one, each scenario is also pooled over them "
        "(the model frozen on the eve of the change is one draw per run)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    console = Console()
    results = []
    for seed in args.seeds:
        for scenario in args.scenarios:
            console.print(
                f"{scenario}, seed {seed}: {args.events_per_day:,} events/day, "
                f"{args.warmup_days} warm-up days, {args.days} played, change on day "
                f"{args.shift_day}"
            )
            name = f"sands-bench-quality-{scenario}" + ("" if seed == 7 else f"-seed{seed}")
            results.append(
                play_scenario(
                    scenario,
                    args.events_per_day,
                    args.warmup_days,
                    args.days,
                    args.shift_day,
                    str(Path(args.homes, name)),
                    seed,
                )
            )
    if len(args.seeds) > 1:
        results += [pooled([r for r in results if r.scenario == s]) for s in args.scenarios]
    table = Table(
        "scenario",
        "days",
        "served",
        "frozen",
        "popularity",
        "served/popularity",
        "served/frozen",
        "popularity served (days)",
        "drift false alarms",
        "detected after (days)",
        "s",
        title="next-day NDCG@10 from the change on (steady: every played day)",
    )
    for r in results:
        table.add_row(
            r.label,
            f"{r.days}" + (f" ({r.unlabelled_days} unlabelled)" if r.unlabelled_days else ""),
            _fmt(r.served),
            _fmt(r.frozen),
            _fmt(r.popularity),
            _ratio(r.served, r.popularity),
            _ratio(r.served, r.frozen),
            str(r.popularity_served_days),
            f"{r.false_alarm_rate:.0%}",
            "-" if r.detection_delay is None else str(r.detection_delay),
            f"{r.seconds:.0f}",
        )
    console.print(table)
    for line in verdicts(results):
        console.print(line)


def verdicts(results: list[ScenarioResult]) -> list[str]:
    """Each target, met or missed, in words."""
    lines = []
    for r in results:
        if r.served is None or r.popularity is None:
            lines.append(f"{r.label}: no labelled day to judge")
            continue
        need = TARGETS["steady_vs_popularity"] if r.scenario == "steady" else 1.0
        lines.append(
            f"{r.label}: served {_ratio(r.served, r.popularity)} popularity "
            f"(target >= {need}x): {'met' if r.served >= need * r.popularity else 'MISSED'}"
        )
        if r.scenario != "steady" and r.frozen:
            target = TARGETS["vs_frozen_after_change"]
            met = r.served >= target * r.frozen
            lines.append(
                f"{r.label}: served {_ratio(r.served, r.frozen)} frozen (target >= {target}x): "
                f"{'met' if met else 'MISSED'}"
            )
        lines.append(
            f"{r.label}: drift false alarms {r.false_alarm_rate:.0%} (target <= "
            f"{MAX_FALSE_ALARMS:.0%})"
            + (
                f", detected {r.detection_delay} day(s) after the change"
                if r.detection_delay is not None
                else ""
            )
        )
    return lines
