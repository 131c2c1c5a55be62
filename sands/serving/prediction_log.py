"""The prediction log: every served list, appended to a Delta table in batches off the request path.

`record()` only enqueues; a background thread commits a batch when it holds `batch_rows`
impressions or `flush_seconds` have passed. Each batch is one Delta commit, so a crash (even
kill -9) loses at most the impressions not yet committed and never leaves a torn table.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from sands.lake import delta, layout

# `propensity`: the chance the serving policy put this artwork at this position (1 when it did
# not explore); `explored`: an exploration slot held it (`sands.serving.exploration`).
ITEM = pa.struct(
    [
        ("artwork_id", pa.string()),
        ("position", pa.int32()),
        ("score", pa.float32()),
        ("propensity", pa.float64()),
        ("explored", pa.bool_()),
    ]
)
SCHEMA = pa.schema(
    [
        pa.field("impression_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("items", pa.list_(ITEM), nullable=False),
        pa.field("model_version", pa.int64()),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("served_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("served_date", pa.date32(), nullable=False),
        # How the list was drawn from the ranking ("greedy", or the exploration and its rate);
        # null in logs written before exploration existed, which were greedy.
        pa.field("policy", pa.string()),
        # The Delta versions the serving snapshot was built from (`sources_key`): what lets the
        # log replay the candidates any other model would have ranked. Null before it was logged.
        pa.field("sources", pa.string()),
    ]
)


# How a served list was made: ranked by a model, or the popularity fallback. Logs written before
# 2026-12-05 also hold "segment" (segment favourites, served to users without recent engagement).
RANKED, POPULAR = "ranked", "popularity"
GREEDY = "greedy"  # the policy that serves the ranking's top k as it is


_logger = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Impression:
    """One served list: who saw which artworks, in what order, from which model and arm."""

    impression_id: str
    user_id: str
    artwork_ids: list[str]
    scores: list[float]
    model_version: int | None
    arm: str
    served_ts: datetime
    strategy: str = RANKED  # or the fallback that made the list (POPULAR)
    propensities: list[float] | None = None  # None: every item was certain (greedy)
    explored: list[bool] | None = None
    policy: str = GREEDY
    sources: str | None = None  # `sources_key` of the snapshot that served the list


def sources_key(versions: Mapping[str, int]) -> str:
    """The snapshot's source tables and Delta versions as the log's `sources` column holds them."""
    return ",".join(f"{name}={version}" for name, version in sorted(versions.items()))


def parse_sources(key: str) -> dict[str, int]:
    """`sources_key` read back (ValueError naming the text when it is not one)."""
    try:
        pairs = (item.split("=", 1) for item in key.split(",") if item)
        return {name: int(version) for name, version in pairs}
    except ValueError:
        raise ValueError(f"logged sources {key[:80]!r} are not name=version,...") from None


def impressions_table(batch: list[Impression]) -> pa.Table:
    """Impressions as rows of the log's schema (positions count from 1)."""
    # Built column by column (flat item arrays plus offsets): this runs in the serving process,
    # and per-item Python dicts held the GIL long enough to show in request latency.
    lengths = [len(i.artwork_ids) for i in batch]
    offsets = pa.array([0, *itertools.accumulate(lengths)], pa.int32())
    pairs = list(zip(batch, lengths, strict=True))
    items = pa.StructArray.from_arrays(
        [
            pa.array([a for i in batch for a in i.artwork_ids], pa.string()),
            pa.array([p for n in lengths for p in range(1, n + 1)], pa.int32()),
            pa.array([s for i in batch for s in i.scores], pa.float32()),
            pa.array([p for i, n in pairs for p in i.propensities or [1.0] * n], pa.float64()),
            pa.array([e for i, n in pairs for e in i.explored or [False] * n], pa.bool_()),
        ],
        fields=list(ITEM),
    )
    return pa.table(
        {
            "impression_id": [i.impression_id for i in batch],
            "user_id": [i.user_id for i in batch],
            "items": pa.ListArray.from_arrays(offsets, items, type=pa.list_(ITEM)),
            "model_version": pa.array([i.model_version for i in batch], pa.int64()),
            "arm": [i.arm for i in batch],
            "strategy": [i.strategy for i in batch],
            "served_ts": pa.array([i.served_ts for i in batch], pa.timestamp("us", tz="UTC")),
            "served_date": pa.array([i.served_ts.date() for i in batch], pa.date32()),
            "policy": [i.policy for i in batch],
            "sources": [i.sources for i in batch],
        },
        schema=SCHEMA,
    )


