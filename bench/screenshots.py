"""Screenshots of the Dagster UI and an evaluation report after `sands demo`, by headless Chromium.

Runs the default `sands demo` into a temporary SANDS_HOME (or uses `--home`, where it has run),
starts the Dagster webserver on it (`dagster-webserver`, as `sands ui` but without the daemon: the
UI shows what the demo recorded), and saves PNGs of the global asset lineage (every group
expanded), the asset catalog, one partitioned asset's partitions, the runs page and the newest
evaluation report (`$SANDS_HOME/reports/evaluation-v<N>.html`, opened as a file):

    python -m bench.screenshots [--home DIR] [--out docs/img]    # or: make screenshots

Needs Debian's `chromium` (`make screenshots` installs it when root), driven over the DevTools
protocol (`websockets`, which uvicorn[standard] brings): each page is captured once its data
has drawn.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1600, 1200)
SETTLE_SECONDS = 3.0  # after a page's data has drawn: fonts, layout, the graph's zoom
# Name, path and a JavaScript condition that holds once the page has drawn its data.
PAGES = [
    ("asset-catalog", "/assets", "/\\d+ partitions/.test(document.body.innerText)"),
    (
        "asset-partitions",
        "/assets/raw_interactions?view=partitions",
        "/Materialized \\(\\d+\\)/.test(document.body.innerText)",
    ),
    ("runs", "/runs", "/Queued \\(\\d+\\)[^]*Success/.test(document.body.innerText)"),
]
GRAPH_READY = "document.body.innerText.includes('raw_interactions')"
# The community pop-up a local UI shows once, marked seen in the scratch browser profile only.
NO_POPUP = "localStorage.setItem('communityNux', '\"1\"')"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_demo(home: Path, env: dict[str, str]) -> float:
    """`sands demo` on its defaults into `home`; its wall time in seconds."""
    started = time.monotonic()
    command = [sys.executable, "-m", "dagster_project.cli", "demo"]
    subprocess.run(command, env={**env, "SANDS_HOME": str(home)}, check=True, cwd=ROOT)
    return time.monotonic() - started


def wait_http(url: str, seconds: float, process: subprocess.Popen) -> None:
    """Poll `url` until it answers, failing early if `process` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the webserver exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds:.0f} s")


@contextmanager
def webserver(home: Path, env: dict[str, str]) -> Iterator[str]:
    """The Dagster webserver on `home` at a free port (its base URL), stopped with SIGINT."""
    port = free_port()
    env = {**env, "SANDS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    workspace = str(ROOT / "workspace.yaml")
    command = [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-p", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", 300, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(10)


def graphql(url: str, query: str) -> dict:
    """One GraphQL query against the webserver; its data."""
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)["data"]


def graph_path(url: str) -> str:
    """The global asset lineage with every group expanded (the UI folds them when many)."""
    nodes = graphql(url, "{ assetNodes { groupName } }")["assetNodes"]
    groups = sorted({n["groupName"] for n in nodes})
    return "/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups)


class Browser:
    """Headless Chromium driven over the DevTools protocol: navigate, wait, click, capture."""

    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise SystemExit("chromium not found: apt-get install chromium (or make screenshots)")
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        flags += [f"--window-size={SIZE[0]},{SIZE[1]}", "--remote-debugging-port=0"]
        self.process = subprocess.Popen(
            [binary, *flags, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        active = profile / "DevToolsActivePort"  # Chromium writes its port here
        deadline = time.monotonic() + 60
        while len(active.read_text().split() if active.exists() else []) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = active.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = 0
        self.call("Page.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", source=NO_POPUP)
        width, height = SIZE
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def call(self, method: str, **params: object) -> dict:
        """One DevTools command; its result (events in between are dropped)."""
        self.ids += 1
        self.socket.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.ids:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression)["result"].get("value")

    def open(self, url: str, ready: str, seconds: float = 120) -> None:
        """Open `url` and wait until the JavaScript `ready` holds."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + seconds
        while not self.evaluate(f"!!({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: {ready} did not hold within {seconds:.0f} s")
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)

    def box(self, element: str) -> dict[str, float]:
        """The bounding box (x, y, width, height) of the JavaScript `element`."""
        return json.loads(
            str(self.evaluate(f"JSON.stringify(({element}).getBoundingClientRect())"))
        )

    def click(self, x: float, y: float, count: int = 1) -> None:
        """A real mouse click at (x, y): React ignores some synthetic ones."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=count)  # fmt: skip
        time.sleep(SETTLE_SECONDS)

    def click_on(self, element: str) -> None:
        """Click the middle of the JavaScript `element`."""
        box = self.box(element)
        self.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def capture(self, out: Path) -> None:
        """Save the viewport as a PNG."""
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))
        print(f"wrote {out}", flush=True)

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)


def shoot_graph(browser: Browser, url: str, out: Path) -> None:
    """The lineage on the whole window: navigation and asset tree hidden, zoomed to fit."""
    browser.open(url + graph_path(url), GRAPH_READY)
    buttons = "[...document.querySelectorAll('button')]"
    browser.click_on(f"{buttons}.find(b => b.innerText.trim() == 'Hide navigation')")
    browser.click_on("document.querySelector('[aria-label=panel_show_right]').closest('button')")
    # A double click on the background zooms to the graph's width; then out until every asset
    # box (foreignObject) is in view below the toolbar and left of the zoom controls.
    viewport = "document.querySelector('[class*=zoomSliderContainer]').parentElement"
    box = browser.box(viewport)
    browser.click(box["x"] + box["width"] - 80, box["y"] + 120, count=2)
    fits = f"""(() => {{
        const v = {viewport}.getBoundingClientRect();
        return [...{viewport}.querySelectorAll('foreignObject')].every(n => {{
            const r = n.getBoundingClientRect();
            return r.top >= v.top + 60 && r.bottom <= v.bottom && r.left >= v.left
                && r.right <= v.right - 60;
        }});
    }})()"""
    for _ in range(10):
        if browser.evaluate(fits):
            break
        browser.click_on("document.querySelector('[aria-label=zoom_out]').closest('button')")
    browser.capture(out)


def newest_report(home: Path) -> Path:
    """The newest evaluation report the demo wrote."""
    reports = sorted((home / "reports").glob("evaluation-v*.html"), key=lambda p: p.stat().st_mtime)
    if not reports:
        raise SystemExit(f"no evaluation report under {home / 'reports'}: has `sands demo` run?")
    return reports[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a SANDS_HOME where `sands demo` has run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    env = {**os.environ, "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sands-shots-") as scratch:
        home = args.home.resolve() if args.home else Path(scratch, "home")
        if args.home is None:
            print(f"sands demo into {home} (several minutes)", flush=True)
            print(f"sands demo took {run_demo(home, env):.0f} s", flush=True)
        report = newest_report(home)
        browser = Browser(Path(scratch, "chromium"))
        try:
            browser.open(report.as_uri(), "document.readyState == 'complete'")
            browser.capture(args.out / "evaluation-report.png")
            with webserver(home, env) as url:
                shoot_graph(browser, url, args.out / "asset-graph.png")
                for name, path, ready in PAGES:
                    browser.open(url + path, ready)
                    browser.capture(args.out / f"{name}.png")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
