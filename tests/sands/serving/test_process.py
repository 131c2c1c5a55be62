"""`sands serve`'s arguments and port: refused in one line before any worker starts."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagster_project.cli import app
from sands.serving.process import ServeError, free_port, listen

runner = CliRunner()


@contextmanager
def held_port(reuse_port: bool) -> Iterator[int]:
    """A port another program listens on (with SO_REUSEPORT, as another `sands serve` does)."""
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def _serve(home: Path, *args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["serve", *args], env={"SANDS_HOME": str(home)})
    return result.exit_code, result.output.strip().splitlines()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "0"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--workers", "-2"], "--workers"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(
    tmp_path: Path, args: list[str], option: str
) -> None:
    code, lines = _serve(tmp_path, *args)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and option in lines[0]


@pytest.mark.parametrize(
    ("port", "workers", "message"),
    [
        (70000, 1, "--port must be between 1 and 65535, not 70000"),
        (8000, 0, "--workers must be at least 1, not 0"),
    ],
)
def test_listen_checks_its_arguments(port: int, workers: int, message: str) -> None:
    with pytest.raises(ServeError, match=f"^{message}$"):
        listen("127.0.0.1", port, workers)


@pytest.mark.parametrize("reuse_port", [True, False])
def test_a_port_in_use_is_refused_before_any_worker_binds(reuse_port: bool) -> None:
    with held_port(reuse_port) as port, pytest.raises(ServeError, match="already in use"):
        listen("127.0.0.1", port, 2)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    # Without SO_REUSEPORT on the holder: a regression fails here instead of serving forever.
    with held_port(reuse_port=False) as port:
        code, lines = _serve(tmp_path, "--port", str(port), "--workers", "2")
    assert code == 1
    assert lines == [f"error: 127.0.0.1:{port} is already in use (another sands serve?)"]


def test_listening_sockets_share_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sockets = listen("127.0.0.1", port, 3)
    try:
        assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)] * 3
        with pytest.raises(ServeError, match="already in use"):
            listen("127.0.0.1", port, 1)  # a second server: refused, though it sets SO_REUSEPORT
    finally:
        for s in sockets:
            s.close()


def test_accepted_connections_send_small_responses_without_waiting_for_an_ack() -> None:
    (sock,) = listen("127.0.0.1", free_port(), 1)
    with sock, socket.create_connection(sock.getsockname()):
        accepted, _ = sock.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def _worker(sock: socket.socket) -> None:
    """The first worker to start dies; the others note their pid and serve until stopped."""
    import os
    import signal
    import time
    from pathlib import Path

    first = Path(os.environ["SANDS_TEST_FIRST"])
    try:
        os.close(os.open(first, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        # One sleeper ignores SIGTERM (as under a parent that ignores it): it must be killed.
        if os.environ.get("SANDS_TEST_STUBBORN") and first.with_name("stubborn").exists():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        first.with_name("stubborn").touch()
        first.with_name(f"{first.name}.{os.getpid()}").touch()
        time.sleep(600)
    deadline = time.monotonic() + 120  # die once the two others run, so both must be stopped
    while len(list(first.parent.glob(f"{first.name}.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    raise SystemExit(3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_dead_worker_stops_the_others_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sands.serving.process import free_port, serve

    monkeypatch.setenv("SANDS_TEST_FIRST", str(tmp_path / "first"))
    monkeypatch.setenv("SANDS_TEST_STUBBORN", "1")
    started = time.monotonic()
    with pytest.raises(ServeError, match="exited with code 3; the others were stopped"):
        serve(listen("127.0.0.1", free_port(), 3), target=_worker)
    # The sleeping workers were stopped, not waited for (they sleep 600 s): gone once it raised.
    assert time.monotonic() - started < 300
    sleepers = [int(p.suffix[1:]) for p in tmp_path.glob("first.*")]
    assert len(sleepers) == 2 and not [pid for pid in sleepers if _alive(pid)]
