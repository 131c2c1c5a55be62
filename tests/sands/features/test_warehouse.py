"""Reading dbt models: a window in parts of whole days, bounded by rows, covering every row once."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pytest

import resources.warehouse
from resources.warehouse import WarehouseResource
from sands.features.warehouse import day_parts, model_day_counts

D = [date(2026, 9, 1) + timedelta(days=n) for n in range(6)]


def test_days_are_grouped_until_the_next_would_pass_the_rows() -> None:
    counts = {D[0]: 3, D[1]: 3, D[2]: 5, D[4]: 1, D[5]: 2}  # nothing on D[3]
    assert day_parts(counts, D[0], D[5], 6) == [(D[0], D[1]), (D[2], D[4]), (D[5], D[5])]
    # A day larger than a part stands alone; days outside the window are not read.
    assert day_parts({D[0]: 1, D[1]: 9, D[2]: 1}, D[0], D[2], 4) == [
        (D[0], D[0]),
        (D[1], D[1]),
        (D[2], D[2]),
    ]
    assert day_parts(counts, D[1], D[2], 100) == [(D[1], D[2])]
    # A window without rows is read once, for the empty table and its columns.
    assert day_parts({}, D[0], D[5], 6) == [(D[0], D[5])]


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        con.sql(
            "create table user_feature_snapshots as select 'u' || i as user_id, "
            "date '2026-09-01' + cast(i % 3 as integer) as feature_date from range(9) t(i)"
        )
    return WarehouseResource(path=path)


def test_a_window_is_read_in_parts_that_hold_every_row_once(warehouse, monkeypatch) -> None:
    counts = model_day_counts(warehouse.path, "user_feature_snapshots", D[0], D[5], "feature_date")
    assert counts == {D[0]: 3, D[1]: 3, D[2]: 3}
    monkeypatch.setattr(resources.warehouse, "PART_ROWS", 5)

    parts = list(warehouse.model_parts("user_feature_snapshots", D[0], D[5]))

    assert [p.num_rows for p in parts] == [3, 3, 3]
    whole = warehouse.model_rows("user_feature_snapshots", D[0], D[5])
    assert pa.concat_tables(parts).sort_by("user_id").equals(whole.sort_by("user_id"))
