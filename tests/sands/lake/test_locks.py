import fcntl
import subprocess
import sys
from pathlib import Path

from sands.lake import locks

HOLD = """
import fcntl, sys
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def try_lock(location: str) -> bool:
    """Whether the lock is free right now (a non-blocking attempt, released at once)."""
    with open(locks.lock_file(location), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_local_location_locks_beside_itself_and_an_object_store_one_under_sands_home(paths):
    assert locks.lock_file(f"{paths.lake}/bronze") == locks.lock_file(f"{paths.lake}/bronze/")
    assert str(locks.lock_file(f"{paths.lake}/bronze")) == f"{paths.lake}/.bronze.lock"
    remote = locks.lock_file("s3://bucket/lake/bronze")
    assert remote.parent == Path(paths.home, "locks")
    assert remote != locks.lock_file("s3://other/lake/bronze")


def test_the_lock_excludes_other_holders_in_this_process(paths):
    location = f"{paths.lake}/bronze"
    with locks.exclusive(location):
        assert not try_lock(location)  # another open file in this process: threads are excluded
    assert try_lock(location)


def test_a_holder_killed_with_sigkill_releases_the_lock(paths):
    location = f"{paths.lake}/bronze"
    locks.lock_file(location).parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(locks.lock_file(location))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not try_lock(location)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with locks.exclusive(location):
        assert holder.returncode == -9
