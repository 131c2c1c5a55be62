"""What serving could have shown each logged list's user: the candidates a model ranks there and
the popularity list it falls back to, rebuilt from the snapshot sources the log recorded.

Serving never ranks the full catalogue: it ranks ~200 candidates (`sands.models.candidates`) from
the neighbours, segment favourites and popularity of its snapshot and the user's recent history.
An off-policy target recomputed over the full catalogue is not what it would serve, so its lists
are recomputed over these candidates instead. The snapshot's tables are read at the Delta versions
the log names; the user's history is rebuilt from the events before the served day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import DeltaError

from sands.models.candidates import CandidateSpec, user_histories
from sands.serving.prediction_log import parse_sources
from sands.serving.snapshot import ServingData, candidate_ids, popular_fallback

History = tuple[list[str], set[str]]  # (seeds, converted) of one user


class ServedCandidates:
    """Candidates and popularity lists per (snapshot sources, day, user), snapshots loaded once."""

    def __init__(
        self,
        load: Callable[[Mapping[str, int]], ServingData],
        events: pa.Table,
        spec: CandidateSpec = CandidateSpec(),
    ) -> None:
        self._load = load
        self._events = events
        self.spec = spec
        self._data: dict[str, ServingData | None] = {}
        self._histories: dict[date, dict[str, History]] = {}
        self.unreadable: dict[str, str] = {}  # sources that could not be loaded, and why

    def data(self, sources: str) -> ServingData | None:
        """The snapshot, or None when the log's text is garbled or a version is gone (vacuumed)."""
        if sources not in self._data:
            try:
                self._data[sources] = self._load(parse_sources(sources))
            except (ValueError, OSError, DeltaError) as error:
                self.unreadable[sources] = str(error).splitlines()[0] if str(error) else repr(error)
                self._data[sources] = None
        return self._data[sources]

    def readable(self, sources: str | None) -> bool:
        return sources is not None and self.data(sources) is not None

    def histories(self, day: date) -> dict[str, History]:
        """Each user's seeds and conversions from the `recent_days` of events before `day`."""
        if day not in self._histories:
            start = datetime.combine(day, time(), UTC)
            ts = self._events["event_ts"]
            window = pc.and_(
                pc.less(ts, pa.scalar(start, ts.type)),
                pc.greater_equal(
                    ts, pa.scalar(start - timedelta(days=self.spec.recent_days), ts.type)
                ),
            )
            rows = user_histories(self._events.filter(window), self.spec.seeds)
            self._histories[day] = {
                user: (list(seeds), set(converted))
                for user, seeds, converted in zip(
                    rows["user_id"].to_pylist(),
                    rows["seeds"].to_pylist(),
                    rows["converted"].to_pylist(),
                    strict=True,
                )
            }
        return self._histories[day]

    def pools(self, sources: str, day: date, users: pa.Table) -> dict[str, set[str]]:
        """The listed candidates of each user in `users` (feature rows as of `day`, columns
        prefixed `user_`, as the evaluation reads them)."""
        data, histories = self._loaded(sources), self.histories(day)
        model = data.segments.model
        ids = users["user_id"].to_pylist()
        segments = model.assign(users, prefix="user_").tolist() if model else [None] * len(ids)
        out: dict[str, set[str]] = {}
        for user, segment in zip(ids, segments, strict=True):
            seeds, converted = histories.get(user, ([], set()))
            out[user] = set(candidate_ids(data, segment, seeds, converted, self.spec.total))
        return out

    def popular(self, sources: str, day: date, users: list[str], k: int) -> dict[str, list[str]]:
        """The popularity list serving falls back to for each user (without their conversions)."""
        data, histories = self._loaded(sources), self.histories(day)
        return {
            user: [a for a, _ in popular_fallback(data, k, histories.get(user, ([], set()))[1])]
            for user in users
        }

    def _loaded(self, sources: str) -> ServingData:
        data = self.data(sources)
        if data is None:
            raise LookupError(f"snapshot {sources!r} unreadable: {self.unreadable[sources]}")
        return data
