"""Delta Lake tables through delta-rs: atomic partition replacement and versioned upserts.

Every write here is one Delta commit, so a crash leaves the previous version intact and a rerun
with the same input converges to the same table content.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.table import TableMerger

from sands.settings import is_uri

# Long enough to rebuild any model still in the registry: time travel stops working once the
# log or the files a version points to are cleaned up.
TABLE_PROPERTIES: dict[str, str] = {
    "delta.logRetentionDuration": "interval 730 days",
    "delta.deletedFileRetentionDuration": "interval 730 days",
}


@dataclass(frozen=True)
class WriteOutcome:
    """What a write did: the table version now current and rows touched."""

    version: int
    rows_written: int
    rows_inserted: int = 0
    rows_updated: int = 0
    committed: bool = True


def open_table(uri: str, storage_options: dict[str, str] | None = None) -> DeltaTable | None:
    """The Delta table at `uri`, or None if none exists there yet."""
    try:
        return DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def files_where(table: DeltaTable, column: str, op: str, value: object) -> ds.Dataset:
    """The table as a dataset of only the files whose partition `column` passes `op` `value`
    (every file when it is not a partition column); rows still need the same filter, exact.
    delta-rs builds each file's fragment in Python (0.65 ms a file), so a daily-partitioned log
    a year old costs a quarter second a read otherwise, and the loop reads such logs ~30 times
    a day."""
    if column not in table.metadata().partition_columns:
        return table.to_pyarrow_dataset()
    return table.to_pyarrow_dataset(file_pruning_predicate=[(column, op, value)])


def ensure_table(
    uri: str,
    schema: pa.Schema,
    partition_by: list[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> DeltaTable:
    """Open the table, creating it empty (version 0) with the contract schema if it is missing."""
    table = open_table(uri, storage_options)
    if table is not None:
        return table
    try:
        return DeltaTable.create(
            uri,
            schema=schema,
            partition_by=partition_by,
            configuration=TABLE_PROPERTIES,
            storage_options=storage_options or None,
        )
    except DeltaError:
        # Another writer created it first: use theirs.
        table = open_table(uri, storage_options)
        if table is None:
            raise
        return table


def allow_nulls(uri: str, schema: pa.Schema, storage_options: dict[str, str] | None = None) -> None:
    """Rewrite the table once, in one commit, if `schema` lets a column it stores as required
    hold nulls (the contract made it optional): Delta cannot relax a column in place."""
    table = open_table(uri, storage_options)
    if table is None:
        return
    stored = pa.schema(table.schema().to_arrow())
    relaxed = [
        f.name
        for f in stored
        if not f.nullable and f.name in schema.names and schema.field(f.name).nullable
    ]
    if not relaxed:
        return
    widened = pa.schema([f.with_nullable(True) if f.name in relaxed else f for f in stored])
    marker = CommitProperties(custom_metadata={"sands.nullable_now": ",".join(relaxed)})
    with contextlib.suppress(CommitFailedError):  # another writer relaxed it first
        write_deltalake(
            table,
            table.to_pyarrow_table().cast(widened),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=table.metadata().partition_columns or None,
            commit_properties=marker,
        )


# Writers on other hosts share no lock, so two of them can commit at once; delta-rs then fails
# the later commit (e.g. "Metadata changed since last commit") instead of retrying it.
COMMIT_ATTEMPTS = 5
T = TypeVar("T")


def _retrying_conflicts(write: Callable[[], T]) -> T:
    """Run `write`, again on a fresh snapshot when a concurrent commit conflicted with it."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return write()
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _partition_predicate(column: str, value: date | str) -> str:
    return f"{column} = '{value}'"


def replace_partition(
    uri: str,
    data: pa.Table,
    partition_column: str,
    value: date | str,
    storage_options: dict[str, str] | None = None,
) -> WriteOutcome:
    """Replace exactly one partition's rows with `data` in a single commit (idempotent reruns).

    The version returned is this write's own commit, even if other writers committed since.
    """

    def write() -> int:
        table = ensure_table(uri, data.schema, [partition_column], storage_options)
        write_deltalake(
            table,
            data,
            mode="overwrite",
            predicate=_partition_predicate(partition_column, value),
            partition_by=[partition_column],
            schema_mode="merge",
        )
        return table.version()

    return WriteOutcome(version=_retrying_conflicts(write), rows_written=data.num_rows)


