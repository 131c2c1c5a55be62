"""Offline feature tables: append-only Delta logs of feature snapshots with as-of and created times.

Each row says "at `feature_ts`, entity X had these feature values", and `created_ts` says when that
row came to exist. A snapshot is first stamped with its as-of time; a later rebuild that changes
values (late data, a fixed bug) appends new rows stamped with the time of the rebuild, so training
sets built for earlier label times keep seeing what was actually known then.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from sands.engines import duck
from sands.lake import delta, layout, locks

FEATURE_DATE = "feature_date"
FEATURE_TS = "feature_ts"
CREATED_TS = "created_ts"
TIMESTAMP = pa.timestamp("us", tz="UTC")
# Columns that place a row in time rather than describe the entity.
TIME_COLUMNS = (FEATURE_DATE, FEATURE_TS, CREATED_TS)


@dataclass(frozen=True)
class FeatureTable:
    """An offline feature table: its entity key and the dbt model that computes its snapshots."""

    name: str
    key: str
    model: str

    def uri(self, lake_root: str) -> str:
        return layout.feature_log(lake_root, self.name)


USER_FEATURES = FeatureTable("user_features", key="user_id", model="user_feature_snapshots")
ARTWORK_FEATURES = FeatureTable(
    "artwork_features", key="artwork_id", model="artwork_feature_snapshots"
)
FEATURE_TABLES = (USER_FEATURES, ARTWORK_FEATURES)


@dataclass(frozen=True)
class PublishOutcome:
    """What publishing snapshots did to the feature log."""

    version: int
    snapshot_rows: int
    rows_appended: int
    rows_restated: int
    schema_hash: str
    feature_dates: tuple[date, ...]

    @property
    def committed(self) -> bool:
        return self.rows_appended > 0


def snapshot_dates(log: DeltaTable) -> list[date]:
    """The feature dates the log holds snapshots of, from its partition values (no data read)."""
    return sorted(
        {date.fromisoformat(p[FEATURE_DATE]) for p in log.partitions() if p.get(FEATURE_DATE)}
    )


def first_date_to_read(log: DeltaTable, since: datetime, margin: timedelta) -> date:
    """The oldest feature date that as-of lookups from `since` on need: `margin` before it, or
    further back to the snapshot current at `since` when no day landed for longer than that
    (a snapshot stays the newest knowledge until the next day lands, however long that takes)."""
    first = (since - margin).date()
    # Stamped the morning after its date: the snapshot of day d is known from d + 1 on.
    known = [d for d in snapshot_dates(log) if d < since.date()]
    return min(first, known[-1]) if known else first


def feature_columns(schema: pa.Schema, key: str) -> list[str]:
    """The columns that hold feature values (everything but the key and the time columns)."""
    return [n for n in schema.names if n != key and n not in TIME_COLUMNS]


def schema_hash(schema: pa.Schema) -> str:
    """A short, stable fingerprint of column names and types (not metadata)."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def normalise_snapshot(rows: pa.Table) -> pa.Table:
    """Snapshot rows as stored: UTC timestamps and a date-typed feature date."""
    columns = {}
    for spec in rows.schema:
        column = rows.column(spec.name)
        if pa.types.is_timestamp(spec.type):
            if spec.type.tz is None:
                column = pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
            column = column.cast(TIMESTAMP)
        elif spec.name == FEATURE_DATE:
            column = column.cast(pa.date32())
        columns[spec.name] = column
    return pa.table(columns)


def _latest_stored(uri: str, dates: list[date], storage_options: dict[str, str] | None) -> pa.Table:
    table = delta.open_table(uri, storage_options)
    if table is None:
        return pa.table({})
    condition = pc.field(FEATURE_DATE).isin(pa.array(dates, pa.date32()))
    files = delta.files_where(table, FEATURE_DATE, "in", list(dates))
    return files.to_table(filter=condition)


