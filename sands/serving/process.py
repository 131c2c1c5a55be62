"""`sands serve` processes: the worker launcher (one SO_REUSEPORT socket each, on a port nobody
else holds), a started service to play against (ready when it answers, stopped with SIGTERM so
it commits its prediction log), and simulated users as its HTTP clients."""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path

import httpx
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sands.settings import SandsPaths


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningService:
    """A started `sands serve` and where it listens."""

    url: str
    process: subprocess.Popen
    paths: SandsPaths

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@contextmanager
def running_service(
    paths: SandsPaths,
    serve_command: Sequence[str],
    env: dict[str, str] | None = None,
    ready: str = "/v2/health/ready",
    timeout: float = 120,
) -> Iterator[RunningService]:
    """`serve_command` (a `sands serve` that takes `--port`) over `paths` on a free port until the
    block ends; its output goes to `SANDS_HOME/logs/serve.log`."""
    port = free_port()
    environment = {**os.environ, "SANDS_HOME": paths.home, **(env or {})}
    logs = Path(paths.home, "logs")
    logs.mkdir(parents=True, exist_ok=True)
    command = [*serve_command, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with open(logs / "serve.log", "w") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(url + ready, process, timeout, logs / "serve.log")
            yield RunningService(url, process, paths)
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)


def answers(url: str) -> bool:
    """True when `url` answers 200 now (refused or broken connections: False)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until_ready(
    url: str, process: subprocess.Popen, timeout: float, log: Path | None = None
) -> None:
    """Poll `url` until it answers 200; kill the process and raise (with the log's tail) if it
    exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"{process.args[:4]} did not become ready at {url}\n{tail}")
        time.sleep(0.2)


class ServiceRecommender:
    """The simulator's recommender: asks the service for a user's list at a simulated time."""

    def __init__(self, url: str, k: int = 10) -> None:
        from sands.serving.routes.recommendations import SIMULATED_CLOCK_HEADER

        self.client = httpx.Client(base_url=url, timeout=10)
        self.header = SIMULATED_CLOCK_HEADER
        self.k = k
        self.served = 0
        self.refused = 0  # e.g. users who signed up today, unknown to the service

    def __call__(self, user_id: str, at: datetime) -> list[str]:
        answer = self.client.get(
            f"/recommendations/{user_id}",
            params={"k": self.k},
            headers={self.header: at.isoformat()},
        )
        if answer.status_code != 200:
            self.refused += 1
            return []
        self.served += 1
        return [item["artwork_id"] for item in answer.json()["items"]]


class ServeError(ValueError):
    """`sands serve` cannot start: a bad argument or a port already in use."""


def listen(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening SO_REUSEPORT socket per worker on `host:port`, or ServeError.

    SO_REUSEPORT would let a second server join the port silently (the kernel then splits
    connections between them), so a plain bind probes first: it fails while anything listens.
    """
    if not 1 <= port <= 65535:
        raise ServeError(f"--port must be between 1 and 65535, not {port}")
    if workers < 1:
        raise ServeError(f"--workers must be at least 1, not {workers}")
    try:
        with _socket(host, port, reuse_port=False):
            pass
        # Listening at once: a bound socket that does not listen yet would not stop the probe of a
        # server started while these workers load their models.
        return [_socket(host, port, reuse_port=True, listening=True) for _ in range(workers)]
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(f"{host}:{port} is already in use (another sands serve?)") from None
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def _socket(host: str, port: int, reuse_port: bool, listening: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Accepted connections inherit it: with Nagle's algorithm on, asyncio's loop held each
        # small response 40 ms for the client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # SO_REUSEADDR: a restart may bind while the last run's connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
        sock.bind((host, port))
        if listening:
            sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


# A request's line and headers must all arrive within this of its connection opening (or of the
# answer before it): nginx's client_header_timeout is 60 s, a load balancer's idle one similar.
HEADER_TIMEOUT_SECONDS = 30.0
HEADER_TIMEOUT_ENV = "SANDS_SERVE_HEADER_TIMEOUT_SECONDS"


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request has not shown all its headers
    within `HEADER_TIMEOUT_SECONDS`: uvicorn arms no timer before a first answer, so connections
    that never sent a request were held forever (19,990 of them took the process's 20,000 files
    and its readiness with them)."""

    seconds = HEADER_TIMEOUT_SECONDS
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def serve_app(factory: str, sock: socket.socket) -> None:
    """Run uvicorn on `sock` with the app `factory` builds (`module:function`) until stopped."""
    HeaderDeadline.seconds = float(os.environ.get(HEADER_TIMEOUT_ENV, HEADER_TIMEOUT_SECONDS))
    config = uvicorn.Config(
        factory,
        factory=True,
        log_level="warning",
        access_log=False,
        http=HeaderDeadline,
        # uvloop accepts about one connection per turn of a busy loop: at 128 connections new
        # ones waited up to 10 s (p99 7.8 s); asyncio's loop, same requests/s, p99 0.19 s.
        loop="asyncio",
    )
    uvicorn.Server(config).run(sockets=[sock])


STOP_GRACE_SECONDS = 15.0  # for workers to flush their prediction log after SIGTERM


def serve(sockets: list[socket.socket], target: Callable[[socket.socket], None]) -> None:
    """Run `target` (e.g. `serve_app` with its factory bound) in one process per socket of
    `listen`; ServeError when a worker dies.

    Each worker has its own SO_REUSEPORT socket, so the kernel spreads connections evenly; with
    one shared socket (uvicorn's `--workers`) whichever process accepts first takes most
    keep-alive connections, and measured throughput swung between one and two cores' worth from
    run to run. Each process serves its own /metrics.
    """
    if len(sockets) == 1:
        target(sockets[0])
        return
    spawn = multiprocessing.get_context("spawn")
    children = [spawn.Process(target=target, args=(sock,)) for sock in sockets]
    for child, sock in zip(children, sockets, strict=True):
        child.start()
        sock.close()  # the child holds it now
    stopping = False
    stopped_at = 0.0

    def stop(*_: object) -> None:
        nonlocal stopping, stopped_at
        stopping, stopped_at = True, time.monotonic()
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each flushes its prediction log on the way out

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # A dead worker would leave its share of connections unanswered: all stop, and say so.
    dead = None
    pending = {child.sentinel: child for child in children}
    try:
        while pending:
            for sentinel in wait(list(pending), timeout=1.0):
                child = pending.pop(sentinel)
                if not stopping and dead is None:
                    dead = child
                    stop()
            if stopping and time.monotonic() - stopped_at > STOP_GRACE_SECONDS:
                # SIGTERM can be ignored (a disposition inherited from the parent, a stuck
                # shutdown): a worker still up after the grace period is killed.
                for child in pending.values():
                    child.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for child in children:
        child.join(timeout=10)  # they have exited: reap them, leave no zombies behind
    if dead is not None:
        raise ServeError(
            f"worker {dead.pid} exited with code {dead.exitcode}; the others were stopped"
        )
