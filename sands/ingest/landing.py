"""The landing zone: list drops, fingerprint them for the sensor, read them into raw frames.

Layout: `interactions/<YYYY-MM-DD>/*.{parquet,csv,jsonl,json}`, `users/*.<ext>`, `artworks/*.<ext>`;
extensions in any case, optionally gzipped (`.csv.gz`). Files whose name starts with `.` or `_`
are in-flight temporaries and are ignored; anything else that is not read is named by
`skipped_entries`, so nothing is skipped silently.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from sands.ingest.contract import ENTITIES, FILE_FORMATS, STRING, Entity
from sands.ingest.validation import EXACT_FLOAT_INT, SOURCE_FILE, SOURCE_ROW

_ARROW_STRINGS = {pa.string(): STRING, pa.large_string(): STRING}
# JSON's non-standard constants as a value (not inside a string such as "Infinity Pool"),
# which Python's parser reads as floats.
_NON_FINITE = re.compile(rb"[:,\[]\s*-?(?:NaN|Infinity)\s*[,}\]]")
# Half of a UTF-16 surrogate pair escaped on its own (an emoji cut in two before encoding): not
# text. pandas' reader drops a lone high half and keeps a lone low half, which no table can store.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


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


GZIP = ".gz"
_DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
# Landing days an event time can fall on: pandas' nanosecond timestamps hold 1677-09-21 to
# 2262-04-11, and Dagster writes partition keys of years before 1000 without their zeros.
FIRST_DAY, LAST_DAY = date(1678, 1, 1), date(2261, 12, 31)


def _hidden(path: str) -> bool:
    return posixpath.basename(path).startswith((".", "_"))


def file_format(path: str) -> str | None:
    """The format a file's name says (case-insensitive; `.gz` after it for gzip), or None."""
    name = posixpath.basename(path).lower().removesuffix(GZIP)
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    return extension if extension in FILE_FORMATS else None


def _is_text(path: str) -> bool:
    """False for a name whose bytes are not UTF-8 (a Latin-1 `café.csv`): no table, digest or
    object store key can hold it as it is."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str) -> str:
    """A path as one line of text: bytes that are not UTF-8 and control characters escaped."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _is_data_file(path: str) -> bool:
    return not _hidden(path) and _is_text(path) and file_format(path) is not None


def _file_info(fs: fsspec.AbstractFileSystem, path: str, info: dict) -> dict | None:
    """A listed entry's file details, or None when it is not a file. A symbolic link lists as
    "other" with its own time: read what it points at, so rewriting the target is seen."""
    if not info.get("islink"):
        return info if info.get("type") == "file" else None
    try:
        target = fs.info(path)
    except OSError:  # a link to nothing
        return None
    return target if target.get("type") == "file" else None


def parse_day(folder: str) -> date | None:
    """The landing day of a `YYYY-MM-DD` folder name (FIRST_DAY..LAST_DAY), or None."""
    if not _DAY_NAME.fullmatch(folder):
        return None  # Python also reads "20260902" and "2026-W36-2" as dates
    try:
        day = date.fromisoformat(folder)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


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
    by_day = entity.daily and day is None
    # One level deeper than the files: a dataset folder's parts.
    found = fs.find(base, detail=True, maxdepth=3 if by_day else 2)
    files = []
    for path, info in sorted(found.items()):
        parts = posixpath.relpath(path, base).split("/")
        if by_day:
            file_day, parts = parse_day(parts[0]), parts[1:]
            if file_day is None:
                continue
        else:
            file_day = day
        if any(_hidden(p) for p in parts[:-1]) or not _is_data_file(path):
            continue
        if (info := _file_info(fs, path, info)) is None:
            continue
        files.append(LandingFile(path, entity.name, file_day, _fingerprint(info), info.get("size")))
    return files


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_TEXT = "a name that is not UTF-8 text: rename it to be read"
_NOT_A_DAY = f"not a YYYY-MM-DD day folder from {FIRST_DAY} to {LAST_DAY}"
_FOLDER_IN_DATASET = "a folder inside a dataset folder is not read"
_NOT_A_FORMAT = (
    "not "
    + ", ".join(f".{f}" for f in FILE_FORMATS[:-1])
    + f" or .{FILE_FORMATS[-1]} (or one of them {GZIP})"
)


