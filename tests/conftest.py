"""Shared fixtures: a throwaway SANDS_HOME, hand-sized landing drops, a local S3 server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sands.ingest import landing
from sands.ingest.contract import PRICE_TYPE
from sands.serving.process import free_port
from sands.settings import SandsPaths

DAY = date(2026, 9, 2)

# `make test` hands whole files to two workers in collection order (`--dist loadfile
# --no-loadscope-reorder`). The longest files go first so that neither worker is left alone
# with one at the end (longest first; seconds measured by `--durations` on 2 cores, 2026-12-01).
SLOWEST_FIRST = (
    "tests/dagster_project/test_scenario.py",  # 360: a taste-shift play
    "tests/assets/test_engine_parity.py",  # 350: the pipeline on Spark
    "tests/assets/test_models.py",  # 190: trainings, evaluations and gates
    "tests/dagster_project/cli/test_cli.py",  # 130: the demo
    "tests/dagster_project/test_partitions.py",  # 125: a replay of a 2019 history
    "tests/sands/serving/test_app.py",  # 100
    "tests/sands/models/test_registry.py",  # 85: an MLflow tracking server
    "tests/assets/test_transform.py",  # 80
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest files first, the rest in collection order."""
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandsPaths:
    """A fresh SANDS_HOME with local landing zone and lake."""
    monkeypatch.setenv("SANDS_HOME", str(tmp_path / "home"))
    for var in ("SANDS_LANDING_URI", "SANDS_LAKE_URI", "SANDS_ENV", "DAGSTER_HOME"):
        monkeypatch.delenv(var, raising=False)
    resolved = SandsPaths.from_env()
    resolved.ensure_local_dirs()
    return resolved


def ts(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def events_table(rows: list[tuple]) -> pa.Table:
    """Interactions from (event_id, user_id, artwork_id, event_type, event_ts, price) tuples."""
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return pa.table(
        {
            "event_id": pa.array(columns[0], pa.string()),
            "user_id": pa.array(columns[1], pa.string()),
            "artwork_id": pa.array(columns[2], pa.string()),
            "event_type": pa.array(columns[3], pa.string()),
            "event_ts": pa.array(columns[4], pa.timestamp("us", tz="UTC")),
            "session_id": pa.array(["s1"] * len(columns[0]), pa.string()),
            "price": pa.array(columns[5], pa.float64()).cast(PRICE_TYPE),
        }
    )


def drop(root: str, relative: str, table: pa.Table | list[dict]) -> str:
    """Write one landing file (typed table, or loosely typed JSON records) and return its path."""
    fs, base = landing.filesystem(root)
    path = f"{base}/{relative}"
    if isinstance(table, pa.Table):
        landing.write_table(fs, path, table)
    else:
        landing.write_records(fs, path, table)
    return path


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A real S3-compatible HTTP server (moto in server mode) with an empty `sands` bucket."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="sands")
    yield env
    server.stop()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port (installed by `make test` from Debian)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.skip("redis-server is not installed (make test installs the Debian package as root)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers_ping(port):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.skip(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)
