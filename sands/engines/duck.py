"""In-memory DuckDB connections for pure data functions: UTC, so timestamps come back as stored."""

from __future__ import annotations

import duckdb

Connection = duckdb.DuckDBPyConnection


def connect() -> Connection:
    """A fresh in-memory connection whose session time zone is UTC."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return con