def _why_unread(fs: fsspec.AbstractFileSystem, path: str, info: dict, folder: str) -> str | None:
    """Why an entry of a folder that holds data files is not read (None: it is read)."""
    if info.get("type") == "directory":
        return folder
    if not _is_text(path):
        return _NOT_TEXT
    if not _is_data_file(path):
        return _NOT_A_FORMAT
    return None if _file_info(fs, path, info) else "a link to nothing, or not a regular file"


def skipped_entries(
    fs: fsspec.AbstractFileSystem, root: str, entities: list[Entity]
) -> list[tuple[str, str]]:
    """(path, why) for everything under the feeds' folders that ingestion never reads."""
    skipped: list[tuple[str, str]] = []
    for entity in entities:
        base = posixpath.join(root, entity.name)
        if not fs.exists(base):
            continue
        fs.invalidate_cache(base)
        # One listing of the whole feed (one paginated call on an object store).
        found = fs.find(base, detail=True, withdirs=True, maxdepth=3)
        for path, info in sorted(found.items()):
            parts = posixpath.relpath(path, base).split("/")
            if path.rstrip("/") == base.rstrip("/") or any(_hidden(p) for p in parts):
                continue
            if entity.daily:
                if len(parts) == 1 and info.get("islink") and fs.isdir(path):
                    skipped.append((path, "a link to a folder: day folders are read, not followed"))
                elif len(parts) == 1 and info.get("type") != "directory":
                    skipped.append((path, "a daily feed's files go in a YYYY-MM-DD folder"))
                elif len(parts) == 1 and parse_day(parts[0]) is None:
                    skipped.append((path, _NOT_A_DAY))
                if len(parts) == 1 or parse_day(parts[0]) is None:
                    continue
                parts = parts[1:]
            if len(parts) <= 2 and (why := _in_folder_unread(fs, path, info, len(parts) == 1)):
                skipped.append((path, why))
    return skipped


def _in_folder_unread(
    fs: fsspec.AbstractFileSystem, path: str, info: dict, top: bool
) -> str | None:
    """Why an entry of a feed's (or day's) folder, or of a dataset folder in it, is not read.
    A folder at the top is a dataset (Spark's and Hive's output: part files), read whole."""
    if info.get("type") == "directory":
        return None if top else _FOLDER_IN_DATASET
    return _why_unread(fs, path, info, _FOLDER_IN_DATASET)


def skipped_notes(
    uri: str, storage_options: dict[str, str] | None = None, doing: str = "ingested"
) -> list[str]:
    """One line per landing entry that is never read: `<path>: <why>; not <doing>`."""
    return _lines(uri, storage_options, skipped_entries, f"not {doing}")


def _lines(
    uri: str,
    storage_options: dict[str, str] | None,
    entries: Callable[[fsspec.AbstractFileSystem, str, list[Entity]], list[tuple[str, str]]],
    ending: str,
) -> list[str]:
    fs, root = filesystem(uri, storage_options)
    return [
        f"{printable(posixpath.relpath(path, root))}: {why}; {ending}"
        for path, why in entries(fs, root, list(ENTITIES.values()))
    ]


def unlisted_folders(
    fs: fsspec.AbstractFileSystem, root: str, entities: list[Entity]
) -> list[tuple[str, str]]:
    """(path, why) for each feed folder, or day folder of a daily feed, whose files cannot be
    listed: a listing skips such a folder without a word, and its files would be missed. Only
    local folders can deny a listing (an object store lists by prefix)."""
    if not isinstance(fs, LocalFileSystem):
        return []
    unlisted: list[tuple[str, str]] = []
    for entity in entities:
        base = posixpath.join(root, entity.name)
        if not os.path.lexists(base):
            continue
        folders = [base]
        if entity.daily and os.path.isdir(base):
            try:
                with os.scandir(base) as entries:
                    folders += [e.path for e in entries if parse_day(e.name) and e.is_dir()]
            except OSError:
                pass  # the feed folder itself is reported below
        for folder in folders:
            try:
                os.scandir(folder).close()
            except OSError as exc:
                unlisted.append((folder, f"cannot be listed ({_message(exc)})"))
    return unlisted


