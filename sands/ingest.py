"""Bronze ingestion: landing files -> validated Delta tables, rejected rows -> quarantine tables.

Interactions replace exactly their landing day's partition; users and artworks MERGE on their
ids. Quarantine tables are replaced for the same scope, so reruns never duplicate anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import pyarrow as pa

from sands import lake, landing
from sands.contract import INTERACTIONS, LANDING_DAY_COLUMN, Entity
from sands.settings import join
from sands.validation import QUARANTINE_SCHEMA, ValidationOutcome, validate


def bronze_uri(lake_root: str, entity: Entity) -> str:
    """Where an entity's accepted rows live."""
    return join(lake_root, "bronze", entity.name)


def history_uri(lake_root: str, entity: Entity) -> str:
    """Every accepted version of a reference feed's rows (users, artworks), never overwritten."""
    return join(lake_root, "bronze", f"{entity.name}_history")


def quarantine_uri(lake_root: str, entity: Entity) -> str:
    """Where an entity's rejected rows live, unchanged, with their reason codes."""
    return join(lake_root, "quarantine", entity.name)


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
    committed: bool = True
    files_digest: str = ""

    @property
    def balanced(self) -> bool:
        return self.rows_accepted + self.rows_rejected == self.rows_read

    @property
    def reject_share(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A typed frame as an Arrow table with exactly the contract's Delta schema."""
    arrays = []
    for f in schema:
        values = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame))
        array = pa.array(values, from_pandas=True)
        # Timestamps are stored at microsecond precision; finer digits are dropped on purpose.
        arrays.append(array.cast(f.type, safe=not pa.types.is_timestamp(f.type)))
    return pa.Table.from_arrays(arrays, schema=schema)


def _quarantine_table(outcome: ValidationOutcome, day: date | None) -> pa.Table:
    schema = QUARANTINE_SCHEMA
    rejected = outcome.rejected
    if day is not None:
        schema = schema.append(pa.field(LANDING_DAY_COLUMN, pa.date32(), nullable=False))
        rejected = rejected.assign(**{LANDING_DAY_COLUMN: day})
    return to_arrow(rejected, schema)


def ingest_day(
    landing_root: str,
    lake_root: str,
    day: date,
    storage_options: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest one landing day of interactions, replacing that day's bronze and quarantine rows."""
    fs, root = landing.filesystem(landing_root, storage_options)
    files = landing.list_files(fs, root, INTERACTIONS, day)
    raw = landing.read_files(fs, files)
    table_uri = bronze_uri(lake_root, INTERACTIONS)
    keys = [part[INTERACTIONS.key].dropna().astype(str) for part in raw if INTERACTIONS.key in part]
    candidates = pa.array(pd.concat(keys).unique() if keys else [], pa.string())
    known = lake.keys_present(
        table_uri,
        INTERACTIONS.key,
        candidates,
        exclude=(LANDING_DAY_COLUMN, day),
        storage_options=storage_options,
    )
    outcome = validate(raw, INTERACTIONS, landing_day=day, known_keys=known)
    written = lake.replace_partition(
        table_uri,
        to_arrow(outcome.accepted, INTERACTIONS.arrow_schema()),
        LANDING_DAY_COLUMN,
        day,
        storage_options,
    )
    quarantined = lake.replace_partition(
        quarantine_uri(lake_root, INTERACTIONS),
        _quarantine_table(outcome, day),
        LANDING_DAY_COLUMN,
        day,
        storage_options,
    )
    return _report(INTERACTIONS, day, files, outcome, written, quarantined.version)


def ingest_reference(
    entity: Entity,
    landing_root: str,
    lake_root: str,
    storage_options: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest every drop of a reference feed (users, artworks): MERGE on id, latest version wins."""
    fs, root = landing.filesystem(landing_root, storage_options)
    files = landing.list_files(fs, root, entity)
    outcome = validate(landing.read_files(fs, files), entity)
    accepted = to_arrow(outcome.accepted, entity.arrow_schema())
    key, version = entity.key, entity.version_column or ""
    written = lake.upsert(bronze_uri(lake_root, entity), accepted, key, version, storage_options)
    # Features are computed as of past dates, so they need the version valid then, not the latest.
    lake.insert_new(history_uri(lake_root, entity), accepted, [key, version], storage_options)
    quarantined = lake.replace_where(
        quarantine_uri(lake_root, entity),
        _quarantine_table(outcome, None),
        "source_file",
        [f.path for f in files],
        storage_options,
    )
    return _report(entity, None, files, outcome, written, quarantined.version)


def _report(
    entity: Entity,
    day: date | None,
    files: list[landing.LandingFile],
    outcome: ValidationOutcome,
    written: lake.WriteOutcome,
    quarantine_version: int,
) -> IngestReport:
    return IngestReport(
        entity=entity.name,
        day=day,
        files=[f.path for f in files],
        rows_read=outcome.rows_read,
        rows_accepted=len(outcome.accepted),
        rows_rejected=len(outcome.rejected),
        reason_counts=outcome.reason_counts,
        unexpected_columns=outcome.unexpected_columns,
        table_version=written.version,
        quarantine_version=quarantine_version,
        rows_inserted=written.rows_inserted,
        rows_updated=written.rows_updated,
        committed=written.committed,
        files_digest=landing.files_digest(files),
    )
