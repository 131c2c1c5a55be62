"""Serving throughput and latency: `sands serve` against `mlflow models serve` of the same ranker.

The home is the demo's (the default ranker, 35 inputs, about 1,260 artworks). Our endpoint does
the whole job per request: online feature lookups, candidates (about 200), features, scoring, the
top 10 and the prediction log. MLflow's server is given the *same* 200 rows of model inputs per
request (`dataframe_split`), so it only scores. Load comes from `wrk` on the same 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dagster_project.cli.ops import SERVE_COMMAND
from sands.features.offline import USER_FEATURES
from sands.models.candidates import USER_HISTORY
from sands.serving.process import free_port, wait_until_ready
from sands.settings import SandsPaths

console = Console()


@dataclass(frozen=True)
class Load:
    """One wrk measurement."""

    name: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    # The server's CPU time (every process of it) per request served: unlike requests/s it does
    # not move with how wrk and the workers happen to share the two cores.
    cpu_ms: float = float("nan")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every live process under it (its workers)."""
    stats = {int(d.name): _stat(int(d.name)) for d in Path("/proc").iterdir() if d.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if stats.get(pid) is not None:
            total += stats[pid][1]
        todo += children.get(pid, [])
    return total


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(name: str, url: str, script: Path, connections: int, seconds: int) -> Load:
    """Run wrk with a Lua request script; requests/s and latency percentiles."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return Load(
        name,
        connections,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _ms(percentile["50"]),
        _ms(percentile["99"]),
        int(errors.group(1)) if errors else 0 + (1 if socket_errors else 0),
        int(re.search(r"(\d+) requests in", out).group(1)),
    )


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    ready: str,
    script: Path,
    args: argparse.Namespace,
) -> list[Load]:
    """Start a server (`command` + a free port), warm it up, and run wrk at each concurrency."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*command, str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_ready(url + ready, server, timeout=300)
        wrk("warm-up", url, script, 8, 3)
        loads = []
        for c in args.connections:
            before = tree_cpu_seconds(server.pid)
            load = wrk(name, url, script, c, args.seconds)
            spent = tree_cpu_seconds(server.pid) - before
            loads.append(replace(load, cpu_ms=1e3 * spent / max(load.requests, 1)))
        return loads
    finally:
        server.terminate()
        server.wait(timeout=60)


def median_load(runs: list[Load], name: str, connections: int) -> Load:
    """The run with the median requests/s among `name`'s runs at `connections`."""
    mine = sorted((r for r in runs if (r.name, r.connections) == (name, connections)), key=rps)
    return mine[(len(mine) - 1) // 2]


def rps(load: Load) -> float:
    return load.rps


def median_cpu_ms(runs: list[Load], name: str, connections: int) -> float:
    """The median server CPU per request among `name`'s runs at `connections`."""
    mine = sorted(r.cpu_ms for r in runs if (r.name, r.connections) == (name, connections))
    return mine[(len(mine) - 1) // 2]


def serving_state(paths: SandsPaths) -> tuple:
    """The home's online store and the snapshot the service would serve from."""
    from resources import build_resources
    from sands.serving.watcher import SnapshotWatcher

    resources = build_resources({"SANDS_HOME": paths.home})
    watcher = SnapshotWatcher(resources["registry"].open(), paths.lake, {}, 60)
    watcher.refresh()
    return resources["online"].open(), watcher.snapshot


def in_process_ratio(paths: SandsPaths, users: list[str], rate: float, rounds: int = 3) -> tuple:
    """Per-request time of `recommend()` without exploration over with it at `rate`: each user
    served both ways back to back (in alternating order) in one process, so the machine's drift
    and the HTTP stack and the split of connections between workers, which make the wrk rows
    vary run to run, cancel out. The throughput ratio, and each side's mean ms per request."""
    import time

    from sands.serving.exploration import Exploration
    from sands.serving.snapshot import recommend

    store, snapshot = serving_state(paths)
    vectors = store.get(USER_FEATURES.name, users)
    histories = store.get(USER_HISTORY, users)
    explore = Exploration(rate=rate)
    spent = {False: 0.0, True: 0.0}
    requests = list(zip(users, vectors, histories, strict=True))
    for user, vector, history in requests:  # warm the per-user segment cache for both sides
        recommend(snapshot, user, vector, history, 10, 200)
    for round_ in range(rounds):
        for i, (user, vector, history) in enumerate(requests):
            for exploring in (False, True) if (i + round_) % 2 else (True, False):
                rng = random.Random(i) if exploring else None
                start = time.perf_counter()
                how = explore if exploring else None
                recommend(snapshot, user, vector, history, 10, 200, how, rng)
                spent[exploring] += time.perf_counter() - start
    n = len(requests) * rounds
    return spent[False] / spent[True], spent[False] / n * 1e3, spent[True] / n * 1e3


def ensure_demo_home(home: Path) -> SandsPaths:
    """A home with the demo's champion (runs `sands demo` once if there is none)."""
    paths = SandsPaths.from_env({"SANDS_HOME": str(home)})
    if not Path(paths.mlflow, "mlflow.db").exists():
        console.print(f"building the demo home in {home} (about a minute)")
        env = {**os.environ, "SANDS_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "dagster_project.cli", "demo"], env=env, check=True)
    return paths


def ranked_users_and_rows(paths: SandsPaths, users: int) -> tuple[list[str], list[list[float]]]:
    """Users the ranker serves (with history), and one request's 200 model-input rows."""
    store, snapshot = serving_state(paths)
    ids = sorted(snapshot.data.known_users)
    with_history = [
        u for u, h in zip(ids, store.get(USER_HISTORY, ids), strict=True) if h and h["seeds"]
    ][:users]
    from sands.serving.snapshot import candidate_rows

    user = with_history[0]
    vector = store.get(USER_FEATURES.name, [user])[0]
    history = store.get(USER_HISTORY, [user])[0]
    data = snapshot.data
    rows = candidate_rows(data, vector, history["seeds"], set(history["converted"]), 200)
    rows = snapshot.champion.inputs(vector, data.catalogue, rows)
    return with_history, rows.tolist()


def _scripts(folder: Path, users: list[str], rows: list[list[float]], names: list[str]) -> tuple:
    ids = folder / "users.txt"
    ids.write_text("\n".join(users))
    ours = folder / "ours.lua"
    ours.write_text(
        f'local users = {{}}\nfor line in io.lines("{ids}") do users[#users + 1] = line end\n'
        "request = function()\n"
        '  return wrk.format("GET", "/recommendations/" .. users[math.random(#users)] .. "?k=10")\n'
        "end\n"
    )
    body = json.dumps({"dataframe_split": {"columns": names, "data": rows}})
    (folder / "body.json").write_text(body)
    theirs = folder / "mlflow.lua"
    theirs.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{folder / "body.json"}")\nwrk.body = f:read("*a")\nf:close()\n'
        'request = function() return wrk.format(nil, "/invocations") end\n'
    )
    return ours, theirs


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench serving")
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir(), "sands-bench-serving")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--exploration-rate",
        type=float,
        default=0.1,
        help="also serve with slot exploration at this rate (0: skip), in the same run",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="servers started per side of the exploration comparison, alternating; the median "
        "counts (each start splits the connections between workers anew)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    paths = ensure_demo_home(Path(args.home))
    users, rows = ranked_users_and_rows(paths, 2_000)
    from sands.models.ranking import feature_names

    names = feature_names(len(rows[0]) - len(feature_names(0)))
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    ours_lua, mlflow_lua = _scripts(work, users, rows, names)
    env = {**os.environ, "SANDS_HOME": paths.home}
    ours = [*SERVE_COMMAND, "--workers", str(args.workers), "--port"]
    theirs = [sys.executable, "-m", "mlflow", "models", "serve", "-m"]
    theirs += ["models:/sands-ranker@champion", "--env-manager", "local"]
    theirs += ["-w", str(args.workers), "-p"]
    # MLflow execs `uvicorn` by name: the venv's bin must be on PATH.
    mlflow_env = {
        **env,
        "MLFLOW_TRACKING_URI": paths.mlflow_tracking_uri,
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    }
    exploring = f"sands serve, exploration {args.exploration_rate:g}"
    explore_env = {**env, "SANDS_SERVE_EXPLORATION_RATE": str(args.exploration_rate)}
    sides = [("sands serve", env)] + ([(exploring, explore_env)] if args.exploration_rate else [])
    runs: list[Load] = []
    for _ in range(max(args.repeats, 1) if args.exploration_rate else 1):
        for name, side_env in sides:
            runs += measure(name, ours, side_env, "/v2/health/ready", ours_lua, args)
    results = [median_load(runs, name, c) for name, _ in sides for c in args.connections]
    results += measure("mlflow models serve", theirs, mlflow_env, "/ping", mlflow_lua, args)
    if len(runs) > len(results):
        console.print(
            "requests/s per server start: "
            + "; ".join(
                f"{name} at {c}: "
                + ", ".join(f"{r.rps:,.0f}" for r in runs if (r.name, r.connections) == (name, c))
                for name, _ in sides
                for c in args.connections
            )
        )

    table = Table(title=f"Serving, {args.workers} workers, wrk on the same machine")
    columns = ("server", "connections", "requests/s", "p50 ms", "p99 ms", "errors", "CPU ms/req")
    for column in columns:
        table.add_column(column)
    for r in results:
        table.add_row(
            r.name,
            str(r.connections),
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.cpu_ms:.2f}",
        )
    console.print(table)
    for c in args.connections:
        a = next(r for r in results if r.name == "sands serve" and r.connections == c)
        b = next(r for r in results if r.name == "mlflow models serve" and r.connections == c)
        console.print(
            f"{c} connections: sands serve {a.rps / b.rps:.1f}x the requests/s of mlflow models "
            f"serve; p99 {a.p99_ms:.1f} vs {b.p99_ms:.1f} ms"
        )
        if args.exploration_rate:
            e = next(r for r in results if r.name == exploring and r.connections == c)
            console.print(
                f"{c} connections: with exploration {e.rps / a.rps:.2f}x the requests/s without "
                f"(target >= 0.90); p99 {e.p99_ms:.1f} vs {a.p99_ms:.1f} ms"
            )
            off, on = (median_cpu_ms(runs, n, c) for n in ("sands serve", exploring))
            console.print(
                f"{c} connections: server CPU per request {off:.2f} ms without exploration, "
                f"{on:.2f} with (medians of {args.repeats} starts): {off / on:.2f}x the requests "
                "per CPU-second, the throughput of a saturated server (target >= 0.90)"
            )
    if args.exploration_rate:
        ratio, off_ms, on_ms = in_process_ratio(paths, users[:1_000], args.exploration_rate)
        console.print(
            f"in process, 1,000 users x 3, each served both ways back to back: {off_ms:.2f} ms "
            f"per request without exploration, {on_ms:.2f} with: throughput {ratio:.2f}x "
            "(target >= 0.90)"
        )
