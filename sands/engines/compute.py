"""The heavy steps behind one interface, on either engine: the point-in-time join of a training
set and the ranker's fit. Embedded runs DuckDB/Arrow and XGBoost in this process; Spark runs
Spark SQL and XGBoost's Spark estimator. `resources/warehouse.py` picks one; assets call it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from sands.engines.spark_training import delta_frame
from sands.engines.spark_training import train_ranker as train_spark_ranker
from sands.engines.spark_training import training_examples as spark_training_examples
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.training_set import training_examples as join_training_examples
from sands.features.training_store import feature_rows_since
from sands.lake import delta
from sands.models.ranking import FittedRanker, RankerParams, fit_on, training_rows
from sands.models.segments import SegmentModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class RankerFit:
    """What to fit: the rows of the training set (already read, labels before the cutoff maybe
    shuffled) labelled before `cutoff`, and where it came from, for an engine that reads it."""

    examples: pa.Table
    training_uri: str
    training_version: int
    cutoff: datetime
    shuffled: bool = False


class Compute(Protocol):
    """One engine's implementation of the heavy steps."""

    name: str

    def training_examples(
        self,
        labels: pa.Table,
        feature_uris: Sequence[str],
        since: datetime | None,
        ttl: timedelta,
        storage_options: dict[str, str],
    ) -> tuple[pa.Table, tuple[int, ...]]:
        """Labels joined to the feature logs as of label time, and the log versions read."""
        ...

    def fit_ranker(
        self, fit: RankerFit, segments: SegmentModel | None, params: RankerParams
    ) -> FittedRanker:
        """The fitted ranker and the training rows it reports on (all of them, or a sample)."""
        ...


class Embedded:
    """DuckDB/Arrow joins and XGBoost in this process."""

    name = "embedded"

    def training_examples(self, labels, feature_uris, since, ttl, storage_options):
        # Only the labels' users and artworks (and the logs' instants): the logs hold complete
        # daily snapshots, so each entity's own rows decide its as-of row (`feature_rows_since`).
        keys = (USER_FEATURES.key, ARTWORK_FEATURES.key)
        (users, user_version), (works, artwork_version) = (
            feature_rows_since(uri, since, storage_options, (key, labels[key]))
            for uri, key in zip(feature_uris, keys, strict=True)
        )
        return join_training_examples(labels, users, works, ttl), (user_version, artwork_version)

    def fit_ranker(self, fit, segments, params):
        return fit_on(training_rows(fit.examples, params, fit.cutoff), segments, params)


class Spark:
    """Spark SQL joins and XGBoost's Spark estimator over `workers` tasks."""

    name = "spark"

    def __init__(self, session: Callable[[], SparkSession], workers: int = 2) -> None:
        self.session, self.workers = session, workers

    def training_examples(self, labels, feature_uris, since, ttl, storage_options):
        spark = self.session()
        versions = tuple(delta.open_table(uri, storage_options).version() for uri in feature_uris)
        pinned = zip(feature_uris, versions, strict=True)
        frames = [
            delta_frame(spark, uri, version, since, storage_options) for uri, version in pinned
        ]
        return spark_training_examples(spark, labels, *frames, ttl), versions

    def fit_ranker(self, fit, segments, params):
        from pyspark.sql import functions as F

        if fit.shuffled:  # Spark reads the stored labels itself
            raise ValueError("shuffle_labels is a local-trainer drill; use trainer=local")
        frame = delta_frame(self.session(), fit.training_uri, fit.training_version)
        train = frame.filter(F.col("label_ts") < F.lit(fit.cutoff))
        return FittedRanker(*train_spark_ranker(train, segments, params, self.workers))
