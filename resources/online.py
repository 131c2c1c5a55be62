"""The online feature store serving reads: SQLite embedded, Redis in production."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from sands.features.online_store import OnlineStore, RedisOnlineStore, SqliteOnlineStore


class OnlineStoreResource(ConfigurableResource):
    """Where serving reads the latest feature vectors: SQLite embedded, Redis in production."""

    backend: Literal["sqlite", "redis"] = Field(default="sqlite")
    sqlite_path: str = Field(default="", description="SQLite file (backend sqlite).")
    redis_url: str = Field(default="", description="redis:// URL (backend redis).")

    def open(self) -> OnlineStore:
        """A connection to the configured store."""
        if self.backend == "redis":
            return RedisOnlineStore(self.redis_url)
        return SqliteOnlineStore(self.sqlite_path)
