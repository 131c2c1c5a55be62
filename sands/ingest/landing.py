"""The landing zone: list drops, fingerprint them for the sensor, read them into raw frames.

Layout: `interactions/<YYYY-MM-DD>/*.{parquet,csv,jsonl}`, `users/*.<ext>`, `artworks/*.<ext>`.
Files whose name starts with `.` or `_` are in-flight temporaries and are ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import uuid
from dataclasses import dataclass, field
from datetime import date

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sands.ingest.contract import FILE_FORMATS, STRING, Entity
from sands.ingest.validation import SOURCE_FILE, SOURCE_ROW

_ARROW_STRINGS = {pa.string(): STRING, pa.large_string(): STRING}


@dataclass(frozen=True)
class LandingFile:
    """One file in the landing zone and the fingerprint that tells the sensor it changed."""

    path: str
    entity: str
    day: date | None
    fingerprint: str
    size: int | None = None


def s3fs_options(storage_options: dict[str, str]) -> dict[str, object]:
    """Translate delta-rs style AWS options into s3fs keyword arguments."""
    client: dict[str, str] = {}
    if "AWS_REGION" in storage_options:
        client["region_name"] = storage_options["AWS_REGION"]
    options: dict[str, object] = {
        "key": storage_options.get("AWS_ACCESS_KEY_ID"),
        "secret": storage_options.get("AWS_SECRET_ACCESS_KEY"),
        "token": storage_options.get("AWS_SESSION_TOKEN"),
        "endpoint_url": storage_options.get("AWS_ENDPOINT_URL"),
        "client_kwargs": client,
    }
    return {k: v for k, v in options.items() if v}


def filesystem(
    uri: str, storage_options: dict[str, str] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a local path or object-store URI, and the path within it."""
    kwargs = s3fs_options(storage_options or {}) if uri.startswith(("s3://", "s3a://")) else {}
    fs, path = fsspec.core.url_to_fs(uri, **kwargs)
    return fs, path


def _fingerprint(info: dict) -> str:
    stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created")
    return f"{info.get('size')}:{stamp}"


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path)
    return not name.startswith((".", "_")) and name.rsplit(".", 1)[-1] in FILE_FORMATS


def parse_day(folder: str) -> date | None:
    """The landing day of a `YYYY-MM-DD` folder name, or None if it is not one."""
    try:
        return date.fromisoformat(folder)
    except ValueError:
        return None


def list_files(
    fs: fsspec.AbstractFileSystem, root: str, entity: Entity, day: date | None = None
) -> list[LandingFile]:
    """Data files of one feed (optionally one landing day), sorted by path."""
    base = posixpath.join(root, entity.name)
    if day is not None:
        base = posixpath.join(base, day.isoformat())
    if not fs.exists(base):
        return []
    fs.invalidate_cache()
    found = fs.find(base, detail=True, maxdepth=2 if entity.daily and day is None else 1)
    files = []
    for path, info in sorted(found.items()):
        if info.get("type") != "file" or not _is_data_file(path):
            continue
        file_day = None
        if entity.daily:
            file_day = parse_day(posixpath.basename(posixpath.dirname(path)))
            if file_day is None:
                continue
        files.append(LandingFile(path, entity.name, file_day, _fingerprint(info), info.get("size")))
    return files


def invalid_day_folders(fs: fsspec.AbstractFileSystem, root: str, entity: Entity) -> list[str]:
    """Folders under a daily feed whose names are not dates (their files are never ingested)."""
    base = posixpath.join(root, entity.name)
    if not entity.daily or not fs.exists(base):
        return []
    return sorted(
        p
        for p in fs.ls(base, detail=False)
        if fs.isdir(p) and parse_day(posixpath.basename(p)) is None
    )


