"""Training data and the ranker on Spark: the same rules and features as the embedded path.

The point-in-time training set is joined by `sands.engines.spark_pit` from the Delta feature logs
read by Spark at the pinned versions; the ranker trains with XGBoost's Spark estimator on
features that `sands.models.ranking.ranker_features` computes per Arrow batch, so there is one
feature definition.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sands.engines.spark_pit import point_in_time_join
from sands.features.offline import FEATURE_DATE
from sands.features.training_set import DRAWN
from sands.features.training_store import first_feature_date
from sands.features.warehouse import plain_types
from sands.lake import delta
from sands.models.ranking import (
    PRIOR_INPUT,
    RankerModel,
    RankerParams,
    RankerSpec,
    fit_platt,
    monotone_constraints,
    prior_weight,
    ranker_features,
    trained_features,
)
from sands.models.segments import SegmentModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROW = "__row"
QID = "__qid"
BASE_MARGIN = "__base_margin"
QID_SPACE = 2**31
# Rows collected to the driver to fit the calibration and report training AUC.
CALIBRATION_SAMPLE = 200_000


def delta_frame(
    spark: SparkSession,
    uri: str,
    version: int | None = None,
    since: datetime | None = None,
    storage_options: dict[str, str] | None = None,
) -> DataFrame:
    """A Delta table read by Spark at `version` (latest if None); for a feature log, the rows a
    training set starting at `since` reads (as `feature_rows_since` does)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    frame = reader.load(uri)
    if since is not None:
        from pyspark.sql import functions as F

        log = delta.open_table(uri, storage_options)
        if version is not None:
            log.load_as_version(version)
        frame = frame.filter(F.col(FEATURE_DATE) >= F.lit(first_feature_date(log, since)))
    return frame


def training_examples(
    spark: SparkSession,
    labels: pa.Table,
    user_features: DataFrame,
    artwork_features: DataFrame,
    ttl: timedelta,
) -> pa.Table:
    """`sands.features.training_set.training_examples` on Spark: same rows, same order."""
    from pyspark.sql import functions as F

    numbered = labels.append_column(ROW, pa.array(np.arange(labels.num_rows), pa.int64()))
    frame = spark.createDataFrame(numbered)
    joined = point_in_time_join(
        frame, user_features, "user_id", ttl, prefix="user_", snapshots=True
    )
    joined = point_in_time_join(
        joined, artwork_features, "artwork_id", ttl, prefix="artwork_", snapshots=True
    )
    unknown = F.col("sample_source").isin(*DRAWN) & F.col("artwork_feature_date").isNull()
    result = joined.filter(~unknown).orderBy(ROW).drop(ROW).toArrow()
    return plain_types(result)


def _model_inputs(frame: DataFrame, segments: SegmentModel | None, names: list[str]) -> DataFrame:
    """Model inputs per row, computed by `ranker_features` on each Arrow batch, plus label,
    a query id per (user, UTC label day) and the row's label time."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType, LongType, StructField, StructType

    # XGBoost stores query ids as uint32: a 31-bit hash keeps them sortable as Spark sorts them.
    # Two (user, day) groups share an id about once per 4,000 at a million groups.
    qid = F.pmod(F.xxhash64("user_id", F.to_date("label_ts")), F.lit(QID_SPACE))
    keyed = frame.withColumn(QID, qid)
    schema = StructType(
        [StructField(n, FloatType()) for n in names]
        + [StructField("label", DoubleType()), StructField(QID, LongType())]
    )

    arrow_schema = pa.schema(
        [(n, pa.float32()) for n in names] + [("label", pa.float64()), (QID, pa.int64())]
    )

    def features(batches):  # runs on the executors
        for batch in batches:
            rows = pa.Table.from_batches([batch])
            inputs = ranker_features(rows, segments)
            columns = [pa.array(inputs[n].to_numpy(), pa.float32()) for n in names]
            columns += [batch.column("label").cast(pa.float64()), batch.column(QID)]
            yield pa.RecordBatch.from_arrays(columns, schema=arrow_schema)

    return keyed.mapInArrow(features, schema)


def estimator_params(params: RankerParams, names: list[str]) -> dict[str, object]:
    """`RankerParams` as XGBoost Spark estimator arguments (same objective, trees and prior)."""
    # The prior enters as a column of base margins, which `train_ranker` adds to the rows.
    margin = {"base_margin_col": BASE_MARGIN} if prior_weight(params, names) else {}
    return {
        **margin,
        "objective": "rank:ndcg",
        "eval_metric": "ndcg@10",
        "tree_method": "hist",
        "n_estimators": params.trees,
        "max_depth": params.max_depth,
        "learning_rate": params.learning_rate,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "reg_lambda": params.reg_lambda,
        "random_state": params.seed,
        "monotone_constraints": monotone_constraints(names),
    }


def train_ranker(
    train: DataFrame, segments: SegmentModel | None, params: RankerParams, workers: int = 2
) -> tuple[RankerModel, pa.Table]:
    """The ranker trained by XGBoost's Spark estimator over `workers` tasks, and a sample of the
    training rows (for calibration, the registry's input example and training AUC).

    Recency weights are not applied: the Spark estimator takes weights per row, and XGBoost's
    ranking objectives need one per query group, so the spec records `half_life_days` None; nor
    is the recency sample (`max_rows` None): Spark is there for sets too big to sample away; nor
    early stopping: it trains `trees` trees, one a round. The popularity prior is the
    estimator's base margin column, as it is the local trainer's base margin.
    """
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBRanker

    names = trained_features(segments.k if segments else 0, params)
    inputs = _model_inputs(train, segments, names)
    prior = prior_weight(params, names)
    if prior:
        inputs = inputs.withColumn(BASE_MARGIN, F.col(PRIOR_INPUT) * F.lit(float(prior)))
    estimator = SparkXGBRanker(
        features_col=names,
        label_col="label",
        qid_col=QID,
        num_workers=workers,
        **estimator_params(params, names),
    )
    fitted = estimator.fit(inputs)
    booster = fitted.get_booster()
    used = replace(
        params,
        half_life_days=None,
        max_rows=None,
        threads=workers,
        early_stopping_rounds=None,
        parallel_trees=1,
    )
    rows = train.sample(fraction=min(1.0, CALIBRATION_SAMPLE / max(train.count(), 1)), seed=0)
    sample = plain_types(rows.toArrow())
    sampled = ranker_features(sample, segments)[names]
    labels = sample["label"].to_numpy(zero_copy_only=False).astype(np.float32)
    spec = RankerSpec(
        features=names,
        segment_model=segments.to_json() if segments else None,
        calibration=(0.0, 0.0),
        params={
            **asdict(used),
            "popularity_prior": prior,
            "trainer": "xgboost.spark",
            "workers": workers,
        },
    )
    model = RankerModel(booster=booster, spec=spec)
    model.spec = replace(spec, calibration=fit_platt(model.margins(sampled), labels))
    return model, sample
