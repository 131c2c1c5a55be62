"""Read a Delta table as it was: at a version, or at a point in time resolved by commit info.

delta-rs's own timestamp loading can go by file modification times, which copying or restoring a
table changes; the commit-info timestamp written into each commit is what the writer saw.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from deltalake import DeltaTable


class NoVersionAtTime(LookupError):
    """The table has no commit at or before the requested time."""


def commit_times(uri: str, storage_options: dict[str, str] | None = None) -> dict[int, datetime]:
    """Every retained version of the table and the UTC time its commit info records."""
    history = DeltaTable(uri, storage_options=storage_options or None).history()
    return {
        int(entry["version"]): datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC)
        for entry in history
        if "timestamp" in entry and "version" in entry
    }


def version_at(uri: str, when: datetime, storage_options: dict[str, str] | None = None) -> int:
    """The highest version committed at or before `when` (naive datetimes are taken as UTC)."""
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    eligible = [v for v, t in commit_times(uri, storage_options).items() if t <= moment]
    if not eligible:
        raise NoVersionAtTime(f"{uri} has no version committed at or before {moment.isoformat()}")
    return max(eligible)


def read_as_of(
    uri: str,
    version: int | None = None,
    when: datetime | None = None,
    columns: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> tuple[pa.Table, int]:
    """The table's rows at `version`, or at the version current at `when`; and that version."""
    if (version is None) == (when is None):
        raise ValueError("give exactly one of version or when")
    resolved = version if version is not None else version_at(uri, when, storage_options)
    table = DeltaTable(uri, version=resolved, storage_options=storage_options or None)
    return table.to_pyarrow_table(columns=columns), resolved
