"""The training_data job on hand-made bronze and feature logs: PIT examples, pinned versions,
the online store refresh."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from dagster import DagsterInstance, Failure
from deltalake import DeltaTable

from assets.training import TrainingSetConfig
from dagster_project.runner import run_training_data
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES, publish_snapshots
from sands.features.online_store import SqliteOnlineStore
from sands.features.training_store import TRAINING_EXAMPLES
from tests.builders.bronze import write_artworks, write_events

DAY = date(2026, 9, 2)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


def snapshot(key: str, day: int, values: dict[str, float]) -> pa.Table:
    ids = sorted(values)
    return pa.table(
        {
            key: ids,
            "feature_date": pa.array([date(2026, 9, day)] * len(ids), pa.date32()),
            "feature_ts": pa.array([datetime(2026, 9, day + 1)] * len(ids), pa.timestamp("us")),
            "score": [values[i] for i in ids],
        }
    )


def test_training_data_builds_leak_free_examples_pinned_to_versions_and_fills_the_online_store(
    paths,
):
    write_artworks(
        paths.lake,
        [{"artwork_id": a, "created_ts": at(1), "style": "cubism"} for a in ("a1", "a2", "a3")],
    )
    # The day before: u1 looked at a2 twice (the pair input of every a2 row labelled on day 2).
    write_events(
        paths.lake,
        date(2026, 9, 1),
        [("e0", "u1", "a2", "view", at(1, 8), None), ("e00", "u1", "a2", "click", at(1, 9), None)],
    )
    write_events(
        paths.lake,
        DAY,
        [
            ("e1", "u1", "a2", "view", at(2, 9), None),
            ("e2", "u1", "a1", "favourite", at(2, 10), None),
        ],
    )
    users, works = USER_FEATURES.uri(paths.lake), ARTWORK_FEATURES.uri(paths.lake)
    restated = at(20)
    publish_snapshots(users, snapshot("user_id", 1, {"u1": 1.0}), "user_id", restated)
    # Planted leak: day 2's snapshot is stamped at midnight after the label.
    publish_snapshots(users, snapshot("user_id", 2, {"u1": 999.0}), "user_id", restated)
    # And a restatement of day 1, created long after the label.
    publish_snapshots(users, snapshot("user_id", 1, {"u1": 888.0}), "user_id", restated)
    publish_snapshots(
        works, snapshot("artwork_id", 1, {"a1": 5.0, "a2": 6.0, "a3": 7.0}), "artwork_id", restated
    )

    result = run_training_data(DagsterInstance.ephemeral())

    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    examples = DeltaTable(TRAINING_EXAMPLES.uri(paths.lake)).to_pyarrow_table().to_pylist()
    by_pair = {(r["user_id"], r["artwork_id"], r["sample_source"]): r for r in examples}
    positive = by_pair[("u1", "a1", "positive")]
    assert (positive["label"], positive["label_ts"]) == (1, at(2, 10))
    assert (positive["user_score"], positive["artwork_score"]) == (1.0, 5.0)
    # Negatives are uniform catalogue draws at the positive's time (never the positive's own
    # artwork), with the features of the artwork drawn.
    drawn = [r for r in examples if r["sample_source"] == "uniform"]
    assert drawn and all(r["label"] == 0 and r["label_ts"] == at(2, 10) for r in drawn)
    assert {(r["artwork_id"], r["artwork_score"]) for r in drawn} <= {("a2", 6.0), ("a3", 7.0)}
    # The user's events on the artwork before the label's day (not e1, the same day).
    assert positive["pair_engaged_28d"] == 0.0
    assert {(r["artwork_id"], r["pair_engaged_28d"]) for r in drawn} == {("a2", 2.0)}
    assert {r["user_score"] for r in examples} == {1.0}

    versions = {"interactions": 2, "artworks": 1, "user_features": 3, "artwork_features": 1}
    history = DeltaTable(TRAINING_EXAMPLES.uri(paths.lake)).history(1)[0]
    assert json.loads(history["sands.source_versions"]) == versions
    meta = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    assert "| `user_features` | 3 |" in meta["training_examples"]["source_versions"]

    # Serving gets the newest vector (day 2), whatever training may see.
    store = SqliteOnlineStore(paths.online_db)
    assert store.get("user_features", ["u1"])[0]["score"] == 999.0
    assert store.count("artwork_features") == 3
    assert meta["online_features"]["user_features_delta_version"] == 3


def test_a_history_without_positives_fails_in_one_line_and_writes_no_training_set(
    paths, monkeypatch
):
    write_artworks(paths.lake, [{"artwork_id": "a1", "created_ts": at(1), "style": "cubism"}])
    write_events(paths.lake, DAY, [("e1", "u1", "a1", "view", at(2, 9), None)])
    publish_snapshots(
        USER_FEATURES.uri(paths.lake), snapshot("user_id", 1, {"u1": 1.0}), "user_id", at(20)
    )
    publish_snapshots(
        ARTWORK_FEATURES.uri(paths.lake),
        snapshot("artwork_id", 1, {"a1": 1.0}),
        "artwork_id",
        at(20),
    )

    result = run_training_data(DagsterInstance.ephemeral())

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "no favourite or purchase events in the last" in message
    assert "set SANDS_POSITIVE_EVENTS" in message  # the way out, for a view or click log
    assert DeltaTable.is_deltatable(TRAINING_EXAMPLES.uri(paths.lake)) is False

    # A view log labelled on its views: the one viewed pair is the positive.
    monkeypatch.setenv("SANDS_POSITIVE_EVENTS", "view")
    result = run_training_data(DagsterInstance.ephemeral())
    assert result.success
    examples = DeltaTable(TRAINING_EXAMPLES.uri(paths.lake)).to_pyarrow_table()
    positives = examples.filter(pa.compute.equal(examples["label"], 1))
    assert positives.select(["user_id", "artwork_id"]).to_pylist() == [
        {"user_id": "u1", "artwork_id": "a1"}
    ]
    (materialized,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "training_examples"
    ]
    assert materialized.metadata["positive_events"].value == "view"


def test_configured_positive_events_are_event_types_or_the_run_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("SANDS_POSITIVE_EVENTS", "click,purchase")
    assert TrainingSetConfig().positives() == ("click", "purchase")  # the home's setting
    assert TrainingSetConfig(positive_events=["favourite"]).positives() == ("favourite",)
    for bad in ([], ["buy", "view"]):
        with pytest.raises(Failure, match="expected one or more of view, click"):
            TrainingSetConfig(positive_events=bad).positives()