def replace_where(
    uri: str,
    data: pa.Table,
    column: str,
    values: list[str],
    storage_options: dict[str, str] | None = None,
) -> WriteOutcome:
    """Replace the rows whose `column` is one of `values` with `data`, in one commit."""
    ensure_table(uri, data.schema, None, storage_options)
    if not values:
        return WriteOutcome(
            version=current_version(uri, storage_options), rows_written=0, committed=False
        )
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(set(values)))
    _retrying_conflicts(
        lambda: write_deltalake(
            uri,
            data,
            mode="overwrite",
            predicate=f"{column} IN ({quoted})",
            schema_mode="merge",
            storage_options=storage_options or None,
        )
    )
    return WriteOutcome(version=current_version(uri, storage_options), rows_written=data.num_rows)


def current_version(uri: str, storage_options: dict[str, str] | None = None) -> int:
    """The latest committed version of the table at `uri`."""
    return DeltaTable(uri, storage_options=storage_options or None).version()


def changed_rows(target: DeltaTable, source: pa.Table, key: str, version_column: str) -> pa.Table:
    """Source rows that are new, or newer than the stored row with the same key."""
    stored = target.to_pyarrow_table(columns=[key, version_column])
    stored = stored.filter(pc.is_in(stored.column(key), source.column(key).combine_chunks()))
    if stored.num_rows == 0:
        return source
    # Join only key, version and row number: Arrow joins cannot carry list columns along.
    probe = pa.table(
        {
            key: source.column(key),
            version_column: source.column(version_column),
            "__row": pa.array(range(source.num_rows)),
        }
    )
    joined = probe.join(stored, key, join_type="left outer", right_suffix="__stored")
    stored_version = joined.column(f"{version_column}__stored")
    keep = pc.or_kleene(
        pc.is_null(stored_version), pc.greater(joined.column(version_column), stored_version)
    )
    rows = joined.filter(keep).column("__row").combine_chunks()
    return source.take(rows.take(pc.array_sort_indices(rows)))


def latest_per_key(data: pa.Table, key: str, version_column: str) -> pa.Table:
    """One row per key: the one with the latest version column (ties: the later row)."""
    if data.num_rows == 0:
        return data
    order = pa.table(
        {
            "k": data.column(key),
            "v": data.column(version_column),
            "i": pa.array(range(data.num_rows)),
        }
    )
    ranked = order.sort_by([("k", "ascending"), ("v", "descending"), ("i", "descending")])
    keys = ranked.column("k")
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    is_first = pa.concat_arrays([pa.array([True]), first.combine_chunks()])
    return data.take(ranked.column("i").filter(is_first))


def upsert(
    uri: str,
    data: pa.Table,
    key: str,
    version_column: str,
    storage_options: dict[str, str] | None = None,
) -> WriteOutcome:
    """MERGE rows on `key`; a row replaces the stored one only if its version column is later."""
    target = ensure_table(uri, data.schema, None, storage_options)
    source = changed_rows(target, latest_per_key(data, key, version_column), key, version_column)
    if source.num_rows == 0:
        return WriteOutcome(version=target.version(), rows_written=0, committed=False)
    metrics = (
        target.merge(
            source,
            predicate=f"t.{key} = s.{key}",
            source_alias="s",
            target_alias="t",
            merge_schema=True,
        )
        .when_matched_update_all(predicate=f"s.{version_column} > t.{version_column}")
        .when_not_matched_insert_all()
        .execute()
    )
    return WriteOutcome(
        version=DeltaTable(uri, storage_options=storage_options or None).version(),
        rows_written=source.num_rows,
        rows_inserted=int(metrics.get("num_target_rows_inserted", 0)),
        rows_updated=int(metrics.get("num_target_rows_updated", 0)),
    )


def _merge_on(
    target: DeltaTable, data: pa.Table, keys: list[str], merge_schema: bool = False
) -> TableMerger:
    """A MERGE of `data` (alias `s`) into `target` (alias `t`) matching rows on every key."""
    return target.merge(
        data,
        predicate=" and ".join(f"t.{k} = s.{k}" for k in keys),
        source_alias="s",
        target_alias="t",
        merge_schema=merge_schema,
    )


