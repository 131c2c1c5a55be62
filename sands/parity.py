"""Engine parity: a content fingerprint of a table that two engines must agree on exactly."""

from __future__ import annotations

import hashlib

import pyarrow as pa


def canonical(table: pa.Table, exclude: tuple[str, ...] = ()) -> pa.Table:
    """Columns in name order, rows sorted by every column: row order is not content.

    Values are compared bit for bit, floats too: the dbt models sum money exactly, so both
    engines produce the same doubles.
    """
    names = sorted(n for n in table.column_names if n not in exclude)
    ordered = table.select(names)
    sortable = [n for n in names if not pa.types.is_nested(ordered.schema.field(n).type)]
    return ordered.sort_by([(n, "ascending") for n in sortable])


def content_hash(table: pa.Table, exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 of the canonical rows and their types: equal exactly when the contents are."""
    rows = canonical(table, exclude)
    digest = hashlib.sha256(str(rows.schema).encode())
    for batch in rows.to_batches():
        for row in batch.to_pylist():
            digest.update(repr(sorted(row.items())).encode())
    return digest.hexdigest()[:16]
