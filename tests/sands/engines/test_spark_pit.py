"""The Spark point-in-time join gives the embedded join's rows exactly: values, nulls, types and
label order, on the brute-force cases and the hand cases' edge rules (ties, TTL, restatements)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyarrow as pa
import pytest

from sands.engines import spark_pit
from sands.engines.spark import java_available, spark_session
from sands.features import pit
from tests.sands.features.test_pit import TTL, features, labels, random_case, t

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        not java_available(),
        reason="no JVM on this machine: Spark needs Java 17 (JAVA_HOME or PATH)",
    ),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    yield spark_session()


def both(
    spark, feature_rows, label_rows, ttl: timedelta = TTL, snapshots: bool = False
) -> tuple[pa.Table, pa.Table]:
    """(embedded, Spark) joins of the same rows."""
    left, right = labels(label_rows), features(feature_rows)
    embedded = pit.point_in_time_join(left, right, "user_id", ttl, prefix="u_", snapshots=snapshots)
    numbered = left.append_column("__row", pa.array(range(left.num_rows), pa.int64()))
    joined = spark_pit.point_in_time_join(
        spark.createDataFrame(numbered),
        spark.createDataFrame(right),
        "user_id",
        ttl,
        prefix="u_",
        snapshots=snapshots,
    )
    return embedded, joined.orderBy("__row").drop("__row").toArrow()


@pytest.mark.parametrize(
    ("seed", "restated", "snapshots"),
    [(0, True, False), (1, False, False), (1, False, True), (0, True, True)],
    ids=["restated-log", "plain-log", "plain-snapshots", "restated-snapshots"],
)
def test_spark_matches_the_embedded_join_on_random_logs(spark, seed, restated, snapshots):
    embedded, on_spark = both(spark, *random_case(seed, restated), snapshots=snapshots)
    assert on_spark.schema == embedded.schema
    assert on_spark.equals(embedded)
    assert on_spark.column("u_x").null_count > 0  # the TTL and unknown users were exercised


def test_spark_keeps_the_edge_rules(spark):
    rows = [
        ("a", t(1), t(1), 1.0),
        ("a", t(2), t(2), 2.0),
        ("a", t(2), t(5), 999.0),  # day 2 restated on day 5
        ("b", t(1), t(1), 10.0),
    ]
    # a at day 2 (same instant counts), after the restatement, before it; b at the 3-day TTL
    # bound and an hour past it; an unknown user.
    label_rows = [("a", t(2)), ("a", t(5)), ("a", t(3)), ("b", t(4)), ("b", t(4, 1)), ("c", t(2))]
    embedded, on_spark = both(spark, rows, label_rows, ttl=timedelta(days=3))
    assert on_spark.column("u_x").to_pylist() == [2.0, 999.0, 2.0, 10.0, None, None]
    assert on_spark.equals(embedded)
