import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from sands.lake.timetravel import NoVersionAtTime, commit_times, read_as_of, version_at


def commit(uri: str, value: int) -> None:
    write_deltalake(uri, pa.table({"x": [value]}), mode="overwrite")


def set_commit_time(uri: str, version: int, when: datetime) -> None:
    """Rewrite a commit's recorded time (as a slow writer or a copied table would have it)."""
    log = Path(uri, "_delta_log", f"{version:020d}.json")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    for action in lines:
        if "commitInfo" in action:
            action["commitInfo"]["timestamp"] = int(when.timestamp() * 1000)
    log.write_text("\n".join(json.dumps(a) for a in lines) + "\n")


def test_reads_any_version_and_resolves_times_by_commit_info_not_file_times(tmp_path):
    uri = str(tmp_path / "t")
    base = datetime(2026, 9, 1, tzinfo=UTC)
    for version in range(3):
        commit(uri, version * 10)
        set_commit_time(uri, version, base + timedelta(days=version))
    # File times say every version was written "now"; only commit info tells the days apart.
    for log in Path(uri, "_delta_log").glob("*.json"):
        os.utime(log)
    assert list(commit_times(uri).values()) == [base + timedelta(days=v) for v in (2, 1, 0)]
    assert version_at(uri, base + timedelta(days=1, hours=12)) == 1
    assert version_at(uri, base + timedelta(days=2)) == 2
    assert version_at(uri, datetime(2026, 9, 1, 6)) == 0  # naive means UTC
    rows, version = read_as_of(uri, when=base + timedelta(days=1, hours=1))
    assert (rows.column("x").to_pylist(), version) == ([10], 1)
    assert read_as_of(uri, version=0)[0].column("x").to_pylist() == [0]


def test_a_time_before_the_first_commit_is_an_error_not_an_empty_table(tmp_path):
    uri = str(tmp_path / "t")
    commit(uri, 1)
    with pytest.raises(NoVersionAtTime):
        version_at(uri, datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="exactly one"):
        read_as_of(uri)
