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
from dataclasses import dataclass
from datetime import date

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sands.contract import FILE_FORMATS, STRING, Entity
from sands.validation import SOURCE_FILE, SOURCE_ROW

_ARROW_STRINGS = {pa.string(): STRING, pa.large_string(): STRING}


@dataclass(frozen=True)
class LandingFile:
    """One file in the landing zone and the fingerprint that tells the sensor it changed."""

    path: str
    entity: str
    day: date | None
    fingerprint: str


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
        files.append(LandingFile(path, entity.name, file_day, _fingerprint(info)))
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


def read_file(fs: fsspec.AbstractFileSystem, path: str) -> pd.DataFrame:
    """One landing file as a raw frame, values as stored, plus its source file and row number."""
    fmt = path.rsplit(".", 1)[-1]
    with fs.open(path, "rb") as handle:
        payload = handle.read()
    if fmt == "parquet":
        frame = pq.read_table(io.BytesIO(payload)).to_pandas(types_mapper=_ARROW_STRINGS.get)
    elif fmt == "csv":
        frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False, na_values=[""])
    else:
        frame = pd.read_json(io.BytesIO(payload), lines=True, dtype=False, convert_dates=False)
    frame[SOURCE_FILE] = path
    frame[SOURCE_ROW] = range(len(frame))
    return frame


def read_files(fs: fsspec.AbstractFileSystem, files: list[LandingFile]) -> list[pd.DataFrame]:
    """One raw frame per file, each with the columns and value types its file really had."""
    return [read_file(fs, f.path) for f in files]


def files_digest(files: list[LandingFile]) -> str:
    """A short stable hash over paths and fingerprints, used for run keys."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        digest.update(f"{f.path}|{f.fingerprint}\n".encode())
    return digest.hexdigest()[:16]


def write_table(fs: fsspec.AbstractFileSystem, path: str, table: pa.Table) -> None:
    """Write a typed drop in the format its extension names, atomically."""
    fmt = path.rsplit(".", 1)[-1]
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer)
    elif fmt == "csv":
        _csv_frame(table).to_csv(buffer, index=False)
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