UNREADABLE = "file:unreadable"  # the bytes are not a file of the format its name says
UNOPENABLE = "file:unopenable"  # the bytes could not be fetched at all
BAD_LINE = "row:invalid_json"  # a JSON line that does not parse (e.g. truncated)
NOT_OBJECT = "row:not_an_object"  # a JSON line that parses to an array, number, string or null
# Fetch errors a retry would not cure. Others (connection resets, timeouts) fail the run, so it
# is retried, rather than quarantining a good file for a network blip the sensor never revisits.
_LASTING_FETCH_ERRORS = (PermissionError, FileNotFoundError, IsADirectoryError)


@dataclass(frozen=True)
class DamagedRow:
    """A line of a readable file that is not a record; kept as its raw text."""

    row: int
    reason: str
    text: str


@dataclass(frozen=True)
class FileRejection:
    """A landing file that could not be read at all, with what is known about its bytes."""

    path: str
    size: int | None
    sha256: str | None
    reason: str
    message: str
    payload: bytes | None = field(default=None, repr=False, compare=False)


@dataclass
class FileRead:
    """One landing file as read: its records, its damaged lines, or why it was unreadable."""

    path: str
    frame: pd.DataFrame
    damaged: list[DamagedRow] = field(default_factory=list)
    rejection: FileRejection | None = None

    @property
    def rows(self) -> int:
        """Rows the file holds: records plus damaged lines (0 when unreadable)."""
        return len(self.frame) + len(self.damaged)


def _message(exc: BaseException) -> str:
    """The parser's message on one short line."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


def _rejected(
    path: str, reason: str, exc: BaseException, payload: bytes | None, size: int | None
) -> FileRead:
    digest = hashlib.sha256(payload).hexdigest() if payload is not None else None
    rejection = FileRejection(path, size, digest, reason, _message(exc), payload)
    return FileRead(path, pd.DataFrame(), rejection=rejection)


def _json_line(line: bytes) -> tuple[dict | None, str | None]:
    """A line's record, or the reason it is not one."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, BAD_LINE
    return (value, None) if isinstance(value, dict) else (None, NOT_OBJECT)


def _json_lines(payload: bytes) -> tuple[pd.DataFrame, list[int], list[DamagedRow]]:
    try:
        frame = pd.read_json(io.BytesIO(payload), lines=True, dtype=False, convert_dates=False)
        return frame, list(range(len(frame))), []
    except (ValueError, AttributeError, TypeError):
        pass  # some line is damaged: go line by line, so only that line is quarantined
    records, rows, damaged = [], [], []
    lines = [line for line in payload.splitlines() if line.strip()]
    for number, line in enumerate(lines):
        record, reason = _json_line(line)
        if reason is None:
            records.append(record)
            rows.append(number)
        else:
            damaged.append(DamagedRow(number, reason, line.decode("utf-8", "backslashreplace")))
    return pd.DataFrame.from_records(records), rows, damaged


def _parse(fmt: str, payload: bytes) -> tuple[pd.DataFrame, list[int], list[DamagedRow]]:
    """Records, their row numbers and damaged lines; raises when the bytes are not the format."""
    # An empty drop (an upstream with nothing to send) is zero rows, not a broken file.
    if not (payload if fmt == "parquet" else payload.strip()):
        return pd.DataFrame(), [], []
    if fmt == "parquet":
        frame = pq.read_table(io.BytesIO(payload)).to_pandas(types_mapper=_ARROW_STRINGS.get)
    elif fmt == "csv":
        frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False, na_values=[""])
    else:
        return _json_lines(payload)
    return frame, list(range(len(frame))), []


