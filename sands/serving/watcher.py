"""Keeps a service's snapshot current: polls the registry and the lake, rebuilds what moved off
the request path, and swaps the reference (requests in flight keep the snapshot they started on).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import UTC, datetime

import pyarrow as pa

from sands.lake import delta
from sands.models.aliases import CHALLENGER, CHAMPION
from sands.models.registry import Registry
from sands.monitoring.online_quality import figures_uri, latest_figures
from sands.serving.snapshot import (
    ArmModel,
    ServingData,
    ServingSnapshot,
    data_versions,
    load_serving_data,
)

log = logging.getLogger(__name__)


class SnapshotWatcher:
    """Holds the current snapshot and replaces it when the registry or the lake moves."""

    def __init__(
        self, registry: Registry, lake_root: str, storage_options: dict[str, str], poll: float
    ) -> None:
        self.registry = registry
        self.lake_root = lake_root
        self.storage_options = storage_options
        self.poll = poll
        self.snapshot: ServingSnapshot | None = None
        self.swaps = 0
        self.checked_at: float | None = None  # unix time of the last refresh that read everything
        self.last_error: str | None = None
        # The newest online quality figures (`online_performance`) and their table's version.
        self.figures: pa.Table | None = None
        self._figures_version = -1
        self._models: dict[int, ArmModel] = {}
        self._lock = threading.Lock()  # one refresh at a time (watcher and admin reload)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-watcher", daemon=True)

    def _model(self, version: int | None) -> ArmModel | None:
        if version is None:
            return None
        if version not in self._models:
            registered = self.registry.version(version).creation_timestamp
            self._models[version] = ArmModel.of(
                version,
                self.registry.load_ranker(version),
                datetime.fromtimestamp(registered / 1000, UTC) if registered else None,
            )
        return self._models[version]

    def _data(self) -> ServingData:
        current = self.snapshot.data if self.snapshot else None
        if current is not None and current.versions == data_versions(
            self.lake_root, self.storage_options
        ):
            return current
        return load_serving_data(self.lake_root, self.storage_options)

    def refresh(self) -> bool:
        """Build and swap in a new snapshot if anything changed; True if it swapped."""
        with self._lock:
            aliases, share, policy = self.registry.serving_state()
            champion = self._model(aliases.get(CHAMPION))
            challenger = self._model(aliases.get(CHALLENGER))
            data = self._data()
            self.checked_at = time.time()
            old = self.snapshot
            if (
                old is not None
                and old.data is data
                and old.champion is champion
                and old.challenger is challenger
                and old.canary_share == share
                and old.policy == policy
            ):
                return False
            self.snapshot = ServingSnapshot(data, champion, challenger, share, policy)
            self.swaps += 1
            # The snapshot lives until the next swap: keep the garbage collector from walking
            # its millions of objects on every full collection (a p99 spike each time). Thaw,
            # collect and freeze again, so cycles left by the old snapshot are still freed.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            # Only the serving versions stay loaded.
            keep = {m.version for m in (champion, challenger) if m is not None}
            self._models = {v: m for v, m in self._models.items() if v in keep}
            return True

    def refresh_figures(self) -> bool:
        """Re-read the online quality figures if their table moved; True if it did."""
        uri = figures_uri(self.lake_root)
        table = delta.open_table(uri, self.storage_options)
        version = -1 if table is None else table.version()
        if version == self._figures_version:
            return False
        self.figures = latest_figures(uri, self.storage_options)
        self._figures_version = version
        return True

    def _figures(self) -> None:
        try:
            self.refresh_figures()
        except Exception:  # monitoring only: serving never waits or fails on it
            log.warning("could not read the online quality figures", exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.refresh()
                self.last_error = None
            except Exception as error:  # keep serving the last good snapshot
                self.last_error = f"{type(error).__name__}: {error}"
            self._figures()

    def start(self) -> None:
        try:
            self.refresh()
        except Exception as error:  # nothing to serve yet: not ready, keep polling
            self.last_error = f"{type(error).__name__}: {error}"
        self._figures()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