def unlisted_notes(
    uri: str, storage_options: dict[str, str] | None = None, doing: str = "ingested"
) -> list[str]:
    """One line per landing folder whose files cannot be listed: `<path>: <why>; ...`."""
    return _lines(uri, storage_options, unlisted_folders, f"its files are not {doing}")


UNREADABLE = "file:unreadable"  # the bytes are not a file of the format its name says
UNOPENABLE = "file:unopenable"  # the bytes could not be fetched at all
BAD_LINE = "row:invalid_json"  # a JSON line that does not parse (e.g. truncated)
NOT_TEXT = "row:invalid_unicode"  # a JSON line whose string escapes half a surrogate pair
NOT_OBJECT = "row:not_an_object"  # a JSON line that parses to an array, number, string or null
SHORT_ROW = "row:missing_fields"  # a CSV row with fewer fields than its header (a cut upload)
REPEATED_KEY = "row:duplicate_key"  # a JSON object naming a field twice: which one is meant?
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


class _RepeatedKeys(dict):
    """An object that named a field twice (JSON keeps the last; the data meant is not known)."""


def _object(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    return value if len(value) == len(pairs) else _RepeatedKeys(value)


def _repeats_keys(value: object) -> bool:
    if isinstance(value, dict):
        return isinstance(value, _RepeatedKeys) or any(map(_repeats_keys, value.values()))
    return isinstance(value, list) and any(map(_repeats_keys, value))


def _json_line(line: bytes) -> tuple[dict | None, str | None]:
    """A line's record, or the reason it is not one. `NaN` and `Infinity` stay text: as a
    float, NaN would read as a null, and a broken amount would land as no amount."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=str, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        return None, BAD_LINE
    if not isinstance(value, dict):
        return None, NOT_OBJECT
    if _repeats_keys(value):
        return None, REPEATED_KEY
    if _LONE_SURROGATE.search(line):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return None, NOT_TEXT
    return value, None


def _exact(frame: pd.DataFrame) -> bool:
    """False when a column came back as floats holding integers past float64's exact range:
    pandas reads integers with a null among them as floats, rounding a 64-bit id."""
    floats = frame.select_dtypes("float")
    return not (floats.abs() >= EXACT_FLOAT_INT).any().any()


def _json_array(payload: bytes) -> tuple[pd.DataFrame, list[int], list[DamagedRow]] | None:
    """A file holding one JSON array of objects (`to_json(orient="records")`, named .jsonl):
    its elements are the rows. None when the bytes are not such an array."""
    if not payload.lstrip().startswith(b"["):
        return None
    try:
        values = json.loads(payload.decode("utf-8"), parse_constant=str, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        return None
    if not values or not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        return None  # not records: its lines are judged one by one
    # Each element as an ASCII line, lone surrogates escaped as they landed; one that named a
    # field twice keeps the last value of each, and is quarantined as such.
    lines = [json.dumps(v).encode() for v in values]
    frame, rows, damaged = _records(lines)
    repeated = {i for i, v in enumerate(values) if _repeats_keys(v)}
    if not repeated:
        return frame, rows, damaged
    kept = [i for i, row in enumerate(rows) if row not in repeated]
    damaged += [DamagedRow(i, REPEATED_KEY, lines[i].decode()) for i in sorted(repeated)]
    return frame.iloc[kept].reset_index(drop=True), [rows[i] for i in kept], damaged


def _records(lines: list[bytes]) -> tuple[pd.DataFrame, list[int], list[DamagedRow]]:
    """Each line's record (values as parsed, integers exact) or why it is damaged."""
    records, rows, damaged = [], [], []
    for number, line in enumerate(lines):
        record, reason = _json_line(line)
        if reason is None:
            records.append(record)
            rows.append(number)
        else:
            damaged.append(DamagedRow(number, reason, line.decode("utf-8", "backslashreplace")))
    return pd.DataFrame(records, dtype=object), rows, damaged


def _json_lines(payload: bytes) -> tuple[pd.DataFrame, list[int], list[DamagedRow]]:
    try:
        if _NON_FINITE.search(payload) or _LONE_SURROGATE.search(payload):
            raise ValueError("NaN, Infinity or half a surrogate pair: read line by line")
        frame = pd.read_json(io.BytesIO(payload), lines=True, dtype=False, convert_dates=False)
        # Lines that are arrays come back as numbered columns: they are not records.
        records = all(isinstance(column, str) for column in frame.columns) and _exact(frame)
        if records and not _may_repeat_keys(payload):
            return frame, list(range(len(frame))), []
    except (ValueError, AttributeError, TypeError):
        pass  # some line is damaged: go line by line, so only that line is quarantined
    whole = _json_array(payload)
    if whole is not None:
        return whole
    return _records([line for line in payload.splitlines() if line.strip()])


# Lines checked at once for a repeated key: a block another fault stops is parsed line by line.
_KEY_CHECK_BLOCK = 1 << 20


def _may_repeat_keys(payload: bytes) -> bool:
    """Whether some line may name a field twice, which pandas reads silently as the last value:
    Arrow's reader (a tenth of pandas' time) says so per block of lines, unless another fault,
    such as a field whose type changes, stops it first; that block's lines are then parsed."""
    start = 0
    while start < len(payload):
        end = payload.find(b"\n", min(start + _KEY_CHECK_BLOCK, len(payload)))
        end = len(payload) if end < 0 else end + 1
        block = payload[start:end]
        try:
            pa_json.read_json(io.BytesIO(block))
        except pa.ArrowException as exc:
            if "specified twice" in str(exc):
                return True
            if any(_json_line(line)[1] == REPEATED_KEY for line in block.splitlines()):
                return True
        start = end
    return False


def _unique_names(names: list[str]) -> None:
    """Raise when a column name repeats: which of the two columns is the data is not known
    (pandas would keep the first and rename the other `<name>.1`)."""
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"the header names {', '.join(repr(n) for n in repeated)} more than once")


