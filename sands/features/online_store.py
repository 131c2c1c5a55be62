"""Online feature stores: the latest feature vector per entity, looked up by id at serving time.

`SqliteOnlineStore` is the embedded default (a file, no server); `RedisOnlineStore` is for
production. Both store one JSON document per entity and replace a whole refresh atomically.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from sands.engines import duck

Vector = dict[str, Any]


def documents(rows: pa.Table, key: str) -> list[tuple[str, str]]:
    """(id, JSON document) for each row of a feature table, encoded by DuckDB in bulk."""
    con = duck.connect()
    con.register("vectors", rows)
    return con.sql(f'select cast("{key}" as varchar), to_json(v) from vectors as v').fetchall()


class OnlineStore(Protocol):
    """Latest feature vectors by entity and id."""

    def write(self, entity: str, key: str, rows: pa.Table) -> int: ...

    def get(self, entity: str, ids: Sequence[str]) -> list[Vector | None]: ...

    def count(self, entity: str) -> int: ...

    def close(self) -> None: ...


class SqliteOnlineStore:
    """An online store in one SQLite file; a refresh is one transaction."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        # WAL lets a serving process read while a refresh writes.
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(
            "create table if not exists vectors (entity text, id text, doc text, "
            "primary key (entity, id)) without rowid"
        )

    def write(self, entity: str, key: str, rows: pa.Table) -> int:
        """Insert or replace the vectors in `rows`, keyed by column `key`."""
        with self._db:
            self._db.executemany(
                "insert or replace into vectors (entity, id, doc) values (?, ?, ?)",
                [(entity, i, doc) for i, doc in documents(rows, key)],
            )
        return rows.num_rows

    def get(self, entity: str, ids: Sequence[str]) -> list[Vector | None]:
        """The vectors for `ids`, in order (None for unknown ids)."""
        if len(ids) == 1:
            found = self._db.execute(
                "select id, doc from vectors where entity = ? and id = ?", (entity, ids[0])
            ).fetchall()
        else:
            marks = ",".join("?" * len(ids))
            found = self._db.execute(
                f"select id, doc from vectors where entity = ? and id in ({marks})",
                (entity, *ids),
            ).fetchall()
        docs = dict(found)
        return [json.loads(docs[i]) if i in docs else None for i in ids]

    def count(self, entity: str) -> int:
        return self._db.execute(
            "select count(*) from vectors where entity = ?", (entity,)
        ).fetchone()[0]

    def close(self) -> None:
        self._db.close()


class RedisOnlineStore:
    """An online store in Redis: one string per vector under `<prefix>:<entity>:<id>`."""

    def __init__(self, url: str, prefix: str = "sands", batch: int = 5_000) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        self._batch = batch

    def _key(self, entity: str, entity_id: str) -> str:
        return f"{self._prefix}:{entity}:{entity_id}"

    def write(self, entity: str, key: str, rows: pa.Table) -> int:
        """Set the vectors in MULTI/EXEC batches (each batch lands whole or not at all)."""
        pipe = self._redis.pipeline(transaction=True)
        pending = 0
        for entity_id, doc in documents(rows, key):
            pipe.set(self._key(entity, entity_id), doc)
            pipe.sadd(f"{self._prefix}:{entity}:ids", entity_id)
            pending += 1
            if pending == self._batch:
                pipe.execute()
                pending = 0
        if pending:
            pipe.execute()
        return rows.num_rows

    def get(self, entity: str, ids: Sequence[str]) -> list[Vector | None]:
        """The vectors for `ids`, in order (None for unknown ids)."""
        found = self._redis.mget([self._key(entity, i) for i in ids])
        return [json.loads(doc) if doc is not None else None for doc in found]

    def count(self, entity: str) -> int:
        return int(self._redis.scard(f"{self._prefix}:{entity}:ids"))

    def close(self) -> None:
        self._redis.close()