def read_file(fs: fsspec.AbstractFileSystem, path: str, size: int | None = None) -> FileRead:
    """One landing file as raw rows (values as stored, plus source file and row number).

    Never raises on bad bytes: an unreadable file comes back as a rejection, damaged JSON lines
    as damaged rows, so one broken drop cannot stop the rest of its day.
    """
    try:
        with fs.open(path, "rb") as handle:
            payload = handle.read()
    except _LASTING_FETCH_ERRORS as exc:
        return _rejected(path, UNOPENABLE, exc, None, size)
    try:
        frame, rows, damaged = _parse(path.rsplit(".", 1)[-1], payload)
    except Exception as exc:  # parsers raise many types
        return _rejected(path, UNREADABLE, exc, payload, len(payload))
    frame[SOURCE_FILE] = path
    frame[SOURCE_ROW] = rows
    return FileRead(path, frame, damaged)


def read_files(fs: fsspec.AbstractFileSystem, files: list[LandingFile]) -> list[FileRead]:
    """Each file read on its own, with the columns and value types it really had."""
    return [read_file(fs, f.path, f.size) for f in files]


def landing_path(file: LandingFile) -> str:
    """The file's path inside the landing zone (`<entity>/[<day>/]<name>`), wherever it lives."""
    cut = file.path.rfind(f"/{file.entity}/")
    return file.path[cut + 1 :] if cut >= 0 else file.path


def files_digest(files: list[LandingFile]) -> str:
    """A short stable hash over paths inside the landing zone and fingerprints (run keys, data
    versions): a home moved or mounted elsewhere keeps its digests, so nothing re-ingests."""
    digest = hashlib.sha256()
    for f in sorted(files, key=landing_path):
        digest.update(f"{landing_path(f)}|{f.fingerprint}\n".encode())
    return digest.hexdigest()[:16]


def write_table(fs: fsspec.AbstractFileSystem, path: str, table: pa.Table) -> None:
    """Write a typed drop in the format its extension names, atomically."""
    fmt = path.rsplit(".", 1)[-1]
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer)
    elif fmt == "csv":
        # CRLF line ends make the writer quote any value holding a lone \r, which readers
        # would otherwise take for the end of a row.
        _csv_frame(table).to_csv(buffer, index=False, lineterminator="\r\n")
    else:
        _json_frame(table).to_json(buffer, orient="records", lines=True, date_format="iso")
    put_atomically(fs, path, buffer.getvalue())


def write_records(fs: fsspec.AbstractFileSystem, path: str, records: list[dict]) -> None:
    """Write loosely typed records (as a messy upstream would) as JSON lines, atomically."""
    payload = "".join(json.dumps(r, default=str) + "\n" for r in records).encode()
    put_atomically(fs, path, payload)


def put_atomically(fs: fsspec.AbstractFileSystem, path: str, payload: bytes) -> None:
    """Write bytes under a dot-file name, then rename: readers never see half a file."""
    # Readers skip dot-files, so a half-written drop is never picked up.
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = posixpath.join(posixpath.dirname(path), f".{uuid.uuid4().hex}.tmp")
    with fs.open(tmp, "wb") as handle:
        handle.write(payload)
    fs.mv(tmp, path)


def _csv_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in table.column_names:
        if pa.types.is_list(table.schema.field(name).type):
            frame[name] = frame[name].map(lambda v: "|".join(v) if v is not None else None)
        elif pa.types.is_timestamp(table.schema.field(name).type):
            frame[name] = frame[name].map(lambda v: v.isoformat() if pd.notna(v) else None)
    return frame


def _json_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in table.column_names:
        if pa.types.is_list(table.schema.field(name).type):
            frame[name] = frame[name].map(lambda v: list(v) if v is not None else None)
    return frame


def changed_groups(
    files: list[LandingFile], seen: dict[str, str]
) -> dict[tuple[str, date | None], list[LandingFile]]:
    """Feeds (and, for daily feeds, days) with a file that is new or changed since `seen`.

    Each group lists all of its current files, because the whole group is re-ingested.
    """
    groups: dict[tuple[str, date | None], list[LandingFile]] = {}
    for f in files:
        groups.setdefault((f.entity, f.day), []).append(f)
    return {
        group: members
        for group, members in groups.items()
        if any(seen.get(f.path) != f.fingerprint for f in members)
    }