def _nul_message(payload: bytes, nul: int) -> str:
    """Why a CSV holding a NUL byte is not read: UTF-16 (a spreadsheet's "Unicode text") named
    as such, since every other byte of it is NUL."""
    if payload[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or (
        nul <= 1 and payload[nul : nul + 5 : 2] == b"\x00\x00\x00"
    ):
        return "UTF-16 text, not UTF-8: save or export the file as UTF-8 CSV"
    return f"a NUL byte at offset {nul}: not a text file"


def _comma_separated(names: list[str]) -> None:
    """Raise when the header is one name holding another separator (a `;` export of a
    spreadsheet set to a comma-decimal locale, or a tab-separated file): every row would be
    rejected for missing columns, which names nothing of the cause."""
    if len(names) == 1 and (separator := next((s for s in ";\t|" if s in names[0]), None)):
        raise ValueError(f"the header {names[0][:60]!r} is separated by {separator!r}, not commas")


def _nan_as_text(table: pa.Table) -> pa.Table:
    """Float columns holding NaN as text ("NaN", numbers as they print): pandas reads a NaN as
    a null, so a broken amount would land as no amount instead of being rejected."""
    for i, column in enumerate(table.schema):
        if pa.types.is_floating(column.type) and pc.any(pc.is_nan(table[i])).as_py():
            text = pc.if_else(pc.is_nan(table[i]), "NaN", pc.cast(table[i], pa.string()))
            table = table.set_column(i, column.name, text)
    return table


def _binary_type(kind: pa.DataType) -> pa.DataType:
    """The type with its text as bytes (a cast that checks nothing)."""
    if pa.types.is_dictionary(kind):
        return _binary_type(kind.value_type)
    if pa.types.is_string(kind):
        return pa.binary()
    if pa.types.is_large_string(kind):
        return pa.large_binary()
    if pa.types.is_list(kind):
        return pa.list_(_binary_type(kind.value_type))
    if pa.types.is_large_list(kind):
        return pa.large_list(_binary_type(kind.value_type))
    return kind


def _decoded(value: object) -> object:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return [_decoded(v) for v in value] if isinstance(value, list) else value


def _undecodable(table: pa.Table) -> dict[str, pd.Series]:
    """Columns holding bytes that are not UTF-8 (a writer that skipped the check), with those
    values as `bytes`: not text, so the contract rejects their rows and keeps them."""
    columns = {}
    for field_, column in zip(table.schema, table.columns, strict=True):
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            raw = column.cast(_binary_type(field_.type)).to_pylist()
            columns[field_.name] = pd.Series([_decoded(v) for v in raw], dtype=object)
    return columns


def _parse(
    fmt: str, payload: bytes, list_columns: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, list[int], list[DamagedRow]]:
    """Records, their row numbers and damaged lines; raises when the bytes are not the format.
    In CSV an empty cell of a `list_columns` column is an empty list (CSV has no other way to
    write one); every other empty cell is a null."""
    # An empty drop (an upstream with nothing to send) is zero rows, not a broken file.
    if not (payload if fmt == "parquet" else payload.strip()):
        return pd.DataFrame(), [], []
    if fmt == "parquet":
        # Without pandas' metadata an index written by `to_parquet` stays a column.
        table = pq.read_table(io.BytesIO(payload))
        _unique_names(table.column_names)
        table = _nan_as_text(table)
        undecodable = _undecodable(table)
        for name in undecodable:  # pandas cannot take them as text: set in afterwards
            index = table.column_names.index(name)
            table = table.set_column(index, name, pa.nulls(table.num_rows))
        # Integers with a null among them stay Python ints: as floats a 64-bit id is rounded.
        frame = table.to_pandas(
            types_mapper=_ARROW_STRINGS.get, ignore_metadata=True, integer_object_nulls=True
        )
        for name, values in undecodable.items():
            frame[name] = values
    elif fmt == "csv":
        if (nul := payload.find(b"\x00")) >= 0:
            # The parser would cut the value at it: the file is kept whole instead.
            raise ValueError(_nul_message(payload, nul))
        # "event_id, user_id": spaces around a column's name are no part of it. A value's are
        # kept (an id with them is rejected, `trimmed`, not taken for another id).
        header = pd.read_csv(io.BytesIO(payload), dtype=str, header=None, nrows=1)
        names = [str(name).strip() for name in header.iloc[0]] if len(header) else []
        _unique_names(names)
        _comma_separated(names)
        with warnings.catch_warnings():
            # Rows all one field longer than the header would make pandas read the first
            # column as an index, shifting every value one column left; with `index_col=False`
            # it warns instead, and drops the extra field: the file is unreadable either way.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                frame = pd.read_csv(
                    io.BytesIO(payload),
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    index_col=False,
                )
            except pd.errors.ParserWarning as exc:
                raise ValueError("a row holds more fields than the header names") from exc
        frame.columns = [str(name).strip() for name in frame.columns]
        for column in (c for c in list_columns if c in frame.columns):
            frame[column] = frame[column].fillna("")
        short = _short_rows(payload, len(names), len(frame))
        if short:
            kept = [row for row in range(len(frame)) if row not in short]
            damaged = [DamagedRow(row, SHORT_ROW, text) for row, text in short.items()]
            return frame.iloc[kept].reset_index(drop=True), kept, damaged
    else:
        return _json_lines(payload.removeprefix(codecs.BOM_UTF8))
    return frame, list(range(len(frame))), []


