"""The parity fingerprint: row order is not content; a changed bit, type or row is."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa

from sands.engines.parity import content_hash

ROWS = pa.table({"id": ["a", "b", "c"], "x": [1.0, 0.1 + 0.2, None], "n": [1, 2, 3]})


def test_row_and_column_order_do_not_change_the_hash() -> None:
    shuffled = ROWS.take([2, 0, 1]).select(["n", "x", "id"])
    assert content_hash(shuffled) == content_hash(ROWS)


def test_the_last_bit_of_a_double_changes_the_hash() -> None:
    nudged = ROWS.set_column(1, "x", pa.array([1.0, math.nextafter(0.1 + 0.2, 1), None]))
    assert content_hash(nudged) != content_hash(ROWS)


def test_a_type_a_value_or_a_missing_row_changes_the_hash() -> None:
    assert content_hash(ROWS.set_column(2, "n", pa.array([1, 2, 3], pa.int32()))) != (
        content_hash(ROWS)
    )
    assert content_hash(ROWS.set_column(0, "id", pa.array(["a", "b", "d"]))) != (content_hash(ROWS))
    assert content_hash(ROWS.slice(0, 2)) != content_hash(ROWS)


def test_excluded_columns_are_ignored() -> None:
    other = ROWS.set_column(2, "n", pa.array([7, 8, 9]))
    assert content_hash(other, exclude=("n",)) == content_hash(ROWS, exclude=("n",))


def test_nulls_are_not_confused_with_zeros_or_empty_strings() -> None:
    zeros = ROWS.set_column(1, "x", pa.array([1.0, 0.1 + 0.2, 0.0]))
    assert content_hash(zeros) != content_hash(ROWS)
    blank = pa.table({"s": ["", "a"]})
    assert content_hash(pa.table({"s": [None, "a"]})) != content_hash(blank)
    # String boundaries count: ["ab", "c"] is not ["a", "bc"].
    assert content_hash(pa.table({"s": ["ab", "c"]})) != content_hash(pa.table({"s": ["a", "bc"]}))


def _stamps(day: int) -> pa.Table:
    moments = [datetime(2026, 9, day, tzinfo=UTC)] * 3
    return pa.table({"t": pa.array(moments, pa.timestamp("us", "UTC"))})


def test_chunking_and_timestamps_hash_by_value() -> None:
    stamps = _stamps(1)
    rechunked = pa.concat_tables([stamps.slice(0, 1), stamps.slice(1, 2)])
    assert content_hash(rechunked) == content_hash(stamps)
    assert content_hash(_stamps(2)) != content_hash(stamps)
