"""Dagster's SQLite event log with one pooled engine per database, for embedded homes.

Dagster's `SqliteEventLogStorage` builds and disposes an SQLAlchemy engine for every write, and
closing the last connection to a WAL database checkpoints it: a landed small day spent a fifth
of its time there (`docs/benchmarks.md`). This keeps the same files, schema and locking; only
connections live on, and a new run's database is a copy of an initialised empty one instead of
a schema built and stamped by Alembic per run. Kubernetes deployments use Postgres and never
load it.
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import Field, StringSource
from dagster import __version__ as dagster_version
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, NullPool, create_engine

# Engines kept open at once: the index and the shards of the runs in flight. A run's own shard
# is written for its whole life, so a small bound suffices; older ones are closed.
MAX_OPEN_SHARDS = 16


def default_base_dir() -> str:
    """Where Dagster keeps event logs under `DAGSTER_HOME` when none is configured."""
    return os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose per-run and index databases keep their connections open."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        super().__init__(base_dir or default_base_dir(), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        if os.getpid() != self._engines_pid:
            # A forked child must not share the parent's sqlite connections (SQLAlchemy's rule).
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                pool_size=1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            self._engines[shard] = engine
            while len(self._engines) > MAX_OPEN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As the parent's, under its lock (one connection at a time), minus engine churn.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                if shard == INDEX_SHARD_NAME or not self._copy_template(shard):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def template_path(self) -> str:
        """An initialised, empty run database of this Dagster release (its schema's version)."""
        # In a folder of its own: every `*.db` beside the index is taken for a run.
        return os.path.join(self._base_dir, ".template", f"run-{dagster_version}.db")

    def _template(self) -> str:
        path = self.template_path()
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{os.getpid()}.partial"
            engine = create_engine(f"sqlite:///{partial}", poolclass=NullPool)
            self._initdb(engine)
            engine.dispose()
            os.replace(partial, path)
        return path

    def _copy_template(self, shard: str) -> bool:
        """Create a new run's database as a copy of the template; False when it already exists
        (or was created meanwhile by another process), which Dagster's own init then checks."""
        path = self.path_for_shard(shard)
        if os.path.exists(path):
            return False
        partial = f"{path}.{os.getpid()}.partial"
        shutil.copyfile(self._template(), partial)
        try:
            # A link never replaces: whoever creates the file first wins, nothing is overwritten.
            os.link(partial, path)
        except OSError:
            return False
        finally:
            os.unlink(partial)
        return True

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_engines()  # the files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()