def _short_rows(payload: bytes, fields: int, rows: int) -> dict[int, str]:
    """The rows (by record number, as pandas counts them) with fewer fields than the header,
    and their text: pandas fills them out with nulls, so an upload cut off mid-line would land
    its last event with a truncated time and no session. Empty when the two parsers do not
    count the same records (then nothing is marked, as before)."""
    import pyarrow.csv as pa_csv  # imported on use: only CSV drops need it

    short: dict[int, str] = {}
    blanks = 0  # lines of only spaces: a one-field row to Arrow, no row to pandas

    def invalid(row: pa_csv.InvalidRow) -> str:
        nonlocal blanks
        if not row.text.strip():
            blanks += 1
        elif row.actual_columns < row.expected_columns and row.number is not None:
            short[row.number - 2 - blanks] = row.text  # the header is record 1
        return "skip"

    names = [f"c{i}" for i in range(fields)]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(payload),
            read_options=pa_csv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
    except pa.ArrowException:
        return {}
    return short if table.num_rows + len(short) == rows else {}


# Text compresses some 3-20 times; gzip cannot pass about 1,000. A file inflating past both
# bounds is a decompression bomb: refused before it takes the worker's memory.
_MAX_INFLATION, _ALWAYS_INFLATES = 200, 256 * 2**20


