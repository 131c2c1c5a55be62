"""Atomic text writes: the old file or the new one, and no temporary left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from sands.lake import files
from sands.lake.files import atomic_write_text


def test_a_write_replaces_the_file_whole(tmp_path):
    target = Path(tmp_path, "dagster.yaml")
    target.write_text("old\n")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dagster.yaml"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = Path(tmp_path, "report.json")
    target.write_text("old\n")

    def broken(source: str, destination: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
