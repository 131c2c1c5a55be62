"""Reading what dbt built: model rows for a window of feature dates, from the DuckDB warehouse."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa


def model_rows(
    path: str, model: str, start: date, end: date, column: str = "feature_date"
) -> pa.Table:
    """Rows of a dbt model whose `column` lies in [start, end], read without locking out dbt."""
    with duckdb.connect(path, read_only=True) as con:
        return con.sql(
            f"select * from {model} where {column} between ? and ? order by all",
            params=[start, end],
        ).to_arrow_table()
