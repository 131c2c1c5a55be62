"""The chart's Grafana dashboard, its queries rendered against a live Prometheus (not Grafana).

Builds the hand-sized serving home of the tests (tests/builders/serving.py: 30 artworks; here 600
users with features and history instead of 60), starts `sands serve` on it and a local Prometheus
(Debian's `prometheus` binary) scraping it every 5 s, and plays a few minutes of a service's
life:

- traffic from two clients at a slowly varying rate, with a few unknown users (404) and bad `k`
  (422) among the requests;
- at 25 % of the run a challenger is registered and gets 30 % of users through `/admin/canary`;
- at 50 % the day's artwork features land (a data hot swap: feature age drops from 30 h to 1 h);
- at 70 % a new champion is registered and promoted (a model hot swap);
- every 15 s, simulated users click the lists they were served (position-based: an on-taste
  artwork at position k is clicked with probability 0.04/k, another with 0.004/k; a click is a
  purchase one time in four), `sands.monitoring.online_quality.online_report` attributes them
  with a 15 s window (so figures mature within the run; production uses 1 h) and
  `record_figures` stores them as `online_performance` does, for the service to publish as
  `sands_online_*` gauges.

Then every panel's PromQL (helm/sands/dashboards/serving.json; Grafana's `$__rate_interval` as
30 s, `$namespace` as the scrape's `sands`) goes through Prometheus' HTTP API (`query_range`),
and matplotlib draws the panels in the dashboard's layout:

    python -m bench.dashboard_snapshot [--seconds 240] [--out docs/img/serving-dashboard.png]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import random
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import matplotlib
import pyarrow as pa
from deltalake import write_deltalake

from dagster_project.cli.ops import SERVE_COMMAND
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.online_store import SqliteOnlineStore
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import USERS as USERS_TABLE
from sands.models.candidates import USER_HISTORY
from sands.monitoring.online_quality import (
    AttributionSpec,
    OnlineObjective,
    figures_uri,
    online_report,
    record_figures,
)
from sands.serving.prediction_log import impressions_uri, read_impressions
from sands.serving.process import free_port, running_service, wait_until_ready
from sands.settings import SandsPaths
from tests.builders.models import (
    ARTWORK_DEFAULTS,
    STYLES,
    USER_DEFAULTS,
    user_vector,
    vectors_table,
)
from tests.builders.serving import (
    ADMIN_TOKEN,
    ARTWORKS,
    NEW_USER,
    QUIET_USER,
    artwork_vectors,
    build_home,
    register,
    registry_for,
)

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "helm" / "sands" / "dashboards" / "serving.json"
SCRAPE_SECONDS = 5
VARIABLES = {"$__rate_interval": "30s", "$namespace": "sands"}
WINDOW_SECONDS = 15  # attribution window of the simulated clicks
USERS = 600
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#b877d9", "#f2495c", "#8ab8ff"]


def land_artwork_features(paths: SandsPaths, age_hours: float) -> None:
    """A new daily artwork feature build stamped `age_hours` ago (the newest feature date wins)."""
    stamp = datetime.now(UTC) - timedelta(hours=age_hours)
    rows = [
        {**r, "feature_date": stamp.date(), "feature_ts": stamp, "created_ts": stamp}
        for r in artwork_vectors()
    ]
    write_deltalake(
        ARTWORK_FEATURES.uri(paths.lake),
        vectors_table(rows, ARTWORK_DEFAULTS),
        mode="append",
        partition_by=["feature_date"],
    )


def more_users(paths: SandsPaths) -> list[str]:
    """USERS users with feature vectors (the tests' home has 60): each user comes back about every
    30 s rather than every 3 s, so one user's click rarely falls in the window of another list
    they were served. All but the quiet one have two engaged artworks of their taste, so most
    lists are ranked."""
    users = [f"u{i:03d}" for i in range(USERS)]
    stamp = datetime.now(UTC) - timedelta(hours=30)
    vectors = vectors_table(
        [
            {
                **user_vector(u, top_style=STYLES[i % 3], gender=("female", "male")[i % 2]),
                "feature_date": stamp.date(),
                "feature_ts": stamp,
                "created_ts": stamp,
            }
            for i, u in enumerate(users)
        ],
        USER_DEFAULTS,
    )
    engaged = [u for u in users if u != QUIET_USER]
    by_style = {style: ARTWORKS[j::3] for j, style in enumerate(STYLES)}
    seeds = [by_style[STYLES[int(u[1:]) % 3]][i % 5 : 2 + i % 5] for i, u in enumerate(engaged)]
    store = SqliteOnlineStore(paths.online_db)
    store.write(USER_FEATURES.name, "user_id", vectors)
    store.write(
        USER_HISTORY,
        "user_id",
        pa.table({"user_id": engaged, "seeds": seeds, "converted": [[] for _ in engaged]}),
    )
    store.close()
    write_deltalake(
        bronze_uri(paths.lake, USERS_TABLE),
        pa.table({"user_id": [*users, NEW_USER]}),
        mode="overwrite",
    )
    return users


def traffic(url: str, users: list[str], stop: threading.Event, started: float, seed: int) -> None:
    """Requests at 6-16/s per client (a slow wave), 2 % unknown users and 1 % bad `k`."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.02:
                path = "/recommendations/nobody"
            elif roll < 0.03:
                path = f"/recommendations/{rng.choice(users)}?k=0"
            elif roll < 0.05:
                path = f"/recommendations/{NEW_USER}"
            else:
                path = f"/recommendations/{rng.choice(users)}"
            with contextlib.suppress(httpx.TransportError):
                client.get(path)
            elapsed = time.monotonic() - started
            per_second = 11 + 5 * math.sin(elapsed / 40)
            time.sleep(1 / per_second)


def _chance(*parts: str) -> float:
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def simulated_events(impressions: pa.Table, now: datetime) -> pa.Table:
    """Clicks and purchases on served lists (stable per impression), plus a heartbeat at `now`
    that closes every attribution window before it."""
    rows = [("heartbeat", ARTWORKS[0], "view", now)]
    for row in impressions.to_pylist():
        taste = STYLES[int(row["user_id"][1:]) % 3] if row["user_id"] != NEW_USER else None
        for item in row["items"]:
            style = STYLES[ARTWORKS.index(item["artwork_id"]) % 3]
            p = (0.04 if style == taste else 0.004) / item["position"]
            if _chance(row["impression_id"], item["artwork_id"]) < p:
                at = row["served_ts"] + timedelta(seconds=1 + 8 * _chance(row["impression_id"]))
                if at <= now:
                    rows.append((row["user_id"], item["artwork_id"], "click", at))
                    if _chance(row["impression_id"], "buy") < 0.25:
                        rows.append((row["user_id"], item["artwork_id"], "purchase", at))
    users, artworks, kinds, times = zip(*rows, strict=True)
    return pa.table(
        {
            "user_id": list(users),
            "artwork_id": list(artworks),
            "event_type": list(kinds),
            "event_ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )


def measure_online_quality(paths: SandsPaths) -> None:
    """What `online_performance` does, on simulated clicks with a 15 s window."""
    registry = registry_for(paths)
    aliases, _, _ = registry.serving_state()
    impressions = read_impressions(impressions_uri(paths.lake))
    events = simulated_events(impressions, datetime.now(UTC))
    spec = AttributionSpec(window_hours=WINDOW_SECONDS / 3600)
    report = online_report(
        impressions,
        events,
        aliases.get("champion"),
        aliases.get("challenger"),
        spec,
        OnlineObjective(),
    )
    record_figures(figures_uri(paths.lake), report, datetime.now(UTC))


def start_prometheus(binary: str, folder: Path, target: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "5s"},
        "scrape_configs": [
            {
                "job_name": "sands-serving",
                "static_configs": [
                    {"targets": [target], "labels": {"namespace": "sands", "pod": "serving-0"}}
                ],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(folder / "prometheus.log", "w")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url + "/-/ready", process, 60, folder / "prometheus.log")
    return process, url


def play(paths: SandsPaths, service: str, users: list[str], seconds: float) -> None:
    stop, started = threading.Event(), time.monotonic()
    clients = [
        threading.Thread(target=traffic, args=(service, users, stop, started, seed))
        for seed in (1, 2)
    ]
    for client in clients:
        client.start()
    registry = registry_for(paths)
    steps = [
        (0.25, "challenger on 30 % of users"),
        (0.50, "the day's artwork features land"),
        (0.70, "a new champion is promoted"),
    ]
    next_quality = started + WINDOW_SECONDS
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            if steps and elapsed >= steps[0][0] * seconds:
                _, what = steps.pop(0)
                print(f"{elapsed:5.0f} s: {what}")
                if what.startswith("challenger"):
                    register(registry, seed=11, promote=False)
                    httpx.put(f"{service}/admin/canary", json={"share": 0.3}, headers=AUTH)
                elif what.startswith("the day's"):
                    land_artwork_features(paths, age_hours=1)
                else:
                    register(registry, seed=7, promote=True)
            if time.monotonic() >= next_quality:
                measure_online_quality(paths)
                next_quality += WINDOW_SECONDS
            time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()


def query_panels(prometheus: str, start: float, end: float) -> list[dict]:
    """Each panel with its targets' series over [start, end] from Prometheus' query_range."""
    board = json.loads(DASHBOARD.read_text())
    panels = []
    with httpx.Client(base_url=prometheus, timeout=30) as client:
        for panel in board["panels"]:
            series = []
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                answer = client.get(
                    "/api/v1/query_range",
                    params={"query": expr, "start": start, "end": end, "step": SCRAPE_SECONDS},
                ).json()
                if answer["status"] != "success":
                    raise RuntimeError(f"{panel['title']}: {expr}: {answer}")
                for result in answer["data"]["result"]:
                    legend = target.get("legendFormat", "")
                    for name, value in result["metric"].items():
                        legend = legend.replace("{{" + name + "}}", value)
                    points = [(float(t), float(v)) for t, v in result["values"]]
                    series.append((legend.replace("{{pod}}", "").strip(), points))
            panels.append({**panel, "series": series})
    return panels


def _duration(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"), (0.001, "ms")):
        if abs(seconds) >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds * 1000:.2g} ms"


def _formatter(unit: str):
    from matplotlib.ticker import FuncFormatter

    if unit == "percentunit":
        return FuncFormatter(lambda v, _: f"{v * 100:.3g} %")
    if unit == "s":
        return FuncFormatter(lambda v, _: _duration(v))
    if unit == "reqps":
        return FuncFormatter(lambda v, _: f"{v:.3g}/s")
    return FuncFormatter(lambda v, _: f"{v:.3g}")


def draw(panels: list[dict], start: float, out: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) // 8
    figure, axes = plt.subplots(rows, 3, figsize=(19, 4.6 * rows), facecolor=BACKGROUND)
    for panel in panels:
        grid = panel["gridPos"]
        ax = axes[grid["y"] // 8][grid["x"] // 8]
        ax.set_facecolor(PANEL)
        defaults = panel["fieldConfig"]["defaults"]
        for i, (legend, points) in enumerate(panel["series"]):
            x = [(t - start) / 60 for t, _ in points]
            y = [v for _, v in points]
            ax.plot(x, y, color=COLOURS[i % len(COLOURS)], linewidth=1.4, label=legend)
        steps = defaults["thresholds"]["steps"]
        if len(steps) > 1:
            ax.axhline(steps[-1]["value"], color="#f2495c", linestyle="--", linewidth=1)
        values = [v for _, points in panel["series"] for _, v in points if v > 0]
        if defaults["unit"] == "s" and values and max(values) / min(values) > 1000:
            ax.set_yscale("log")
            ticks = [1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400]
            ax.set_yticks([t for t in ticks if min(values) / 3 <= t <= max(values) * 3])
        elif "min" in defaults:
            ax.set_ylim(bottom=defaults["min"])
        ax.yaxis.set_major_formatter(_formatter(defaults["unit"]))
        ax.set_title(panel["title"], color=TEXT, loc="left", fontsize=11)
        ax.tick_params(colors=TEXT, labelsize=8)
        ax.grid(color=GRID, linewidth=0.6)
        for spine in ax.spines.values():
            spine.set_color(GRID)
        ax.set_xlabel("minutes", color=TEXT, fontsize=8)
        if panel["series"]:
            legend = ax.legend(
                fontsize=7,
                facecolor=PANEL,
                edgecolor=PANEL,
                loc="upper left",
                bbox_to_anchor=(0, -0.16),
                ncol=3,
            )
            for text in legend.get_texts():
                text.set_color(TEXT)
        else:
            ax.text(0.5, 0.5, "No data", color=TEXT, ha="center", transform=ax.transAxes)
    figure.suptitle(
        "Shifting Sands: serving. The chart's dashboard queries against a live Prometheus "
        "scraping sands serve (matplotlib, not Grafana)",
        color=TEXT,
        fontsize=13,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80, facecolor=BACKGROUND)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240, help="length of the played run")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "serving-dashboard.png")
    parser.add_argument("--prometheus", default=shutil.which("prometheus"))
    args = parser.parse_args(argv)
    if not args.prometheus:
        raise SystemExit(
            "prometheus not found: apt-get install prometheus (Debian), or --prometheus"
        )
    with tempfile.TemporaryDirectory(prefix="sands-dashboard-") as scratch:
        folder = Path(scratch)
        paths = build_home(folder / "home")
        land_artwork_features(paths, age_hours=30)  # yesterday's build is serving
        users = more_users(paths)
        env = {
            "SANDS_ADMIN_TOKEN": ADMIN_TOKEN,
            "SANDS_SERVE_POLL_SECONDS": "1",
            "SANDS_SERVE_LOG_FLUSH_SECONDS": "1",
            "SANDS_MLFLOW_TRACKING_URI": "",
            "SANDS_REDIS_URL": "",
        }
        with running_service(paths, SERVE_COMMAND, env) as service:
            prometheus, url = start_prometheus(
                args.prometheus, folder, service.url.removeprefix("http://")
            )
            try:
                start = time.time()
                play(paths, service.url, users, args.seconds)
                time.sleep(2 * SCRAPE_SECONDS)  # the last scrapes
                panels = query_panels(url, start, time.time())
            finally:
                prometheus.terminate()
                prometheus.wait(timeout=30)
        draw(panels, start, args.out)
        print(json.dumps({p["title"]: len(p["series"]) for p in panels}, indent=1))


if __name__ == "__main__":
    main()