def rows_to_append(
    snapshot: pa.Table, stored: pa.Table, key: str, restated_at: datetime
) -> pa.Table:
    """Snapshot rows that are new or whose values differ from the latest stored row, stamped.

    New (key, feature date) rows get `created_ts = feature_ts`; changed ones get `restated_at`.
    """
    values = feature_columns(snapshot.schema, key)
    con = duck.connect()
    con.register("snapshot", snapshot)
    # A column the log does not hold yet (a feature added in dbt) reads null there, so every
    # rebuilt row differs and is restated with the new value.
    digest = ", ".join(f'"{c}"' if c in stored.column_names else "null" for c in values)
    if stored.num_rows == 0:
        selected = con.sql(f'select *, false as __restated from snapshot order by "{key}"')
    else:
        con.register("stored", stored)
        selected = con.sql(
            f"""
            with latest as (
                select "{key}", {FEATURE_DATE}, hash({digest}) as digest
                from stored
                qualify row_number() over (
                    partition by "{key}", {FEATURE_DATE} order by {CREATED_TS} desc) = 1
            )
            select s.*, l.digest is not null as __restated
            from snapshot as s
            left join latest as l using ("{key}", {FEATURE_DATE})
            where l.digest is null or l.digest <> hash({", ".join(f's."{c}"' for c in values)})
            order by s."{key}", s.{FEATURE_DATE}
            """
        )
    picked = selected.to_arrow_table()
    picked = picked.set_column(
        picked.schema.get_field_index(FEATURE_TS), FEATURE_TS, picked[FEATURE_TS].cast(TIMESTAMP)
    )
    restated = picked.column("__restated")
    stamped = pc.if_else(
        restated, pa.scalar(restated_at.astimezone(UTC), TIMESTAMP), picked.column(FEATURE_TS)
    )
    picked = picked.drop_columns(["__restated"])
    position = picked.schema.get_field_index(FEATURE_TS) + 1
    return picked.add_column(position, pa.field(CREATED_TS, TIMESTAMP, nullable=False), stamped)


# Snapshots of a window: one table, or parts over disjoint feature dates read one at a time
# (`WarehouseResource.model_parts`): 28 days x 300,000 users held 11.5 GB as one table.
Snapshots = pa.Table | Iterable[pa.Table]


def _parts(snapshots: Snapshots) -> Iterator[pa.Table]:
    if isinstance(snapshots, pa.Table):
        yield snapshots
    else:
        yield from snapshots


def publish_snapshots(
    uri: str,
    snapshots: Snapshots,
    key: str,
    restated_at: datetime,
    storage_options: dict[str, str] | None = None,
) -> PublishOutcome:
    """Append the snapshot's new and changed rows to the log in one commit (none if all equal);
    parts are compared one at a time and streamed into that commit."""
    # Locked from reading the log to committing: two publishes of one date would both append.
    with locks.exclusive(uri):
        delta.sweep_staging_files(uri)
        return _publish(uri, _parts(snapshots), key, restated_at, storage_options)


@dataclass
class _Tally:
    """What the parts streamed so far held and added."""

    snapshot_rows: int = 0
    appended: int = 0
    restated: int = 0
    dates: set[date] = field(default_factory=set)
    schema: pa.Schema | None = None  # of the rows appended: the first part's


def _appended(
    uri: str,
    parts: Iterator[pa.Table],
    key: str,
    restated_at: datetime,
    storage_options: dict[str, str] | None,
    tally: _Tally,
) -> Iterator[pa.Table]:
    """Each part's rows to append, counted in `tally` as they are computed."""
    for part in parts:
        snapshot = normalise_snapshot(part)
        dates = sorted(set(snapshot.column(FEATURE_DATE).to_pylist()))
        stored = _latest_stored(uri, dates, storage_options)
        rows = rows_to_append(snapshot, stored, key, restated_at)
        if tally.schema is None:
            tally.schema = rows.schema
        elif not rows.schema.equals(tally.schema):
            rows = rows.cast(tally.schema)
        tally.snapshot_rows += snapshot.num_rows
        tally.dates.update(dates)
        tally.appended += rows.num_rows
        restated = pc.sum(pc.not_equal(rows[CREATED_TS], rows[FEATURE_TS])).as_py()
        tally.restated += int(restated or 0)
        if rows.num_rows:
            yield rows


