"""Simulator and bronze-ingestion throughput at one million events per day.

Peer: a bare delta-rs append of the same Parquet file (no validation, no quarantine, no
idempotent partition replace), i.e. the cost floor of landing the bytes in Delta at all.
`--files N` lands each day's events as N Parquet files, as a streaming producer's micro-batches
do (the peer still appends them as one table).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import write_deltalake
from rich.console import Console
from rich.table import Table

from sands.ingest.bronze import ingest_day
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _split(source: Path, files: int) -> None:
    """Replace one landing file by `files` consecutive slices of it, as micro-batches land."""
    from sands.ingest import landing

    table = pq.read_table(source)
    fs, _ = landing.filesystem(str(source.parent))
    size = -(-len(table) // files)
    for index in range(files):
        part = table.slice(index * size, size)
        landing.write_table(fs, str(source.with_name(f"events-{index:05d}.parquet")), part)
    source.unlink()


def run(events_per_day: int, days: int, bad_rows: float, files: int = 1) -> Table:
    """Measure simulate, write, ingest and the bare-append peer; return a table of figures."""
    config = SimulationConfig(
        days=days,
        events_per_day=events_per_day,
        initial_users=max(events_per_day // 20, 1_000),
        initial_artworks=max(events_per_day // 50, 500),
        bad_rows=bad_rows,
    )
    table = Table("stage", "day", "rows", "seconds", "rows/s", "vs bare delta-rs append")
    with tempfile.TemporaryDirectory() as tmp:
        landing, lake = str(Path(tmp, "landing")), str(Path(tmp, "lake"))
        iter_days = Marketplace(config).days()
        for index in range(days):
            drop, sim_s = _timed(lambda: next(iter_days))
            day = config.start + timedelta(days=index)
            _, write_s = _timed(lambda drop=drop: write_drop(drop, landing))
            events = drop.counts["events"] + drop.counts["bad_events"]
            source = Path(landing, "interactions", str(day), "events.parquet")
            peer_source = Path(tmp, "peer.parquet")
            shutil.copyfile(source, peer_source)  # the peer reads one file, however it landed
            if files > 1:
                _split(source, files)
            report, ingest_s = _timed(lambda day=day: ingest_day(landing, lake, day))
            _, bare_s = _timed(
                lambda peer_source=peer_source: write_deltalake(
                    str(Path(tmp, "bare")), pq.read_table(peer_source), mode="append"
                )
            )
            table.add_row(
                "simulate", str(day), f"{events:,}", f"{sim_s:.2f}", f"{events / sim_s:,.0f}", ""
            )
            table.add_row(
                "write drop",
                str(day),
                f"{events:,}",
                f"{write_s:.2f}",
                f"{events / write_s:,.0f}",
                "",
            )
            table.add_row(
                f"ingest (validate + Delta + quarantine), {files:,} event file(s)",
                str(day),
                f"{report.rows_read:,}",
                f"{ingest_s:.2f}",
                f"{report.rows_read / ingest_s:,.0f}",
                f"{ingest_s / bare_s:.1f}x the time",
            )
            table.add_row(
                "peer: bare delta-rs append",
                str(day),
                f"{events:,}",
                f"{bare_s:.2f}",
                f"{events / bare_s:,.0f}",
                "1.0x",
            )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--bad-rows", type=float, default=0.01)
    parser.add_argument("--files", type=int, default=1, help="event files per landing day")
    args = parser.parse_args(argv or [])
    if args.files < 1:
        parser.error(f"--files {args.files}: at least 1")
    console = Console()
    console.print(run(args.events_per_day, args.days, args.bad_rows, args.files))
