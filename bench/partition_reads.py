"""Reads of a daily-partitioned feature log a year old: the newest snapshot and 14 days of rows,
each timed as the loop reads them (best of 5), on a log written once into `--dir`.

    python -m bench partition_reads [--days 365] [--rows 1682] [--dir /tmp/partition-reads]

Run it from a worktree of older code (`PYTHONPATH=WORKTREE`) for the before figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake
from rich.console import Console
from rich.table import Table

from sands.lake import layout

FIRST = date(2025, 9, 1)


def write_log(root: Path, days: int, rows: int) -> None:
    """`days` daily snapshots of `rows` artworks, one commit each (as the loop appends them)."""
    ids = [f"a{i}" for i in range(rows)]
    for offset in range(days):
        day = FIRST + timedelta(days=offset)
        stamp = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        times = pa.array([stamp] * rows, pa.timestamp("us", tz="UTC"))
        snapshot = pa.table(
            {
                "artwork_id": ids,
                "feature_date": pa.array([day] * rows, pa.date32()),
                "feature_ts": times,
                "created_ts": times,
                "n_view_7d": np.random.default_rng(offset).integers(0, 50, rows),
            }
        )
        write_deltalake(str(root), snapshot, mode="append", partition_by=["feature_date"])


def best_of(read: Callable[[], pa.Table], repeats: int = 5) -> tuple[float, int]:
    read()  # warm: the first read of a process also loads delta-rs and pyarrow's dataset layer
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rows = read().num_rows
        times.append(time.perf_counter() - start)
    return min(times), rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench partition_reads")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows", type=int, default=1682, help="artworks (MovieLens-100k's)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/partition-reads"))
    args = parser.parse_args(argv)
    root = args.dir / f"log-{args.days}x{args.rows}"
    if not root.exists():
        write_log(root, args.days, args.rows)
    # The loop's readers find a feature log by its lake layout: point it at this one.
    layout.feature_log = lambda lake_root, name: str(root)
    from sands.evaluation.challenger import feature_rows_at
    from sands.features.offline import ARTWORK_FEATURES, latest_snapshot
    from sands.lake import delta

    version = delta.current_version(str(root))
    since = datetime.combine(FIRST + timedelta(days=args.days - 14), datetime.min.time(), UTC)
    table = Table("read", "ms (best of 5)", "rows", title=f"{args.days} daily partitions")
    for name, read in [
        ("latest_snapshot", lambda: latest_snapshot(str(root), "artwork_id")[0]),
        ("feature_rows_at, 14 days", lambda: feature_rows_at(ARTWORK_FEATURES, "", version, since)),
    ]:
        seconds, rows = best_of(read)
        table.add_row(name, f"{seconds * 1000:.0f}", f"{rows:,}")
    Console().print(table)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