def _publish(
    uri: str,
    parts: Iterator[pa.Table],
    key: str,
    restated_at: datetime,
    storage_options: dict[str, str] | None,
) -> PublishOutcome:
    tally = _Tally()
    # Staged on local disk, then streamed into one commit: delta-rs cannot read the log from
    # inside its own write, so the parts are compared with it before the write starts.
    with tempfile.TemporaryDirectory(prefix="sands-publish-") as staging:
        appended = _appended(uri, parts, key, restated_at, storage_options, tally)
        for number, rows in enumerate(appended):
            pq.write_table(rows, os.path.join(staging, f"{number:06d}.parquet"))
        if tally.schema is None:
            raise ValueError(f"nothing to publish to {uri}: the snapshot has no parts")
        delta.ensure_table(uri, tally.schema, [FEATURE_DATE], storage_options)
        if tally.appended:
            staged = ds.dataset(staging, schema=tally.schema, format="parquet")
            write_deltalake(
                uri,
                pa.RecordBatchReader.from_batches(tally.schema, staged.to_batches()),
                mode="append",
                partition_by=[FEATURE_DATE],
                # A feature added in dbt extends the log; rows published before it read null.
                schema_mode="merge",
                storage_options=storage_options or None,
            )
    return PublishOutcome(
        version=delta.current_version(uri, storage_options),
        snapshot_rows=tally.snapshot_rows,
        rows_appended=tally.appended,
        rows_restated=tally.restated,
        schema_hash=schema_hash(tally.schema),
        feature_dates=tuple(sorted(tally.dates)),
    )


@dataclass(frozen=True)
class LogCheck:
    """How the log's latest rows for some feature dates compare with a snapshot of them."""

    unmatched: int  # snapshot rows the log does not hold with these values
    dropped: int  # (key, date) rows in the log that the snapshot no longer has


def check_log(
    uri: str, snapshots: Snapshots, key: str, storage_options: dict[str, str] | None = None
) -> LogCheck:
    """Read the log back and compare it with the snapshot just published (expect 0 unmatched),
    part by part."""
    unmatched = dropped = 0
    for part in _parts(snapshots):
        found = _check_part(uri, normalise_snapshot(part), key, storage_options)
        unmatched, dropped = unmatched + found.unmatched, dropped + found.dropped
    return LogCheck(unmatched=unmatched, dropped=dropped)


def _check_part(
    uri: str, snapshot: pa.Table, key: str, storage_options: dict[str, str] | None
) -> LogCheck:
    dates = sorted(set(snapshot.column(FEATURE_DATE).to_pylist()))
    stored = _latest_stored(uri, dates, storage_options)
    unmatched = rows_to_append(snapshot, stored, key, datetime.now(UTC)).num_rows
    if stored.num_rows == 0:
        return LogCheck(unmatched=unmatched, dropped=0)
    con = duck.connect()
    con.register("snapshot", snapshot)
    con.register("stored", stored)
    dropped = con.sql(
        f"""select count(*) from (select distinct "{key}", {FEATURE_DATE} from stored)
            anti join snapshot using ("{key}", {FEATURE_DATE})"""
    ).fetchall()[0][0]
    return LogCheck(unmatched=unmatched, dropped=int(dropped))


def latest_vectors(rows: pa.Table, key: str) -> pa.Table:
    """One row per entity: the latest as-of time, and among equals the latest created."""
    if rows.num_rows == 0:
        return rows
    con = duck.connect()
    con.register("rows", rows)
    return con.sql(
        f"""select * from rows qualify row_number() over (
            partition by "{key}" order by {FEATURE_TS} desc, {CREATED_TS} desc) = 1
            order by "{key}" """
    ).to_arrow_table()


def latest_snapshot(
    uri: str, key: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[pa.Table, int]:
    """The newest feature vector per entity from the latest feature date, at `version`."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no feature table at {uri}")
    if version is not None:
        table.load_as_version(version)
    dates = snapshot_dates(table)  # from the partition values: no data read
    newest = pa.scalar(dates[-1], pa.date32()) if dates else None
    files = delta.files_where(table, FEATURE_DATE, "=", dates[-1]) if dates else None
    rows = files.to_table(filter=pc.field(FEATURE_DATE) == newest) if files else None
    if rows is None or rows.num_rows == 0:  # not partitioned, or an empty newest file
        dataset = table.to_pyarrow_dataset()
        column = dataset.to_table(columns=[FEATURE_DATE]).column(FEATURE_DATE)
        if len(column) == 0:
            return dataset.to_table(), table.version()
        rows = dataset.to_table(filter=pc.field(FEATURE_DATE) == pc.max(column))
    return latest_vectors(rows, key), table.version()
