"""Writer locks: one process at a time writes a lake location (fcntl, released when it dies).

A local lake keeps the lock file beside the location, so every process writing it shares it. An
object-store lake keeps it under `SANDS_HOME/locks`: processes on one host share it, pods on
other hosts do not (writers guard against those with a post-commit check, `sands.ingest.bronze`).
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sands.settings import SandsPaths, is_uri


def lock_file(location: str) -> Path:
    """The lock file of a lake location (a table or a folder of tables)."""
    if not is_uri(location):
        path = Path(location)
        return path.parent / f".{path.name}.lock"
    digest = hashlib.sha256(location.rstrip("/").encode()).hexdigest()[:16]
    return Path(SandsPaths.from_env().home, "locks", f"{digest}.lock")


@contextmanager
def exclusive(location: str) -> Iterator[None]:
    """Hold the location's lock for the block, waiting while another writer holds it."""
    path = lock_file(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Each open() is its own lock holder, so threads of one process exclude each other too.
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
