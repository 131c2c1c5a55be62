"""The engine the transforms and heavy joins run on: DuckDB (embedded) or Spark (scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from sands.engines.compute import Compute, Embedded, Spark
from sands.engines.spark import SparkSettings, spark_session
from sands.features.warehouse import (
    PART_ROWS,
    day_parts,
    delta_model_day_counts,
    delta_model_rows,
    model_day_counts,
    model_rows,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Engine = Literal["duckdb", "spark"]


class WarehouseResource(ConfigurableResource):
    """Where the dbt models live and the engine that builds them and joins training sets."""

    path: str = Field(description="DuckDB database file dbt builds into (engine duckdb).")
    engine: Engine = Field(default="duckdb", description="Transform engine (SANDS_ENGINE).")
    spark_catalog: str = Field(default="", description="Spark catalog folder (engine spark).")
    spark_models: str = Field(default="", description="Delta root of Spark-built models.")

    def model_rows(
        self, model: str, start: date, end: date, column: str = "feature_date"
    ) -> pa.Table:
        """Rows of a dbt model with `column` in [start, end], ordered and typed alike on both
        engines."""
        if self.on_spark:
            return delta_model_rows(f"{self.spark_models}/{model}", start, end, column)
        return model_rows(self.path, model, start, end, column)

    def model_parts(
        self, model: str, start: date, end: date, column: str = "feature_date"
    ) -> Iterator[pa.Table]:
        """`model_rows` of [start, end] in parts of whole days, at most `PART_ROWS` rows each
        (unless one day holds more), read one at a time."""
        if self.on_spark:
            counts = delta_model_day_counts(f"{self.spark_models}/{model}", start, end, column)
        else:
            counts = model_day_counts(self.path, model, start, end, column)
        for first, last in day_parts(counts, start, end, PART_ROWS):
            yield self.model_rows(model, first, last, column)

    @property
    def on_spark(self) -> bool:
        return self.engine == "spark"

    def compute(self, choice: str = "auto", spark_workers: int = 2) -> Compute:
        """The engine for the heavy steps: `spark` or `local` when asked, else this warehouse's."""
        if choice == "spark" or (choice == "auto" and self.on_spark):
            return Spark(self.spark, spark_workers)
        return Embedded()

    def spark(self) -> SparkSession:
        """This process's Spark session (`SANDS_SPARK_*` settings); path-based Delta access only,
        so it never holds the catalog that dbt's Spark process opens."""
        return spark_session(SparkSettings.from_env())

    def dbt_target_path(self) -> Path:
        """Where dbt writes its artifacts for this warehouse (one per engine: parses differ)."""
        suffix = "" if self.engine == "duckdb" else f"-{self.engine}"
        return Path(self.path).parent / f"dbt-target{suffix}"

    def dbt_environment(self, lake_root: str, storage_options: dict[str, str]) -> dict[str, str]:
        """Environment the dbt profile and its Delta sources read (object-store settings too)."""
        env = {
            **storage_options,
            "SANDS_WAREHOUSE_PATH": self.path,
            "SANDS_LAKE_URI": lake_root,
            "DO_NOT_TRACK": "1",
        }
        if self.on_spark:
            env |= {
                "SANDS_DBT_TARGET": "spark",
                "SANDS_SPARK_CATALOG": self.spark_catalog,
                "SANDS_SPARK_MODELS_URI": self.spark_models,
            }
        return env
