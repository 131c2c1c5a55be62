"""Reading what dbt built: model rows for a window of feature dates, from either engine."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sands.lake import delta

# The tables dbt builds (staging models are views) and the date column each is windowed by.
MODEL_TABLES = {
    "int_user_daily_activity": "landing_date",
    "int_artwork_daily_activity": "landing_date",
    "int_user_attribute_daily": "landing_date",
    "user_affinity": "feature_date",
    "user_feature_snapshots": "feature_date",
    "artwork_feature_snapshots": "feature_date",
}


def model_rows(
    path: str, model: str, start: date, end: date, column: str = "feature_date"
) -> pa.Table:
    """Rows of a dbt model whose `column` lies in [start, end], read without locking out dbt."""
    with duckdb.connect(path, read_only=True) as con:
        return con.sql(
            f"select * from {model} where {column} between ? and ? order by all",
            params=[start, end],
        ).to_arrow_table()


def _plain_type(kind: pa.DataType) -> pa.DataType:
    """The Arrow type DuckDB would return for a column read from Delta (plain strings)."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return pa.list_(_plain_type(kind.value_type))
    return kind


def plain_types(table: pa.Table) -> pa.Table:
    """`table` with large, view and list-view string types as the plain ones DuckDB returns,
    so rows from Spark or Delta compare equal to the embedded engine's."""
    return table.cast(pa.schema([f.with_type(_plain_type(f.type)) for f in table.schema]))


def delta_model_rows(
    uri: str,
    start: date,
    end: date,
    column: str = "feature_date",
    storage_options: dict[str, str] | None = None,
) -> pa.Table:
    """Rows of a model Spark wrote as a Delta table, ordered and typed like `model_rows`."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {uri}: has the Spark dbt build run?")
    window = (pc.field(column) >= start) & (pc.field(column) <= end)
    rows = table.to_pyarrow_dataset().to_table(filter=window)
    rows = plain_types(rows)
    return rows.sort_by([(name, "ascending") for name in rows.column_names])
