"""Bronze ingestion: landing files -> validated Delta tables, rejected rows -> quarantine tables.

Interactions replace exactly their landing day's partition; users and artworks MERGE on their
ids. Quarantine tables are replaced for the same scope, so reruns never duplicate anything. An
unreadable file or a damaged line is quarantined on its own; the rest of its day goes on.
Writers hold one bronze lock from the already-ingested lookup to their last commit.
"""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sands.engines import duck
from sands.ingest import landing, quarantine
from sands.ingest.contract import (
    ARTWORKS,
    INTERACTIONS,
    LANDING_DAY_COLUMN,
    USERS,
    Entity,
    reference_horizon,
)
from sands.ingest.partitions import landing_days
from sands.ingest.validation import QUARANTINE_SCHEMA, ValidationOutcome, validate
from sands.lake import delta, layout, locks
from sands.settings import join


def bronze_uri(lake_root: str, entity: Entity) -> str:
    """Where an entity's accepted rows live."""
    return layout.bronze(lake_root, entity.name)


def history_uri(lake_root: str, entity: Entity) -> str:
    """Every accepted version of a reference feed's rows (users, artworks), never overwritten."""
    return layout.bronze_history(lake_root, entity.name)


def missing_reference_feeds(
    lake_root: str, storage_options: dict[str, str] | None = None
) -> list[str]:
    """Reference feeds never ingested (no drop under `landing/users/` or `landing/artworks/`
    yet): features need both, since events are read against the user and artwork they name."""
    return [
        entity.name
        for entity in (USERS, ARTWORKS)
        if delta.open_table(history_uri(lake_root, entity), storage_options) is None
    ]


def quarantine_uri(lake_root: str, entity: Entity) -> str:
    """Where an entity's rejected rows live, unchanged, with their reason codes."""
    return layout.quarantined_rows(lake_root, entity.name)


@dataclass
class IngestReport:
    """Accounting for one ingestion: what was read, kept, rejected and committed."""

    entity: str
    day: date | None
    files: list[str]
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    reason_counts: dict[str, int]
    unexpected_columns: list[str]
    table_version: int
    quarantine_version: int
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_repeated: int = 0  # identical copies of an earlier reference row: the same fact
    # Reference rows whose only change was their version timestamp: the latest row, no version.
    versions_unchanged: int = 0
    # Reference rows re-sent with a stored version's timestamp and other content: corrected.
    versions_corrected: int = 0
    committed: bool = True
    files_digest: str = ""
    rows_per_file: dict[str, int] = field(default_factory=dict)
    # One dict per unreadable file: path, size, sha256, reason, message, kept_at.
    rejected_files: list[dict[str, object]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)  # what a pattern in the rejections suggests

    @property
    def files_rejected(self) -> int:
        return len(self.rejected_files)

    @property
    def balanced(self) -> bool:
        """Every row read is accepted or quarantined, and every file is read or rejected."""
        rows = self.rows_accepted + self.rows_rejected + self.rows_repeated == self.rows_read
        per_file = sum(self.rows_per_file.values()) == self.rows_read
        files = len(self.rows_per_file) + self.files_rejected == len(self.files)
        return rows and per_file and files

    @property
    def reject_share(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A typed frame as an Arrow table with exactly the contract's Delta schema."""
    arrays = []
    for f in schema:
        values = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame))
        array = pa.array(values, from_pandas=True)
        if array.null_count == len(array):
            # No value to infer a type from (no rows, or all null): pandas says float.
            arrays.append(pa.nulls(len(array), f.type))
            continue
        # Timestamps are stored at microsecond precision; finer digits are dropped on purpose.
        arrays.append(array.cast(f.type, safe=not pa.types.is_timestamp(f.type)))
    return pa.Table.from_arrays(arrays, schema=schema)


def _keep_unreadable(
    reads: list[landing.FileRead],
    lake_root: str,
    entity: Entity,
    day: date | None,
    storage_options: dict[str, str] | None,
) -> list[tuple[landing.FileRejection, str | None]]:
    folder = quarantine.files_uri(lake_root, entity, day)
    return [
        (r.rejection, quarantine.keep_bytes(folder, r.rejection, storage_options))
        for r in reads
        if r.rejection is not None
    ]


