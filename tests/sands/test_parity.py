"""The parity fingerprint: row order is not content; a changed bit, type or row is."""

from __future__ import annotations

import math

import pyarrow as pa

from sands.parity import content_hash

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
