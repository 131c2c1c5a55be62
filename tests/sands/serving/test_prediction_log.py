"""The prediction log: batched appends off the request path, durable across kill -9."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from sands.serving.prediction_log import (
    GREEDY,
    Impression,
    PredictionLog,
    impressions_table,
    read_impressions,
)

SERVED = datetime(2026, 9, 2, 12, 30, tzinfo=UTC)


def impression(n: int, arm: str = "champion") -> Impression:
    return Impression(f"i{n}", f"u{n % 3}", [f"a{n}", f"a{n + 1}"], [0.9, 0.4], 7, arm, SERVED)


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_served_lists_are_stored_with_positions_scores_version_and_arm(tmp_path):
    uri = str(tmp_path / "log")
    log = PredictionLog(uri, batch_rows=100, flush_seconds=60)
    log.record(impression(1))
    log.record(impression(2, arm="challenger"))
    log.close()
    rows = read_impressions(uri).sort_by("impression_id").to_pylist()
    assert [(r["impression_id"], r["user_id"], r["arm"]) for r in rows] == [
        ("i1", "u1", "champion"),
        ("i2", "u2", "challenger"),
    ]
    certain = {"propensity": 1.0, "explored": False}
    assert rows[0]["items"] == [
        {"artwork_id": "a1", "position": 1, "score": 0.8999999761581421, **certain},
        {"artwork_id": "a2", "position": 2, "score": 0.4000000059604645, **certain},
    ]
    assert rows[0]["model_version"] == 7 and str(rows[0]["served_date"]) == "2026-09-02"
    assert rows[0]["policy"] == GREEDY


def test_a_log_from_before_propensities_gains_them_and_keeps_its_rows(tmp_path):
    uri = str(tmp_path / "log")
    old_item = pa.struct(
        [("artwork_id", pa.string()), ("position", pa.int32()), ("score", pa.float32())]
    )
    old = impressions_table([impression(1)]).drop_columns(["policy", "items"])
    old = old.append_column(
        "items", pa.array([[{"artwork_id": "a1", "position": 1, "score": 0.9}]], pa.list_(old_item))
    )
    write_deltalake(uri, old, partition_by=["served_date"])
    log = PredictionLog(uri, batch_rows=100, flush_seconds=60)
    explored = replace(
        impression(2), propensities=[0.95, 0.0125], explored=[False, True], policy="epsilon"
    )
    log.record(explored)
    log.close()
    rows = {r["impression_id"]: r for r in read_impressions(uri).to_pylist()}
    assert rows["i1"]["policy"] is None and rows["i1"]["items"][0]["propensity"] is None
    assert [i["propensity"] for i in rows["i2"]["items"]] == [0.95, 0.0125]
    assert [i["explored"] for i in rows["i2"]["items"]] == [False, True]
    assert rows["i2"]["policy"] == "epsilon"


def test_a_full_batch_or_an_old_enough_one_is_committed_without_closing(tmp_path):
    uri = str(tmp_path / "log")
    log = PredictionLog(uri, batch_rows=2, flush_seconds=60)
    for n in range(5):
        log.record(impression(n))
    _wait_for(lambda: log.committed == 4)  # two full batches; the fifth waits
    assert DeltaTable(uri).version() == 1  # one commit per batch
    timed = PredictionLog(str(tmp_path / "timed"), batch_rows=1_000, flush_seconds=0.2)
    timed.record(impression(9))
    _wait_for(lambda: timed.committed == 1)
    log.close()
    timed.close()
    assert read_impressions(uri).num_rows == 5


def test_a_failed_commit_keeps_its_batch_and_is_retried_until_one_succeeds(tmp_path):
    blocked = tmp_path / "log"
    blocked.write_text("not a table")  # the lake refuses every commit while this file is there
    log = PredictionLog(str(blocked), batch_rows=1, flush_seconds=60, retry_seconds=(0.05, 0.1))
    log.record(impression(1))
    _wait_for(lambda: log.failed_commits >= 2)
    assert log.failing and log.committed == 0 and log.last_error
    log.record(impression(2))  # queued meanwhile
    blocked.unlink()
    _wait_for(lambda: log.committed == 2)
    assert not log.failing and log.close() == 0
    assert sorted(read_impressions(str(blocked))["impression_id"].to_pylist()) == ["i1", "i2"]


def test_closing_a_log_that_cannot_commit_stops_waiting_and_counts_what_it_lost(tmp_path):
    blocked = tmp_path / "log"
    blocked.write_text("not a table")
    log = PredictionLog(str(blocked), batch_rows=10, flush_seconds=60, retry_seconds=(0.05, 0.1))
    for n in range(3):
        log.record(impression(n))
    started = time.monotonic()
    assert log.close(timeout=0.5) == 3
    assert time.monotonic() - started < 5
    # The writer has stopped retrying, and a closed log takes no more impressions.
    attempts = log.failed_commits
    time.sleep(0.3)
    assert log.failed_commits == attempts
    assert not log.record(impression(9)) and log.dropped == 1


WRITER = """
import sys
import time
from datetime import UTC, datetime
from sands.serving.prediction_log import Impression, PredictionLog
log = PredictionLog(sys.argv[1], batch_rows=50, flush_seconds=0.05)
n = 0
while True:
    log.record(Impression(f"i{n}", "u", ["a", "b", "c"], [3.0, 2.0, 1.0], 1, "champion",
                          datetime.now(UTC)))
    n += 1
    time.sleep(0.001)  # paced like requests, so the writer thread gets the GIL
    if n % 50 == 0:
        print(log.committed, flush=True)
"""


def test_kill_9_loses_at_most_the_unflushed_batch_and_never_corrupts_the_table(tmp_path):
    uri = str(tmp_path / "log")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, uri], stdout=subprocess.PIPE, text=True
    )
    committed = 0
    for line in writer.stdout:
        committed = int(line)
        if committed >= 500:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    table = read_impressions(uri)
    ids = table["impression_id"].to_pylist()
    assert len(ids) >= committed  # everything reported committed survived
    assert len(set(ids)) == len(ids)  # no batch written twice
    assert {len(items) for items in table["items"].to_pylist()} == {3}  # no torn rows
