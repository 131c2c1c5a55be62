"""Where a model came from: the code commit and the dbt project state, as short stable strings."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def git_commit(repository: Path = REPOSITORY) -> str:
    """HEAD's commit id, with `-dirty` when tracked files changed; `SANDS_GIT_COMMIT` wins (images
    are built without .git), and `unknown` when neither exists."""
    if os.environ.get("SANDS_GIT_COMMIT"):
        return os.environ["SANDS_GIT_COMMIT"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def dbt_manifest_hash(manifest: Path) -> str:
    """A hash of every node's and macro's checksum in the manifest.

    The manifest file itself changes on every parse (timestamps, invocation ids); the checksums
    change only when a model, test, source or macro does.
    """
    data = json.loads(manifest.read_text())
    parts = []
    for section in ("nodes", "sources", "macros"):
        for unique_id, node in sorted(data.get(section, {}).items()):
            checksum = node.get("checksum", {}).get("checksum") or node.get("macro_sql", "")
            parts.append(f"{unique_id}:{checksum}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
