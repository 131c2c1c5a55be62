"""dbt on Spark in one process: start the configured Spark session, then run dbt's CLI inside it.

dbt-spark's `session` method calls `SparkSession.builder.getOrCreate()`, which returns the session
started here, so Delta, the catalog and the cluster settings are defined once, in
`sands.engines.spark`.
Dagster's dbt resource runs this entry point (`sands-dbt-spark`) in place of `dbt`.
"""

from __future__ import annotations

import os

from sands.engines.spark import SparkSettings, spark_session


def main() -> None:
    """`sands-dbt-spark <dbt arguments>`: like `dbt`, on Spark."""
    os.environ.setdefault("SANDS_DBT_TARGET", "spark")
    spark_session(SparkSettings.from_env())
    from dbt.cli.main import cli

    cli()


if __name__ == "__main__":
    main()
