"""Replaying a landing zone that already holds a history, one day at a time, as if it were live.

The source uses the landing layout (`interactions/<YYYY-MM-DD>/...`, `users/...`,
`artworks/...`). A day is staged by copying its interaction folder and every reference file
"dated" on or before it into the live landing zone; a reference file is dated by the first
`YYYY-MM-DD` in its name (or its dataset folder's), and undated ones, or ones dated past the
history's last day (an export's date), arrive with the first replayed day.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from sands.ingest import landing
from sands.ingest.contract import ARTWORKS, CONVERSION_EVENTS, INTERACTIONS, USERS

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})")


def file_day(path: str) -> date | None:
    """The first real ISO date in a file's name, else in its folder's (a dataset folder such as
    `users-2024-01-04.parquet/part-0.parquet`), else None."""
    for name in (posixpath.basename(path), posixpath.basename(posixpath.dirname(path))):
        for found in _DATED.finditer(name):
            try:
                return date.fromisoformat(found.group(1))
            except ValueError:
                continue
    return None


def replay_days(available: list[date], start: date | None, days: int | None) -> list[date]:
    """The landing days to replay: from `start` (default: the first), at most `days` of them."""
    chosen = [d for d in sorted(available) if start is None or d >= start]
    if not chosen:
        raise ValueError(
            f"no interaction days in the landing zone from {start}"
            if start
            else "the landing zone holds no interactions/<YYYY-MM-DD>/ folders"
        )
    return chosen[:days] if days else chosen


def gaps(days: list[date]) -> list[tuple[date, date]]:
    """First and last day of each run of days missing between landing days (a clock jump the
    loop makes: date-driven triggers, such as the weekly retrain, see the time go by)."""
    ordered = sorted(set(days))
    return [
        (before + timedelta(days=1), after - timedelta(days=1))
        for before, after in pairwise(ordered)
        if (after - before).days > 1
    ]


def warm_start(available: list[date], warmup_days: int) -> date | None:
    """The first day after `warmup_days` of history, or the first day if there are not enough."""
    ordered = sorted(available)
    return ordered[warmup_days] if len(ordered) > warmup_days else (ordered or [None])[0]


def span(first: date, last: date) -> str:
    """'2003-06-06', or '2003-06-06..2003-06-09'."""
    return str(first) if first == last else f"{first}..{last}"


def relanded(chosen: list[date], landed: list[date], available: list[date]) -> str | None:
    """Why replaying `chosen` into a home whose landing zone holds `landed` would do nothing for
    some of them (their files are in, so no run starts and no day is scored), or None."""
    again = sorted(set(chosen) & set(landed))
    if not again:
        return None
    later = [d for d in available if d > max(landed)]
    go_on = f", or go on from --start {later[0]}" if later else ""
    return (
        f"{span(again[0], again[-1])} already landed in this SANDS_HOME: the loop would have "
        f"nothing new to do on {'it' if len(again) == 1 else 'them'}; replay into an empty "
        f"SANDS_HOME{go_on}"
    )


@dataclass
class ReplaySource:
    """A landing zone with history, staged into a live landing zone day by day."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)
    _staged: set[str] = field(default_factory=set)
    _last: date | None = None  # the history's last landing day, once staging starts

    def _due(self, path: str) -> date:
        """The day a reference file is staged on: its date, or the first day when it has none
        or one past the history (`dated_after`)."""
        day = file_day(path)
        return date.min if day is None or (self._last is not None and day > self._last) else day

    def days(self) -> list[date]:
        """Every landing day with interaction files."""
        fs, root = landing.filesystem(self.root, self.storage_options)
        return sorted({f.day for f in landing.list_files(fs, root, INTERACTIONS) if f.day})

    def event_counts(self, days: list[date]) -> tuple[date | None, Counter[str]]:
        """The first of `days` holding a conversion and its events by type; without one, None
        and the events of every day by type."""
        fs, root = landing.filesystem(self.root, self.storage_options)
        every: Counter[str] = Counter()
        for day in sorted(days):
            found: Counter[str] = Counter()
            for item in landing.list_files(fs, root, INTERACTIONS, day):
                frame = landing.read_file(fs, item.path, item.size).frame
                if "event_type" in frame.columns:
                    counted = frame["event_type"].dropna().astype(str).value_counts()
                    found.update({kind: int(n) for kind, n in counted.items()})
            if set(found) & set(CONVERSION_EVENTS):
                return day, found
            every.update(found)
        return None, every

    def missing_feeds(self) -> list[str]:
        """Reference feeds with no file at all: the loop cannot make features without them."""
        fs, root = landing.filesystem(self.root, self.storage_options)
        return [e.name for e in (USERS, ARTWORKS) if not landing.list_files(fs, root, e)]

    def dated_after(self) -> list[tuple[str, date]]:
        """Reference files whose name carries a date after the history's last day (an export's
        date, not the data's): they arrive with the first replayed day, as undated ones do."""
        fs, root = landing.filesystem(self.root, self.storage_options)
        last = max(self.days(), default=date.max)
        found = [
            (posixpath.relpath(f.path, root), day)
            for entity in (USERS, ARTWORKS)
            for f in landing.list_files(fs, root, entity)
            if (day := file_day(f.path)) is not None and day > last
        ]
        return sorted(found)

    def stage(self, day: date, target: str, target_options: dict[str, str] | None = None) -> int:
        """Copy `day`'s interactions and the reference files due by then into `target`."""
        fs, root = landing.filesystem(self.root, self.storage_options)
        due = landing.list_files(fs, root, INTERACTIONS, day)
        if self._last is None:
            self._last = max(self.days(), default=date.max)
        for entity in (USERS, ARTWORKS):
            due += [
                f
                for f in landing.list_files(fs, root, entity)
                if f.path not in self._staged and self._due(f.path) <= day
            ]
        out_fs, out_root = landing.filesystem(target, target_options)
        for item in due:
            relative = posixpath.relpath(item.path, root)
            landing.put_atomically(
                out_fs, posixpath.join(out_root, relative), fs.cat_file(item.path)
            )
            self._staged.add(item.path)
        return len(due)
