"""DuckDB sessions: UTC, and what one registers or creates is invisible to another."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest

from sands.engines import duck


def test_sessions_keep_their_tables_and_views_apart():
    first, second = duck.connect(), duck.connect()
    first.register("events", pa.table({"n": [1, 2]}))
    second.register("events", pa.table({"n": [10]}))
    first.execute("create temp view doubled as select n * 2 as n from events")
    assert first.execute("select sum(n) from doubled").fetchone() == (6,)
    assert second.execute("select sum(n) from events").fetchone() == (10,)
    with pytest.raises(duckdb.CatalogException):
        second.execute("select * from doubled")


def test_a_session_reads_and_returns_timestamps_in_utc():
    con = duck.connect()
    stamp = con.execute("select timestamptz '2026-09-01 23:30:00+02:00'").fetchone()[0]
    assert stamp == datetime(2026, 9, 1, 21, 30, tzinfo=UTC)


def test_a_forked_child_opens_its_own_database():
    duck.connect()
    parent = duck._database
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        ok = False
        try:
            con = duck.connect()
            ok = duck._database[1] is not parent[1] and con.execute("select 1").fetchone() == (1,)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
