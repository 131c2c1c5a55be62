"""The point-in-time join on Spark: the rules of `sands.features.pit`, by sorting instead of an
ASOF join.

Spark has no ASOF join, so labels and eligible feature rows are merged into one stream per entity,
ordered by time (a feature row available at a label's instant sorts first), and each label takes
the last feature row seen before it. That is one shuffle and sort per entity key, which scales
out; a range join on `available <= label_ts` would not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FEATURE, LABEL = 0, 1


def _winners(features: DataFrame, key: str, feature_ts: str, created_ts: str) -> DataFrame:
    """Feature rows that can win for some label (see `sands.features.pit`), with their
    availability."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    rows = features.withColumn("__key", F.col(key)).withColumn(
        "__available", F.greatest(F.col(feature_ts), F.col(created_ts))
    )
    restated = rows.filter(F.col(created_ts) != F.col(feature_ts)).limit(1).count() > 0
    if not restated:
        return rows
    # The default RANGE frame takes in rows available at the same instant, as in DuckDB.
    rank = F.struct(F.col(feature_ts), F.col(created_ts))
    best = F.max(rank).over(Window.partitionBy("__key").orderBy("__available"))
    return rows.withColumn("__best", best).filter(rank == F.col("__best")).drop("__best")


def _current_snapshot(features: DataFrame, feature_ts: str, created_ts: str, label_ts: str):
    """A column: the newest feature time available at the label's time (unix micros), from the
    few distinct availability instants, collected (one per snapshot) and inlined."""
    from pyspark.sql import functions as F

    available = F.unix_micros(F.greatest(F.col(feature_ts), F.col(created_ts)))
    instants = (
        features.groupBy(available.alias("at"))
        .agg(F.max(F.unix_micros(F.col(feature_ts))).alias("newest"))
        .orderBy("at")
        .collect()
    )
    newest, pairs = None, []
    for row in instants:
        newest = row["newest"] if newest is None else max(newest, row["newest"])
        pairs.append(F.struct(F.lit(row["at"]).alias("at"), F.lit(newest).alias("newest")))
    if not pairs:
        return F.lit(None).cast("long")
    at = F.unix_micros(F.col(f"__label.{label_ts}"))
    # Running maxima rise with time, so the largest among instants up to the label is the last.
    return F.array_max(
        F.transform(F.filter(F.array(*pairs), lambda p: p["at"] <= at), lambda p: p["newest"])
    )


def point_in_time_join(
    labels: DataFrame,
    features: DataFrame,
    key: str,
    ttl: timedelta,
    label_ts: str = "label_ts",
    feature_ts: str = "feature_ts",
    created_ts: str = "created_ts",
    prefix: str = "",
    feature_key: str | None = None,
    order: str = "__row",
    snapshots: bool = False,
) -> DataFrame:
    """Labels with the feature columns (`prefix + column`) as of label time; `sands.features.pit`
    rules.

    Labels must carry a sortable `order` column; the result keeps it, so callers can restore
    the label order (`sands.features.pit` keeps it implicitly).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    feature_key = feature_key or key
    values = [c for c in features.columns if c not in {feature_key, feature_ts, created_ts}]
    winners = _winners(features, feature_key, feature_ts, created_ts)
    carried = [feature_ts, created_ts, *values]
    win_type = winners.select(F.struct(*carried).alias("w")).schema["w"].dataType
    label_type = labels.select(F.struct(*labels.columns).alias("l")).schema["l"].dataType
    stream = winners.select(
        F.col("__key"),
        F.col("__available").alias("__time"),
        F.lit(FEATURE).alias("__kind"),
        F.struct(*carried).alias("__win"),
        F.lit(None).cast(label_type).alias("__label"),
    ).unionByName(
        labels.select(
            F.col(key).alias("__key"),
            F.col(label_ts).alias("__time"),
            F.lit(LABEL).alias("__kind"),
            F.lit(None).cast(win_type).alias("__win"),
            F.struct(*labels.columns).alias("__label"),
        )
    )
    # Same-instant feature rows are ordered by (feature_ts, created_ts), so the best comes last.
    before = (
        Window.partitionBy("__key")
        .orderBy("__time", "__kind", "__win." + feature_ts, "__win." + created_ts)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    picked = stream.withColumn("__win", F.last("__win", ignorenulls=True).over(before))
    ttl_us = int(ttl / timedelta(microseconds=1))
    bound = F.unix_micros(F.col(f"__label.{label_ts}")) - F.lit(ttl_us)
    if snapshots:
        bound = F.least(bound, _current_snapshot(features, feature_ts, created_ts, label_ts))
    fresh = F.unix_micros(F.col(f"__win.{feature_ts}")) >= bound
    columns = [F.when(fresh, F.col(f"__win.{name}")).alias(f"{prefix}{name}") for name in carried]
    return picked.filter(F.col("__kind") == LABEL).select("__label.*", *columns)