def _gunzip(payload: bytes) -> bytes:
    """The gzip file's bytes (every member), or ValueError once they pass the inflation bound."""
    limit = max(_ALWAYS_INFLATES, _MAX_INFLATION * len(payload))
    with gzip.GzipFile(fileobj=io.BytesIO(payload)) as stream:
        content = stream.read(limit + 1)
    if len(content) > limit:
        raise ValueError(
            f"inflates past {limit:,} bytes ({_MAX_INFLATION} times its size): a decompression "
            "bomb, or a file to land uncompressed"
        )
    return content


def read_file(
    fs: fsspec.AbstractFileSystem,
    path: str,
    size: int | None = None,
    list_columns: tuple[str, ...] = (),
    columns: tuple[str, ...] = (),
) -> FileRead:
    """One landing file as raw rows (values as stored, plus source file and row number).

    Never raises on bad bytes: an unreadable file comes back as a rejection, damaged JSON lines
    as damaged rows, so one broken drop cannot stop the rest of its day. A file of no row whose
    header names none of the feed's `columns` is not one of its files (an error page saved
    under the name, say): unreadable, not empty.
    """
    try:
        with fs.open(path, "rb") as handle:
            payload = handle.read()
    except _LASTING_FETCH_ERRORS as exc:
        return _rejected(path, UNOPENABLE, exc, None, size)
    try:
        # Decompressed apart: an unreadable file keeps the bytes it landed with.
        content = _gunzip(payload) if path.lower().endswith(GZIP) else payload
        frame, rows, damaged = _parse(file_format(path) or "", content, list_columns)
        named = [str(name) for name in frame.columns]
        if columns and named and frame.empty and not damaged and not set(named) & set(columns):
            raise ValueError(
                f"no row, and its header {named[0][:60]!r} names none of the feed's columns"
            )
    except Exception as exc:  # parsers raise many types
        return _rejected(path, UNREADABLE, exc, payload, len(payload))
    # A file's own columns of these names are its data: kept (and reported as unexpected).
    frame = frame.rename(columns={c: f"{c} (in the file)" for c in (SOURCE_FILE, SOURCE_ROW)})
    frame[SOURCE_FILE] = path
    frame[SOURCE_ROW] = rows
    return FileRead(path, frame, damaged)


def read_files(fs: fsspec.AbstractFileSystem, files: list[LandingFile]) -> list[FileRead]:
    """Each file read on its own, with the columns and value types it really had."""
    return [
        read_file(
            fs,
            f.path,
            f.size,
            ENTITIES[f.entity].list_columns,
            tuple(ENTITIES[f.entity].arrow_schema().names),
        )
        for f in files
    ]


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