class PredictionLog:
    """Batched, non-blocking appends of impressions to a Delta table partitioned by day.

    A failed commit (the store unreachable, a broken log) keeps its batch and is retried with a
    growing pause; meanwhile impressions queue up to `max_queue` and then are dropped, counted.
    """

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str] | None = None,
        batch_rows: int = 1_000,
        flush_seconds: float = 1.0,
        max_queue: int = 100_000,
        retry_seconds: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.uri = uri
        self.storage_options = storage_options or {}
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.dropped = 0  # impressions refused because the queue was full (never blocks)
        self.committed = 0
        self.failed_commits = 0  # attempts that raised, retried
        self.last_error: str | None = None  # the latest failed attempt's, None once one succeeds
        self.lost = 0  # impressions left uncommitted when the log was closed
        self._pending = 0  # impressions in the batch being committed or retried
        self._give_up_at = math.inf  # set by close(): when a failing commit stops being retried
        self._queue: queue.Queue[Impression] = queue.Queue(maxsize=max_queue)
        self._closing = threading.Event()
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    def record(self, impression: Impression) -> bool:
        """Enqueue an impression; False (and counted as dropped) if the queue is full or the log
        is closing."""
        if self._closing.is_set():
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(impression)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    @property
    def queued(self) -> int:
        """Impressions waiting for the writer (the batch it is building not included)."""
        return self._queue.qsize()

    @property
    def failing(self) -> bool:
        """The latest commit attempt failed: impressions wait in memory until one succeeds."""
        return self.last_error is not None

    def close(self, timeout: float = 20.0) -> int:
        """Commit what is queued and stop the writer, waiting at most `timeout` seconds (a
        failing store must not hold a shutdown forever; Kubernetes kills a pod 30 s after
        SIGTERM); returns the impressions left uncommitted."""
        self._give_up_at = time.monotonic() + timeout
        self._closing.set()
        self._writer.join(timeout + 1.0)
        if self._writer.is_alive():  # a commit attempt still hanging: lost with the process
            self.lost = self._pending + self._queue.qsize()
        return self.lost

    def _run(self) -> None:
        batch: list[Impression] = []
        deadline: float | None = None  # the oldest queued impression waits at most flush_seconds
        while True:
            closing = self._closing.is_set()
            wait = 0.1 if deadline is None else min(max(deadline - time.monotonic(), 0.0), 0.1)
            try:
                batch.append(self._queue.get(timeout=0 if closing else wait))
                deadline = deadline or time.monotonic() + self.flush_seconds
            except queue.Empty:
                if closing:  # everything queued is in the batch
                    if not self._commit_until_done(batch):
                        self.lost = len(batch) + self._queue.qsize()
                    return
            full, due = len(batch) >= self.batch_rows, time.monotonic() >= (deadline or math.inf)
            if batch and (full or due):
                if not self._commit_until_done(batch):  # closing, and the lake still fails
                    self.lost = len(batch) + self._queue.qsize()
                    return
                batch, deadline = [], None

    def _commit_until_done(self, batch: list[Impression]) -> bool:
        """Commit the batch, retrying with a growing pause while it fails (the queue fills
        meanwhile, then drops); False when the log is closing and its deadline has passed."""
        self._pending = len(batch)
        pause, longest = self.retry_seconds
        while batch:
            try:
                self._commit(batch)
                self.last_error = None
                break
            except Exception as error:
                self.failed_commits += 1
                text = " ".join(_ANSI.sub("", str(error)).split())  # delta-rs colours its own
                self.last_error = f"{type(error).__name__}: {text}"[:300]
                _logger.warning("prediction log commit failed, retrying: %s", self.last_error)
                left = self._give_up_at - time.monotonic()
                if left <= 0:
                    return False
                # A close cuts a long pause short; closing, retries run until its deadline.
                if self._closing.is_set():
                    time.sleep(min(pause, left))
                else:
                    self._closing.wait(pause)
                pause = min(pause * 2, longest)
        self._pending = 0
        return True

    def _commit(self, batch: list[Impression]) -> None:
        if not batch:
            return
        write_deltalake(
            self.uri,
            impressions_table(batch),
            mode="append",
            partition_by=["served_date"],
            # Logs written before propensities, the policy and the sources were logged gain nulls.
            schema_mode="merge",
            storage_options=self.storage_options,
        )
        self.committed += len(batch)


def impressions_uri(lake_root: str) -> str:
    """The prediction log's Delta table."""
    return layout.prediction_log(lake_root)


def recent_impressions(
    uri: str, days: int, storage_options: dict[str, str] | None = None
) -> pa.Table:
    """Impressions served on the newest `days` served dates (empty when nothing was served)."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        return SCHEMA.empty_table()
    dataset = table.to_pyarrow_dataset()
    dates = dataset.to_table(columns=["served_date"])["served_date"]
    if len(dates) == 0:
        return SCHEMA.empty_table()
    first = pc.max(dates).as_py() - timedelta(days=days - 1)
    return dataset.to_table(filter=pc.field("served_date") >= first)


def read_impressions(uri: str, storage_options: dict[str, str] | None = None) -> pa.Table:
    """Every committed impression."""
    return DeltaTable(uri, storage_options=storage_options).to_pyarrow_table()


@dataclass(frozen=True)
class LogSummary:
    """What the prediction log holds: its Delta version, rows and served dates."""

    version: int
    rows: int
    first_day: date | None
    last_day: date | None


def log_summary(uri: str, storage_options: dict[str, str] | None = None) -> LogSummary | None:
    """The prediction log at a glance, or None before anything was served."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        return None
    dates = table.to_pyarrow_dataset().to_table(columns=["served_date"])["served_date"]
    first, last = (pc.min(dates).as_py(), pc.max(dates).as_py()) if len(dates) else (None, None)
    return LogSummary(table.version(), len(dates), first, last)