def insert_new(
    uri: str, data: pa.Table, keys: list[str], storage_options: dict[str, str] | None = None
) -> WriteOutcome:
    """Insert the rows whose `keys` the table does not hold yet (an append-only, idempotent log)."""
    target = ensure_table(uri, data.schema, None, storage_options)
    if data.num_rows == 0:
        return WriteOutcome(version=target.version(), rows_written=0, committed=False)
    metrics = _merge_on(target, data, keys).when_not_matched_insert_all().execute()
    inserted = int(metrics.get("num_target_rows_inserted", 0))
    return WriteOutcome(
        version=current_version(uri, storage_options),
        rows_written=inserted,
        rows_inserted=inserted,
        committed=inserted > 0,
    )


def update_matching(
    uri: str, data: pa.Table, keys: list[str], storage_options: dict[str, str] | None = None
) -> WriteOutcome:
    """Replace the stored rows that match `data`'s rows on `keys` (rows matching none are
    left out): corrections of rows already stored."""
    target = open_table(uri, storage_options)
    if target is None or data.num_rows == 0:
        version = target.version() if target is not None else -1
        return WriteOutcome(version=version, rows_written=0, committed=False)
    metrics = _merge_on(target, data, keys, merge_schema=True).when_matched_update_all().execute()
    updated = int(metrics.get("num_target_rows_updated", 0))
    return WriteOutcome(
        version=current_version(uri, storage_options),
        rows_written=updated,
        rows_updated=updated,
        committed=True,
    )


def table_version(uri: str, storage_options: dict[str, str] | None = None) -> int:
    """The latest committed version of the table at `uri`, or -1 if there is none yet."""
    table = open_table(uri, storage_options)
    return -1 if table is None else table.version()


def keys_present(
    uri: str,
    key: str,
    candidates: pa.Array,
    exclude: tuple[str, date | str] | None = None,
    storage_options: dict[str, str] | None = None,
    version: int | None = None,
) -> set[str]:
    """Which candidate keys the table holds (outside the `exclude` partition), at `version`."""
    if len(candidates) == 0 or (version is not None and version < 0):
        return set()
    table = open_table(uri, storage_options)
    if table is None:
        return set()
    if version is not None:
        table.load_as_version(version)
    condition = pc.field(key).isin(candidates)
    if exclude is not None:
        condition = condition & (pc.field(exclude[0]) != pa.scalar(exclude[1]))
    dataset: ds.Dataset = table.to_pyarrow_dataset()
    return set(dataset.to_table(columns=[key], filter=condition).column(key).to_pylist())


# What object_store leaves when a writer dies mid-file: `part-....parquet#1`, `00..07.json#1`;
# and the dot-files `sands.ingest.landing.put_atomically` writes before its rename.
_STAGING = re.compile(r"(#\d+|^\.[0-9a-f]{32}\.tmp)$")


def sweep_staging_files(location: str) -> list[str]:
    """Delete staging files killed writers left under a local location; the paths removed.

    Call it holding the location's writer lock (`sands.lake.locks`): a live writer's staging file
    would go too. Object stores need none: their uploads are invisible until complete.
    """
    root = Path(location)
    if is_uri(location) or not root.exists():
        return []
    stray = [p for p in root.rglob("*") if _STAGING.search(p.name) and p.is_file()]
    for path in stray:
        path.unlink(missing_ok=True)
    return [str(p) for p in stray]


def overwrite(
    uri: str,
    data: pa.Table,
    metadata: dict[str, str],
    storage_options: dict[str, str] | None = None,
) -> int:
    """Replace the table's content (and schema) in one commit carrying `metadata`; the version."""
    ensure_table(uri, data.schema, None, storage_options)
    write_deltalake(
        uri,
        data,
        mode="overwrite",
        schema_mode="overwrite",
        storage_options=storage_options or None,
        commit_properties=CommitProperties(custom_metadata=metadata),
    )
    return current_version(uri, storage_options)


# Commit metadata key: the Delta versions of the sources a table's commit was built from (the
# training set's features, a stored model's training set), read back for lineage.
SOURCE_VERSIONS_KEY = "sands.source_versions"


def commit_metadata(
    uri: str, version: int, storage_options: dict[str, str] | None = None
) -> dict[str, str]:
    """The custom `sands.*` metadata written with commit `version`."""
    table = DeltaTable(uri, storage_options=storage_options or None)
    for entry in table.history(table.version() - version + 1):
        if entry.get("version") == version:
            return {k: v for k, v in entry.items() if k.startswith("sands.")}
    raise LookupError(f"{uri} has no retained commit {version}")
