"""What ingestion could not read: damaged lines and unreadable files, as quarantine rows.

An unreadable file becomes one file-level record (its path, size, sha256, reason and the parser's
message, `source_row` null) and its bytes are copied, unchanged, to `lake/quarantine/files/`. A
damaged line of a readable file becomes one row-level record holding the line's raw text.
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow.compute as pc

from sands.ingest import landing
from sands.ingest.contract import Entity
from sands.ingest.landing import FileRead, FileRejection
from sands.lake import delta, layout
from sands.settings import join

COLUMNS = ["source_file", "source_row", "record_key", "reasons", "record", "quarantined_at"]


def files_uri(lake_root: str, entity: Entity, day: date | None = None) -> str:
    """The folder that keeps an entity's (and landing day's) unreadable files."""
    folder = layout.quarantined_files(lake_root, entity.name)
    return join(folder, day.isoformat()) if day is not None else folder


# Bytes a file name may take on common file systems (ext4, APFS, NTFS in UTF-16 units).
_NAME_BYTES = 255


def kept_name(sha256: str, path: str) -> str:
    """`<sha256 prefix>-<name>`, the name's end kept (its extension) when both are too long."""
    prefix = f"{sha256[:16]}-"
    name = posixpath.basename(path).encode()
    room = _NAME_BYTES - len(prefix)
    # A cut through a multi-byte character drops its remaining bytes.
    return prefix + name[-room:].decode("utf-8", "ignore")


def keep_bytes(
    folder: str, rejection: FileRejection, storage_options: dict[str, str] | None = None
) -> str | None:
    """Copy an unreadable file's bytes unchanged into `folder`; where they are (None: no bytes).

    Named by checksum, so a rerun finds the copy instead of writing a second one.
    """
    if rejection.payload is None or rejection.sha256 is None:
        return None
    name = kept_name(rejection.sha256, rejection.path)
    fs, base = landing.filesystem(folder, storage_options)
    target = posixpath.join(base, name)
    if not fs.exists(target):
        landing.put_atomically(fs, target, rejection.payload)
    return join(folder, name)


def file_details(rejection: FileRejection, kept_at: str | None) -> dict[str, object]:
    """What is known of an unreadable file: path, size, sha256, reason, message, kept copy."""
    return {
        "path": rejection.path,
        "size": rejection.size,
        "sha256": rejection.sha256,
        "reason": rejection.reason,
        "message": rejection.message,
        "kept_at": kept_at,
    }


def rejected_file_line(details: dict[str, object]) -> str:
    """One line saying which file could not be read, why, and where its bytes are."""
    kept = f"bytes kept at {details['kept_at']}" if details.get("kept_at") else "no bytes to keep"
    return landing.printable(
        f"{details['path']} ({details['size']} bytes) could not be read: {details['message']}; "
        f"quarantined as one {details['reason']} record, {kept}"
    )


def file_record(rejection: FileRejection, kept_at: str | None) -> dict[str, object]:
    """The one quarantine record of an unreadable file."""
    return {
        "source_file": rejection.path,
        "source_row": None,
        "record_key": None,
        "reasons": [rejection.reason],
        "record": json.dumps(file_details(rejection, kept_at)),
    }


def _frame(records: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=COLUMNS[:-1])
    return frame.assign(quarantined_at=pd.Timestamp(datetime.now(UTC)))


def damaged_rows(reads: list[FileRead]) -> pd.DataFrame:
    """One quarantine row per damaged line, its raw text as the record."""
    return _frame(
        [
            {
                "source_file": read.path,
                "source_row": row.row,
                "record_key": None,
                "reasons": [row.reason],
                "record": row.text,
            }
            for read in reads
            for row in read.damaged
        ]
    )


def file_rows(rejected: list[tuple[FileRejection, str | None]]) -> pd.DataFrame:
    """One quarantine row per unreadable file, given where its bytes were kept."""
    return _frame([file_record(rejection, kept_at) for rejection, kept_at in rejected])


def counts(uri: str, storage_options: dict[str, str] | None = None) -> tuple[int, int]:
    """Rows and files a quarantine table holds (file-level records have no row number)."""
    table = delta.open_table(uri, storage_options)
    if table is None:
        return 0, 0
    dataset = table.to_pyarrow_dataset()
    files = dataset.count_rows(filter=pc.field("source_row").is_null())
    return dataset.count_rows() - files, files
