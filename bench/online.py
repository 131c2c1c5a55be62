"""Online feature lookups: single-id latency and refresh throughput, embedded SQLite vs Redis.

Peer: the same store interface on a real local redis-server (the production backend), measured in
the same run on the same 50,000 vectors of 40 features.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from sands.features.online_store import OnlineStore, RedisOnlineStore, SqliteOnlineStore
from sands.serving.process import free_port


def vectors(entities: int, features: int, seed: int = 0) -> pa.Table:
    """`entities` rows of `features` float features keyed by user_id."""
    rng = np.random.default_rng(seed)
    columns = {"user_id": [f"u{i:07d}" for i in range(entities)]}
    columns |= {f"f{j}": rng.random(entities) for j in range(features)}
    return pa.table(columns)


def start_redis() -> tuple[subprocess.Popen | None, str | None]:
    """A throwaway redis-server on a free port, or (None, None) if it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    server.kill()
    return None, None


def _latencies(store: OnlineStore, ids: list[str], batch: int, lookups: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    timings = np.empty(lookups)
    for i in range(lookups):
        wanted = [ids[j] for j in rng.integers(0, len(ids), batch)]
        begin = time.perf_counter()
        store.get("user_features", wanted)
        timings[i] = time.perf_counter() - begin
    return timings * 1e6


def measure(store: OnlineStore, rows: pa.Table, lookups: int) -> dict[str, float]:
    """Refresh throughput, and lookup latency (µs) for one id and for 50 ids per call."""
    start = time.perf_counter()
    store.write("user_features", "user_id", rows)
    refresh = time.perf_counter() - start
    ids = rows.column("user_id").to_pylist()
    one = _latencies(store, ids, 1, lookups)
    fifty = _latencies(store, ids, 50, max(lookups // 10, 100))
    return {
        "refresh_rows_per_s": rows.num_rows / refresh,
        "p50_us": float(np.percentile(one, 50)),
        "p99_us": float(np.percentile(one, 99)),
        "p50_50_us": float(np.percentile(fifty, 50)),
    }


def run(entities: int, features: int, lookups: int) -> Table:
    """Measure both stores on the same vectors."""
    rows = vectors(entities, features)
    table = Table(
        "store",
        "refresh rows/s",
        "1 id: p50 µs",
        "1 id: p99 µs",
        "50 ids: p50 µs",
        "1-id p50 vs Redis",
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteOnlineStore(Path(tmp, "online.sqlite"))
        results["SQLite (embedded)"] = measure(sqlite, rows, lookups)
        sqlite.close()
    server, url = start_redis()
    if server is not None and url is not None:
        try:
            redis = RedisOnlineStore(url)
            results["peer: Redis (local server)"] = measure(redis, rows, lookups)
            redis.close()
        finally:
            server.terminate()
    peer = results.get("peer: Redis (local server)", {}).get("p50_us")
    for name, figures in results.items():
        table.add_row(
            name,
            f"{figures['refresh_rows_per_s']:,.0f}",
            f"{figures['p50_us']:.1f}",
            f"{figures['p99_us']:.1f}",
            f"{figures['p50_50_us']:.1f}",
            f"{figures['p50_us'] / peer:.2f}x" if peer else "Redis not installed",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args(argv or [])
    Console().print(run(args.entities, args.features, args.lookups))
