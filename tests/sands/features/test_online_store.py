"""Online stores, embedded (SQLite) and Redis (a real server), behave the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sands.features.online_store import RedisOnlineStore, SqliteOnlineStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = SqliteOnlineStore(tmp_path / "online.sqlite")
    else:
        url = request.getfixturevalue("redis_url")
        opened = RedisOnlineStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


def vectors(values: dict[str, float]) -> pa.Table:
    ids = sorted(values)
    return pa.table(
        {
            "user_id": ids,
            "feature_ts": pa.array(
                [datetime(2026, 9, 2, tzinfo=UTC)] * len(ids), pa.timestamp("us", tz="UTC")
            ),
            "n_view_7d": [values[i] for i in ids],
            "top_style": ["cubism"] * len(ids),
        }
    )


def test_vectors_round_trip_by_id_with_unknown_ids_as_none(store):
    assert store.write("user_features", "user_id", vectors({"u1": 3.0, "u2": 0.0})) == 2
    found = store.get("user_features", ["u2", "nobody", "u1"])
    assert found[1] is None
    assert found[0] == {
        "user_id": "u2",
        "feature_ts": "2026-09-02 00:00:00+00",
        "n_view_7d": 0.0,
        "top_style": "cubism",
    }
    assert found[2]["n_view_7d"] == 3.0
    assert store.get("user_features", ["u1"])[0]["user_id"] == "u1"


def test_a_refresh_replaces_vectors_and_entities_are_kept_apart(store):
    store.write("user_features", "user_id", vectors({"u1": 3.0}))
    store.write("user_features", "user_id", vectors({"u1": 7.0, "u3": 1.0}))
    store.write("artwork_features", "user_id", vectors({"u1": 100.0}))
    assert [v["n_view_7d"] for v in store.get("user_features", ["u1", "u3"])] == [7.0, 1.0]
    assert store.get("artwork_features", ["u1"])[0]["n_view_7d"] == 100.0
    assert store.count("user_features") == 2
    assert store.count("artwork_features") == 1
