"""Engine parity: a content fingerprint of a table that two engines must agree on exactly."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def canonical(table: pa.Table, exclude: tuple[str, ...] = ()) -> pa.Table:
    """Columns in name order, rows sorted by every column: row order is not content.

    Values are compared bit for bit, floats too: the dbt models sum money exactly, so both
    engines produce the same doubles.
    """
    names = sorted(n for n in table.column_names if n not in exclude)
    ordered = table.select(names)
    sortable = [n for n in names if not pa.types.is_nested(ordered.schema.field(n).type)]
    return ordered.sort_by([(n, "ascending") for n in sortable])


def _value_bytes(column: pa.Array) -> bytes:
    """The values of one column as bytes, nulls as zeros (the null mask is hashed apart)."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        filled = pc.fill_null(column, "").cast(pa.large_string())
        lengths = pc.binary_length(filled).to_numpy(zero_copy_only=False)
        offsets = np.frombuffer(filled.buffers()[1], np.int64)[filled.offset :][: len(filled) + 1]
        data = filled.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]] if len(filled) else b""
        return lengths.tobytes() + data
    if pa.types.is_nested(kind):
        return repr(column.to_pylist()).encode()
    if pa.types.is_temporal(kind):
        column = column.cast(pa.int64() if kind.bit_width == 64 else pa.int32())
    elif pa.types.is_boolean(kind):
        column = column.cast(pa.int8())
    return pc.fill_null(column, 0).to_numpy(zero_copy_only=False).tobytes()


def content_hash(table: pa.Table, exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 over names, types, null masks and values of the canonical rows: equal exactly
    when the contents are."""
    rows = canonical(table, exclude).combine_chunks()
    digest = hashlib.sha256(str(rows.num_rows).encode())
    for field in rows.schema:
        column = rows.column(field.name)
        column = column.chunk(0) if column.num_chunks else pa.array([], field.type)
        digest.update(f"{field.name}:{field.type}".encode())
        digest.update(column.is_null().to_numpy(zero_copy_only=False).tobytes())
        digest.update(_value_bytes(column))
    return digest.hexdigest()[:16]
