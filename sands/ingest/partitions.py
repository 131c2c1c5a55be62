"""Which days the daily partitions cover: worked out from the landing zone, in one place.

The start is `SANDS_PARTITIONS_START` when it is set, otherwise the earliest
`interactions/<YYYY-MM-DD>/` day of the landing zone (plus any days about to land, for a replay
or a played scenario), otherwise, for an empty landing zone, `EMPTY_LANDING_START`. The range
stays open (through today, UTC) so live drops keep finding their partition, unless it is a
closed history (a replay) or its last day lies after today; then it ends on its last day.
Dagster's `DailyPartitionsDefinition` is built from this in `assets/ingestion.py`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sands.ingest import landing
from sands.ingest.contract import INTERACTIONS
from sands.settings import PARTITIONS_START_VAR, SandsPaths, SettingError, partitions_start

# An empty landing zone (a fresh home, `dagster dev` before any drop, tests that build the code
# location first) starts on the simulator's default first day, so `sands simulate` into a running
# `dagster dev` needs no reload. Real history is covered by the landing-derived start instead.
EMPTY_LANDING_START = date(2026, 9, 1)


class PartitionsError(SettingError):
    """A landing day the daily partitions do not hold; the message is one line."""


@dataclass(frozen=True)
class PartitionRange:
    """The days the daily partitions cover: `start` to `end` (inclusive), or to today when open."""

    start: date
    end: date | None = None
    origin: str = "the first landing day"

    def last(self, today: date | None = None) -> date:
        return self.end or today or datetime.now(UTC).date()

    def covers(self, day: date, today: date | None = None) -> bool:
        return self.start <= day <= self.last(today)

    def require(self, days: Iterable[date], today: date | None = None) -> None:
        """Fail at once, in one line naming `SANDS_PARTITIONS_START`, on the first day outside."""
        for day in sorted(set(days)):
            if not self.covers(day, today):
                raise PartitionsError(outside_message(day, self, today))


def require_before_today(days: Iterable[date], today: date | None = None) -> None:
    """A replay's days must all lie before today (UTC): Dagster hands out no daily partition key
    for a day that has not ended, whatever the range's end, so such a day would silently not run."""
    today = today or datetime.now(UTC).date()
    late = sorted(d for d in days if d >= today)
    if late:
        raise PartitionsError(
            f"{len(late)} day(s) to replay, from {late[0]} on, are not before today ({today}, "
            "UTC): Dagster's daily partitions hold only days that have ended; replay days up to "
            f"{today - timedelta(days=1)}"
        )


def outside_message(day: date, covered: PartitionRange, today: date | None = None) -> str:
    """One line: which day, which range, and what to do about it."""
    if day < covered.start:
        if covered.origin.startswith(PARTITIONS_START_VAR):
            return (
                f"landing day {day} is before {PARTITIONS_START_VAR}={covered.start}: unset "
                f"{PARTITIONS_START_VAR} (the partitions then start at the first landing day) "
                f"or set it to {day} or earlier"
            )
        return (
            f"landing day {day} is before the daily partitions, which start {covered.start} "
            f"({covered.origin}): reload the code location, or set "
            f"{PARTITIONS_START_VAR}={day}"
        )
    return (
        f"landing day {day} is after the last daily partition ({covered.last(today)}); "
        f"{PARTITIONS_START_VAR} moves only the start: reload the code location once it has "
        "landed"
    )


def landing_days(root: str, storage_options: dict[str, str] | None = None) -> list[date]:
    """The `interactions/<YYYY-MM-DD>/` folders of a landing zone (one listing, no file walk)."""
    fs, base = landing.filesystem(root, storage_options)
    folder = posixpath.join(base, INTERACTIONS.name)
    if not fs.exists(folder):
        return []
    fs.invalidate_cache()
    days = (landing.parse_day(posixpath.basename(p.rstrip("/"))) for p in fs.ls(folder, False))
    return sorted(d for d in days if d is not None)


def partition_range(
    days: Iterable[date] = (),
    env: dict[str, str] | None = None,
    *,
    closed: bool = False,
    today: date | None = None,
) -> PartitionRange:
    """The range for landing `days`; `closed` ends it on the last day (a recorded history)."""
    pinned = partitions_start(env)
    ordered = sorted(set(days))
    if pinned is not None:
        start, origin = pinned, f"{PARTITIONS_START_VAR}={pinned}"
    elif ordered:
        start, origin = ordered[0], "the first landing day"
    else:
        start, origin = EMPTY_LANDING_START, "the default for an empty landing zone"
    today = today or datetime.now(UTC).date()
    end = None
    if ordered and (closed or ordered[-1] > today):
        end = max(ordered[-1], start)
    return PartitionRange(start, end, origin)


def home_partition_range(
    paths: SandsPaths | None = None,
    env: dict[str, str] | None = None,
    upcoming: Iterable[date] = (),
    closed: bool = False,
) -> PartitionRange:
    """The range for the home's landing zone, plus `upcoming` days that are about to land."""
    paths = paths or SandsPaths.from_env(env)
    days = [*landing_days(paths.landing, paths.storage_options), *upcoming]
    return partition_range(days, env, closed=closed)