def _validated(
    reads: list[landing.FileRead],
    entity: Entity,
    day: date | None,
    known: set[str] | None,
    horizon: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Validate the readable rows; damaged lines join the rejected rows with their reasons."""
    frames = [r.frame for r in reads if r.rejection is None]
    outcome = validate(frames, entity, landing_day=day, known_keys=known, horizon=horizon)
    damaged = quarantine.damaged_rows(reads)
    if damaged.empty:
        return outcome
    counts = Counter(outcome.reason_counts)
    counts.update(code for codes in damaged["reasons"] for code in codes)
    return replace(
        outcome,
        rejected=pd.concat([outcome.rejected, damaged], ignore_index=True),
        rows_read=outcome.rows_read + len(damaged),
        reason_counts=dict(sorted(counts.items())),
    )


def _quarantine_table(
    outcome: ValidationOutcome,
    day: date | None,
    unreadable: list[tuple[landing.FileRejection, str | None]],
) -> pa.Table:
    schema = QUARANTINE_SCHEMA
    rejected = outcome.rejected
    if unreadable:
        rejected = pd.concat([rejected, quarantine.file_rows(unreadable)], ignore_index=True)
    if day is not None:
        schema = schema.append(pa.field(LANDING_DAY_COLUMN, pa.date32(), nullable=False))
        rejected = rejected.assign(**{LANDING_DAY_COLUMN: day})
    return to_arrow(rejected, schema)


def bronze_lock(lake_root: str) -> AbstractContextManager[None]:
    """The lock every bronze writer holds from its already-ingested lookup to its last commit."""
    return locks.exclusive(layout.zone(lake_root, layout.BRONZE))


def _sweep(lake_root: str) -> None:
    # Under the bronze lock no other local writer is mid-file, so any staging file is a corpse.
    for folder in ("bronze", "quarantine"):
        delta.sweep_staging_files(join(lake_root, folder))


def ingest_day(
    landing_root: str,
    lake_root: str,
    day: date,
    storage_options: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest one landing day of interactions, replacing that day's bronze and quarantine rows."""
    fs, root = landing.filesystem(landing_root, storage_options)
    files = landing.list_files(fs, root, INTERACTIONS, day)
    reads = landing.read_files(fs, files)  # outside the lock: reading is the slow part
    with bronze_lock(lake_root):
        _sweep(lake_root)
        return _ingest_day(files, reads, lake_root, day, storage_options)


def _as_text(values: pd.Series) -> pd.Series:
    """The values as strings, without nulls and bytes that are not text (rejected anyway)."""
    values = values.dropna()
    if values.dtype == object:
        values = values[[not isinstance(v, bytes) for v in values]]
    return values.astype(str)


def _known_keys(
    table_uri: str,
    reads: list[landing.FileRead],
    day: date,
    version: int,
    storage_options: dict[str, str] | None,
) -> set[str]:
    """The day's event ids that bronze holds on other days, as of `version`."""
    key = INTERACTIONS.key
    keys = [_as_text(r.frame[key]) for r in reads if key in r.frame]
    candidates = pa.array(pd.concat(keys).unique() if keys else [], pa.string())
    other_days = (LANDING_DAY_COLUMN, day)
    return delta.keys_present(table_uri, key, candidates, other_days, storage_options, version)


def _raced_keys(
    table_uri: str,
    outcome: ValidationOutcome,
    day: date,
    version: int,
    storage_options: dict[str, str] | None,
) -> set[str]:
    """Accepted event ids that another day's writer committed before our commit `version`."""
    key = INTERACTIONS.key
    accepted = pa.array(outcome.accepted[key].astype(str).unique(), pa.string())
    other_days = (LANDING_DAY_COLUMN, day)
    return delta.keys_present(table_uri, key, accepted, other_days, storage_options, version)


def _ingest_day(
    files: list[landing.LandingFile],
    reads: list[landing.FileRead],
    lake_root: str,
    day: date,
    storage_options: dict[str, str] | None,
) -> IngestReport:
    table_uri = bronze_uri(lake_root, INTERACTIONS)
    unreadable = _keep_unreadable(reads, lake_root, INTERACTIONS, day, storage_options)
    seen = delta.table_version(table_uri, storage_options)
    known = _known_keys(table_uri, reads, day, seen, storage_options)
    outcome = _validated(reads, INTERACTIONS, day, known)
    if seen >= 0 and reads and all(r.rejection is not None for r in reads):
        # Not one file of the day could be read (a broken re-upload over a good one): the
        # rows bronze holds for it stay, rather than being replaced by none.
        kept = f"no file of {day} could be read: bronze keeps the rows it held for the day"
        outcome = replace(outcome, hints=[*outcome.hints, kept])
        written = delta.WriteOutcome(seen, 0, committed=False)
    else:
        written = _replace_day(table_uri, outcome, day, storage_options)
    # A gap means a writer that does not share our lock (another host) committed between our
    # lookup and our commit. Copies committed before ours win, so we quarantine ours; copies
    # committed after ours are theirs to quarantine: they see ours at their own commit.
    raced = (
        _raced_keys(table_uri, outcome, day, written.version, storage_options)
        if written.version > seen + 1
        else set()
    )
    if raced:
        outcome = _validated(reads, INTERACTIONS, day, known | raced)
        written = _replace_day(table_uri, outcome, day, storage_options)
    if written.committed and (orphans := _orphaned(lake_root, outcome, day, seen, storage_options)):
        outcome = replace(outcome, hints=[*outcome.hints, orphans])
    quarantined = delta.replace_partition(
        quarantine_uri(lake_root, INTERACTIONS),
        _quarantine_table(outcome, day, unreadable),
        LANDING_DAY_COLUMN,
        day,
        storage_options,
    )
    version = quarantined.version
    return _report(INTERACTIONS, day, files, reads, outcome, written, version, unreadable)


def _orphaned(
    lake_root: str,
    outcome: ValidationOutcome,
    day: date,
    version: int,
    storage_options: dict[str, str] | None,
) -> str | None:
    """What to rerun when the day no longer holds events that other days rejected as already
    ingested here (a day repaired by removing re-sent copies): those events are in no day's
    rows until their own day is ingested again."""
    key = INTERACTIONS.key
    here = (LANDING_DAY_COLUMN, day)
    held = delta.open_table(bronze_uri(lake_root, INTERACTIONS), storage_options)
    if held is None or version < 0:
        return None
    held.load_as_version(version)
    before = held.to_pyarrow_dataset().to_table(
        columns=[key], filter=pc.field(here[0]) == pa.scalar(day)
    )[key]
    kept = pa.array(outcome.accepted[key].astype(str), pa.string())
    gone = pc.filter(before, pc.invert(pc.is_in(before, kept)))
    log = delta.open_table(quarantine_uri(lake_root, INTERACTIONS), storage_options)
    if len(gone) == 0 or log is None:
        return None
    rows = (
        log.to_pyarrow_dataset()
        .to_table(
            columns=[LANDING_DAY_COLUMN, "reasons"],
            filter=pc.field("record_key").isin(gone) & (pc.field(here[0]) != pa.scalar(day)),
        )
        .to_pylist()
    )
    days = Counter(r[LANDING_DAY_COLUMN] for r in rows if f"{key}:already_ingested" in r["reasons"])
    if not days:
        return None
    named = ", ".join(f"{d} ({n:,})" for d, n in sorted(days.items()))
    return (
        f"{sum(days.values()):,} events this day no longer holds were rejected as already "
        f"ingested here on {named}: ingest those days again to take them in"
    )


def _replace_day(
    table_uri: str, outcome: ValidationOutcome, day: date, storage_options: dict[str, str] | None
) -> delta.WriteOutcome:
    accepted = to_arrow(outcome.accepted, INTERACTIONS.arrow_schema())
    return delta.replace_partition(table_uri, accepted, LANDING_DAY_COLUMN, day, storage_options)


def ingest_reference(
    entity: Entity,
    landing_root: str,
    lake_root: str,
    storage_options: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest every drop of a reference feed (users, artworks): MERGE on id, latest version wins."""
    fs, root = landing.filesystem(landing_root, storage_options)
    files = landing.list_files(fs, root, entity)
    reads = landing.read_files(fs, files)
    days = landing_days(landing_root, storage_options)
    horizon = reference_horizon(datetime.now(UTC), days[-1] if days else None)
    with bronze_lock(lake_root):
        _sweep(lake_root)
        return _ingest_reference(entity, files, reads, lake_root, storage_options, horizon)


def _ingest_reference(
    entity: Entity,
    files: list[landing.LandingFile],
    reads: list[landing.FileRead],
    lake_root: str,
    storage_options: dict[str, str] | None,
    horizon: pd.Timestamp,
) -> IngestReport:
    unreadable = _keep_unreadable(reads, lake_root, entity, None, storage_options)
    outcome = _validated(reads, entity, None, None, horizon)
    accepted = to_arrow(outcome.accepted, entity.arrow_schema())
    key, version = entity.key, entity.version_column or ""
    latest, history = bronze_uri(lake_root, entity), history_uri(lake_root, entity)
    for uri in (latest, history):  # tables stored before a column became optional
        delta.allow_nulls(uri, accepted.schema, storage_options)
    stored = stored_versions(history, accepted, key, storage_options)
    if dropped := _dropped_columns(outcome.absent_columns, accepted, stored, key, version):
        outcome = replace(outcome, hints=[*outcome.hints, dropped])
    written = delta.upsert(latest, accepted, key, version, storage_options)
    # Features are computed as of past dates, so they need the version valid then, not the latest.
    fresh, unchanged = new_versions(accepted, stored, key, version)
    delta.insert_new(history, fresh, [key, version], storage_options)
    # A row re-sent with its version's timestamp but other content corrects that version: in
    # the history, and in the latest table where it is the latest (a MERGE on a later version
    # alone counted it accepted and kept the old content).
    corrected = corrected_versions(accepted, stored, key, version)
    delta.update_matching(history, corrected, [key, version], storage_options)
    fixed = delta.update_matching(latest, corrected, [key, version], storage_options)
    quarantined = delta.replace_where(
        quarantine_uri(lake_root, entity),
        _quarantine_table(outcome, None, unreadable),
        "source_file",
        [f.path for f in files],
        storage_options,
    )
    report = _report(entity, None, files, reads, outcome, written, quarantined.version, unreadable)
    return replace(
        report,
        versions_unchanged=unchanged,
        versions_corrected=corrected.num_rows,
        rows_updated=report.rows_updated + fixed.rows_updated,
        table_version=max(report.table_version, fixed.version),
        committed=report.committed or corrected.num_rows > 0,
    )


def stored_versions(
    uri: str, incoming: pa.Table, key: str, storage_options: dict[str, str] | None = None
) -> pa.Table | None:
    """The stored versions of the keys in `incoming` (None before the first ingestion)."""
    table = delta.open_table(uri, storage_options)
    if table is None or incoming.num_rows == 0:
        return None
    stored = table.to_pyarrow_table()
    # delta-rs reads strings as string views: compared and joined as the contract's types.
    shared = [f for f in incoming.schema if f.name in stored.column_names]
    stored = pa.table({f.name: stored.column(f.name).cast(f.type) for f in shared})
    return stored.filter(pc.is_in(stored.column(key), value_set=incoming.column(key)))


def new_versions(
    incoming: pa.Table, stored: pa.Table | None, key: str, version: str
) -> tuple[pa.Table, int]:
    """The rows of `incoming` to keep as versions, and how many changed nothing but `version`
    against the version in effect before them (stored, or earlier in the drop)."""
    # Sources touch `updated_ts` when a field outside the contract changes (views, likes): kept,
    # those rows would be a version per entity per touch, and every as-of join grows with them.
    if incoming.num_rows == 0:
        return incoming, 0
    content = ", ".join(f'"{c}" := "{c}"' for c in incoming.column_names if c != version)
    con = duck.connect()
    con.register("incoming", incoming.append_column("__row", pa.array(range(incoming.num_rows))))
    parts = ["select *, 1 as __incoming from incoming"]
    if stored is not None and stored.num_rows:
        con.register(
            "stored", stored.select([c for c in incoming.column_names if c in stored.column_names])
        )
        parts.insert(0, "select *, -1 as __row, 0 as __incoming from stored")
    # A rerun's rows match their own stored version (same timestamp): kept, `insert_new` skips.
    unchanged = con.sql(
        f"""with versions as ({" union all by name ".join(parts)})
            select __row, coalesce(
                       lag(struct_pack({content})) over w is not distinct from
                           struct_pack({content})
                       and lag("{version}") over w < "{version}",
                       false) as unchanged
            from versions
            window w as (partition by "{key}" order by "{version}", __incoming)
            qualify __incoming = 1
            order by __row"""
    ).to_arrow_table()
    left_out = unchanged.column("unchanged").to_numpy(zero_copy_only=False)
    return incoming.filter(pa.array(~left_out)), int(left_out.sum())


def _dropped_columns(
    absent: list[str], incoming: pa.Table, stored: pa.Table | None, key: str, version: str
) -> str | None:
    """A line when optional columns no file of the drop has were known in the stored latest
    version of some of its keys: a re-sent export that left one out stores its new versions
    without it (null). Said once: after it, the latest versions hold none."""
    if stored is None or not absent or not incoming.num_rows or not stored.num_rows:
        return None
    stored = delta.latest_per_key(stored, key, version)
    counts = {
        c: pc.sum(pc.is_valid(stored[c])).as_py() or 0 for c in absent if c in stored.column_names
    }
    known = {c: n for c, n in counts.items() if n}
    if not known:
        return None
    said = ", ".join(f"{c} ({n:,})" for c, n in known.items())
    return (
        f"no file holds column {', '.join(known)}, which earlier versions of some of these rows "
        f"had ({said}): their new versions store none (an optional column left out is null)"
    )


def corrected_versions(
    incoming: pa.Table, stored: pa.Table | None, key: str, version: str
) -> pa.Table:
    """The rows of `incoming` whose key and version a stored row has, with other content."""
    if stored is None or not stored.num_rows or not incoming.num_rows:
        return incoming.slice(0, 0)
    shared = [c for c in incoming.column_names if c in stored.column_names]
    con = duck.connect()
    con.register("incoming", incoming.append_column("__row", pa.array(range(incoming.num_rows))))
    con.register("stored", stored.select(shared))
    rows = con.sql(
        f"""select i.__row from incoming i join stored s
            on i."{key}" = s."{key}" and i."{version}" = s."{version}"
            where {_distinct(shared, key, version)}
            order by i.__row"""
    ).to_arrow_table()
    return incoming.take(rows.column("__row"))


def _distinct(columns: list[str], key: str, version: str) -> str:
    """SQL: some content column of incoming `i` differs from stored `s`."""
    return (
        " or ".join(f'i."{c}" is distinct from s."{c}"' for c in columns if c not in (key, version))
        or "false"
    )


def _report(
    entity: Entity,
    day: date | None,
    files: list[landing.LandingFile],
    reads: list[landing.FileRead],
    outcome: ValidationOutcome,
    written: delta.WriteOutcome,
    quarantine_version: int,
    unreadable: list[tuple[landing.FileRejection, str | None]],
) -> IngestReport:
    return IngestReport(
        entity=entity.name,
        day=day,
        files=[f.path for f in files],
        rows_read=outcome.rows_read,
        rows_accepted=len(outcome.accepted),
        rows_rejected=len(outcome.rejected),
        rows_repeated=outcome.rows_repeated,
        reason_counts=outcome.reason_counts,
        unexpected_columns=outcome.unexpected_columns,
        table_version=written.version,
        quarantine_version=quarantine_version,
        rows_inserted=written.rows_inserted,
        rows_updated=written.rows_updated,
        committed=written.committed,
        files_digest=landing.files_digest(files),
        rows_per_file={r.path: r.rows for r in reads if r.rejection is None},
        rejected_files=[quarantine.file_details(r, kept) for r, kept in unreadable],
        hints=outcome.hints,
    )
