"""Reading what dbt built: model rows for a window of feature dates, from either engine."""

from __future__ import annotations

from collections.abc import Mapping
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


# Rows of a window read and published at once: about 1.5 GB at the peak of publishing them (a
# 28-day warm-up of 300,000 users, read whole, peaked at 11.5 GB: docs/benchmarks.md).
PART_ROWS = 1_000_000


def day_parts(
    counts: Mapping[date, int], start: date, end: date, max_rows: int
) -> list[tuple[date, date]]:
    """[start, end] as consecutive (first, last) day ranges of at most `max_rows` rows by the
    rows per day in `counts` (a larger day alone); the whole window when it has no rows."""
    days = sorted(d for d in counts if start <= d <= end)
    if not days:
        return [(start, end)]
    parts, first, rows = [], days[0], 0
    for previous, day in zip([None, *days], days, strict=False):
        if previous is not None and rows + counts[day] > max_rows:
            parts.append((first, previous))
            first, rows = day, 0
        rows += counts[day]
    parts.append((first, days[-1]))
    return parts


def model_day_counts(path: str, model: str, start: date, end: date, column: str) -> dict[date, int]:
    """Rows per `column` day of a dbt model within [start, end]."""
    with duckdb.connect(path, read_only=True) as con:
        counts = con.sql(
            f"select {column}, count(*) from {model} where {column} between ? and ? group by 1",
            params=[start, end],
        ).fetchall()
    return {day: int(n) for day, n in counts}


def delta_model_day_counts(
    uri: str, start: date, end: date, column: str, storage_options: dict[str, str] | None = None
) -> dict[date, int]:
    """Rows per `column` day of a model Spark wrote as a Delta table, within [start, end]."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {uri}: has the Spark dbt build run?")
    window = (pc.field(column) >= start) & (pc.field(column) <= end)
    days = table.to_pyarrow_dataset().to_table(columns=[column], filter=window)[column]
    counts = pc.value_counts(days)
    return {
        day: int(n)
        for day, n in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
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
