"""Delta tables cross engines both ways: delta-rs writes, Spark (delta-spark) reads, time-travels
and MERGEs; Spark writes, delta-rs reads, time-travels and MERGEs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from sands.engines.spark import SparkSettings, java_available, spark_session
from sands.lake import delta
from sands.lake.timetravel import commit_times, read_as_of

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        not java_available(),
        reason="no JVM on this machine: Spark needs Java 17 (JAVA_HOME or PATH)",
    ),
]

SCHEMA = pa.schema([("user_id", pa.string()), ("n", pa.int64()), ("updated_ts", pa.int64())])


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    session = spark_session(SparkSettings.from_env())
    yield session
    session.stop()


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.select(["user_id", "n"]).to_pylist())


def _spark_rows(frame) -> list[tuple]:
    return sorted((r["user_id"], r["n"]) for r in frame.select("user_id", "n").collect())


def test_spark_reads_and_time_travels_a_delta_rs_table(spark, tmp_path: Path) -> None:
    uri = str(tmp_path / "users")
    delta.upsert(
        uri,
        pa.table({"user_id": ["u1", "u2"], "n": [1, 2], "updated_ts": [1, 1]}, schema=SCHEMA),
        "user_id",
        "updated_ts",
    )  # v1 (v0: create)
    time.sleep(2)  # keep the two commits' times well apart (see `at` below)
    delta.upsert(
        uri,
        pa.table({"user_id": ["u2", "u3"], "n": [20, 3], "updated_ts": [2, 2]}, schema=SCHEMA),
        "user_id",
        "updated_ts",
    )  # v2: MERGE
    latest = spark.read.format("delta").load(uri)
    assert _spark_rows(latest) == [("u1", 1), ("u2", 20), ("u3", 3)]
    first = spark.read.format("delta").option("versionAsOf", 1).load(uri)
    assert _spark_rows(first) == [("u1", 1), ("u2", 2)]
    # Spark times a version by its log file's modification time, which on a loaded machine lags
    # the commit info's timestamp that delta-rs records: ask for a moment between v1 and v2.
    at = (commit_times(uri)[1] + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    then = spark.read.format("delta").option("timestampAsOf", at).load(uri)
    assert _spark_rows(then) == [("u1", 1), ("u2", 2)]


def test_delta_rs_reads_time_travels_and_merges_a_spark_table(spark, tmp_path: Path) -> None:
    from delta.tables import DeltaTable as SparkDeltaTable

    uri = str(tmp_path / "spark_users")
    data = spark.createDataFrame(
        [("u1", 1, 1), ("u2", 2, 1)], "user_id string, n long, updated_ts long"
    )
    data.write.format("delta").save(uri)  # v0
    updates = spark.createDataFrame(
        [("u2", 20, 2), ("u3", 3, 2)], "user_id string, n long, updated_ts long"
    )
    (
        SparkDeltaTable.forPath(spark, uri)
        .alias("t")
        .merge(updates.alias("s"), "t.user_id = s.user_id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )  # v1: Spark's MERGE
    assert _rows(read_as_of(uri, version=1)[0]) == [("u1", 1), ("u2", 20), ("u3", 3)]
    assert _rows(read_as_of(uri, version=0)[0]) == [("u1", 1), ("u2", 2)]
    assert read_as_of(uri, when=datetime.now(UTC))[1] == 1
    # delta-rs MERGEs into the Spark-written table; Spark sees the result.
    outcome = delta.upsert(
        uri,
        pa.table({"user_id": ["u1", "u4"], "n": [10, 4], "updated_ts": [3, 3]}, schema=SCHEMA),
        "user_id",
        "updated_ts",
    )
    assert outcome.version == 2
    merged = spark.read.format("delta").load(uri)
    assert _spark_rows(merged) == [("u1", 10), ("u2", 20), ("u3", 3), ("u4", 4)]
    history = spark.sql(f"describe history delta.`{uri}`").select("version", "operation").collect()
    assert [(r["version"], r["operation"]) for r in sorted(history, key=lambda r: r[0])] == [
        (0, "WRITE"),
        (1, "MERGE"),
        (2, "MERGE"),
    ]


def test_settings_come_from_the_environment() -> None:
    settings = SparkSettings.from_env(
        {
            "SANDS_SPARK_MASTER": "spark://head:7077",
            "SANDS_SPARK_JARS": "/jars/delta-spark.jar,/jars/delta-storage.jar",
            "SANDS_SPARK_IVY": "/cache/ivy",
            "SANDS_SPARK_CATALOG": "/state/spark",
            "SANDS_SPARK_CONF": "spark.executor.memory=8g, spark.executor.cores=4",
        }
    )
    assert settings.master == "spark://head:7077"
    assert settings.catalog_dir == "/state/spark"
    assert settings.conf == {"spark.executor.memory": "8g", "spark.executor.cores": "4"}
    assert settings.jars == ("/jars/delta-spark.jar", "/jars/delta-storage.jar")
    assert settings.ivy_dir == "/cache/ivy"
    defaults = SparkSettings.from_env({})
    assert (defaults.master, defaults.catalog_dir, defaults.conf) == ("local[2]", None, {})


def test_seeded_jars_start_spark_offline_from_a_folder(tmp_path: Path) -> None:
    """`sands spark-jars DIR` copies the resolved Delta jars; SANDS_SPARK_JARS=DIR then names
    each jar, so a session needs no resolution (and no network)."""
    from sands.engines.spark import seed_jars

    jars = seed_jars(str(tmp_path / "jars"))
    names = sorted(j.name for j in jars)
    assert any("delta-spark_2.13-4.0" in n for n in names)
    assert any("delta-storage-4.0" in n for n in names)
    settings = SparkSettings.from_env({"SANDS_SPARK_JARS": str(tmp_path / "jars")})
    assert sorted(Path(j).name for j in settings.jars) == names
