"""Split raw landing rows into contract-conforming rows and quarantined rows with reason codes.

Reason codes read `<column>:<what failed>`, e.g. `event_ts:invalid_type`, `event_type:isin`,
`event_id:duplicate`, `event_ts:after_landing_day`, `price:missing_column`.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from sands.ingest.contract import LANDING_DAY_COLUMN, STRING, Entity, is_id

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
INTERNAL_COLUMNS = (SOURCE_FILE, SOURCE_ROW)
# The largest integer a float64 holds exactly: an id read through a float past it is rounded.
EXACT_FLOAT_INT = 2**53
_REASONS = ["row", "reason"]

QUARANTINE_SCHEMA = pa_arrow.schema(
    [
        pa_arrow.field("source_file", pa_arrow.string()),
        pa_arrow.field("source_row", pa_arrow.int64()),
        pa_arrow.field("record_key", pa_arrow.string()),
        pa_arrow.field("reasons", pa_arrow.list_(pa_arrow.string())),
        pa_arrow.field("record", pa_arrow.string()),
        pa_arrow.field("quarantined_at", pa_arrow.timestamp("us", tz="UTC")),
    ]
)


@dataclass
class ValidationOutcome:
    """Accepted rows (typed, contract columns) and rejected rows (unchanged, with reasons)."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rows_read: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    unexpected_columns: list[str] = field(default_factory=list)
    # Reference rows identical to an earlier one of the drop (a full snapshot sent again): the
    # same fact, neither kept twice nor rejected.
    rows_repeated: int = 0
    # What a pattern in the rejections suggests about the source (e.g. folders cut on local days).
    hints: list[str] = field(default_factory=list)
    # Optional contract columns no file of the drop has: their rows store nulls there.
    absent_columns: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return len(self.accepted) + len(self.rejected) + self.rows_repeated == self.rows_read

    @property
    def reject_share(self) -> float:
        return len(self.rejected) / self.rows_read if self.rows_read else 0.0


def _reasons(rows: pd.Index | np.ndarray, reason: str) -> pd.DataFrame:
    return pd.DataFrame({"row": np.asarray(rows), "reason": reason})


def _only_strings(values: pd.Series) -> bool:
    """True when every non-null value is already a string (checked in C, not per value)."""
    if isinstance(values.dtype, pd.StringDtype):
        return True
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _as_strings(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if _only_strings(values):
        return values.astype(STRING), pd.Series(False, index=values.index)

    def convert(v: object) -> object:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return str(v)
        # Past 2^53 a float is a rounded integer: not the id the upstream sent.
        exact = isinstance(v, (float, np.floating)) and abs(v) < EXACT_FLOAT_INT
        if exact and float(v).is_integer():
            return str(int(v))
        return _BAD

    converted = values.map(convert, na_action="ignore")
    bad = converted.map(lambda v: v is _BAD)
    return converted.where(~bad & converted.notna(), None).astype(STRING), bad


# An integer written as a float ("42.0"): what pandas writes to CSV for a column of integer ids
# with a null among them. Up to 15 digits, which a float holds exactly.
_INTEGER_FLOAT = r"^(-?[0-9]{1,15})\.0+$"


def _composed(ids: pd.Series) -> pd.Series:
    """Ids in Unicode's composed form (NFC): "josé" typed on macOS (e + a combining accent) and
    elsewhere (é) are the same text, and would otherwise be two users."""
    if ids.empty:
        return ids
    ascii_only = pc.string_is_ascii(pa_arrow.array(ids.astype(STRING)))
    others = ~np.asarray(pc.fill_null(ascii_only, True), dtype=bool)
    if not others.any():  # nearly always: ASCII is composed already
        return ids
    rows = np.flatnonzero(others)
    composed = ids.copy()
    composed.iloc[rows] = [unicodedata.normalize("NFC", v) for v in ids.iloc[rows]]
    return composed


def _integer_float_text(ids: pd.Series) -> pd.Series:
    """Ids written as integer floats read as the integers, as JSON and Parquet numbers are."""
    if not ids.str.contains(".", regex=False).any():
        return ids
    return ids.str.replace(_INTEGER_FLOAT, r"\1", regex=True)


# What pandas reads as the clock's current time (exactly these): a rerun would store another time.
_CLOCK_WORDS = ("now", "today")
# What a nanosecond timestamp holds (about 1677-09-21 to 2262-04-11).
_TS_MIN, _TS_MAX = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


# An ISO string's own offset (or Z) at its end.
_OFFSET = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"


def _has_offset(text: pa_arrow.Array) -> np.ndarray:
    """Per string, whether it ends in a UTC offset (False for nulls): the usual file ends every
    one in `Z`, which needs no regex."""
    zulu = pc.ends_with(text, "Z")
    if not pc.all(pc.fill_null(zulu, True)).as_py():
        zulu = pc.match_substring_regex(text, _OFFSET)
    return pc.fill_null(zulu, False).to_numpy(zero_copy_only=False)


def _iso_to_utc(values: pd.Series) -> pd.Series:
    """ISO strings to UTC; one without an offset is UTC. Strings with and without an offset are
    parsed apart: pandas, given both, applies an earlier row's offset to a later naive one."""
    text = pc.utf8_trim_whitespace(pa_arrow.array(values.astype("string"), pa_arrow.string()))
    if pc.any(pc.ends_with(text, "z")).as_py():  # RFC 3339's lower-case UTC, unknown to pandas
        text = pc.replace_substring_regex(text, "z$", "Z")
        values = pd.Series(text.to_pandas(), index=values.index)
    offset = _has_offset(text)
    present = values.notna().to_numpy()
    if not offset.any() or offset[present].all():  # one kind only: one parse
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        return parsed.astype("datetime64[ns, UTC]")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for part in (offset, ~offset):
        parsed = pd.to_datetime(values[part], utc=True, errors="coerce", format="ISO8601")
        out[part] = parsed.astype("datetime64[ns, UTC]")
    return out


def _as_timestamps(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        converted = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values):
        converted = values.dt.tz_localize("UTC")
    elif pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        readable = values.where(~values.isin(_CLOCK_WORDS))
        converted = _iso_to_utc(readable)
    else:
        # Mixed or numeric values: only real timestamps and ISO strings are accepted.
        def convert(v: object) -> object:
            if isinstance(v, (pd.Timestamp, datetime)):
                return v
            if isinstance(v, date):  # a Parquet date: its midnight, as an ISO date in CSV is
                return v.isoformat()
            return v if isinstance(v, str) and v not in _CLOCK_WORDS else None

        converted = _iso_to_utc(values.map(convert, na_action="ignore"))
    # Parquet's microseconds reach years 1 and 9999; past nanoseconds' range is unreadable here.
    converted = converted.where((converted >= _TS_MIN) & (converted <= _TS_MAX))
    converted = converted.astype("datetime64[ns, UTC]")
    return converted, values.notna() & converted.isna()


def _as_numbers(
    values: pd.Series, integer: bool, limit: float = np.inf
) -> tuple[pd.Series, pd.Series]:
    """Numbers below `limit` in size (int64's range for integers); others are bad, booleans
    too (`true` is not a price of 1)."""
    booleans = np.zeros(len(values), dtype=bool)
    if pd.api.types.is_bool_dtype(values.dtype):
        booleans = values.notna().to_numpy()
    elif values.dtype == object:
        booleans = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(bool)
    if booleans.any():
        bad = pd.Series(booleans, index=values.index)
        numbers, also_bad = _as_numbers(values.astype(object).where(~bad), integer, limit)
        return numbers, bad | also_bad
    converted = pd.to_numeric(values, errors="coerce").astype("float64")
    if integer:
        limit = min(limit, 2.0**63)
    if np.isfinite(limit):  # a float column keeps inf for its checks to name
        converted = converted.where(~(converted.abs() >= limit))
    bad = values.notna() & converted.isna()
    if integer:
        fractional = converted.notna() & (converted != converted.round())
        bad |= fractional
        return converted.where(~fractional).round().astype("Int64"), bad
    return converted, bad


def _list_items(items: list) -> object:
    """The items, trimmed, without blank ones (a tag of spaces is no tag); _BAD if not text."""
    if not all(isinstance(x, str) for x in items):
        return _BAD
    return [x.strip() for x in items if x.strip()]


# A cell written as a list: `[`, then `]` or a quoted first item. A tag in brackets ("[draft]",
# "[1990s]") stays a tag.
_LIST_LITERAL = re.compile(r"^\[\s*(\]|[\"'])")
# A bracketed list in a text cell longer than this is not parsed (a hostile one could be deep).
_LIST_TEXT_LIMIT = 100_000


def _bracketed(text: str) -> list | None:
    """A list written in a text cell as JSON (`["a", "b"]`) or as Python writes one
    (`['a', 'b']`: pandas' `to_csv` of a list column), or None."""
    if len(text) > _LIST_TEXT_LIMIT:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return parsed if isinstance(parsed, list) else None


def _as_string_lists(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    def convert(v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if _LIST_LITERAL.match(text) and text.endswith("]"):
                items = _bracketed(text)
                return _BAD if items is None else _list_items(items)
            return _list_items(text.split("|"))
        if isinstance(v, (list, tuple, np.ndarray)):
            return _list_items(list(v))
        return _BAD

    converted = values.map(convert, na_action="ignore")
    bad = converted.map(lambda v: v is _BAD)
    return converted.where(~bad & converted.notna(), None), bad


_BAD = object()


def _coerce_column(values: pd.Series, arrow_type: pa_arrow.DataType) -> tuple[pd.Series, pd.Series]:
    if pa_arrow.types.is_timestamp(arrow_type):
        return _as_timestamps(values)
    if pa_arrow.types.is_integer(arrow_type):
        return _as_numbers(values, integer=True)
    if pa_arrow.types.is_decimal(arrow_type):
        # decimal(12, 2) holds amounts below 10^10: a larger one would fail the whole write.
        return _as_numbers(values, False, 10.0 ** (arrow_type.precision - arrow_type.scale))
    if pa_arrow.types.is_floating(arrow_type):
        return _as_numbers(values, integer=False)
    if pa_arrow.types.is_list(arrow_type):
        return _as_string_lists(values)
    return _as_strings(values)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def coerce_to_contract(
    raw: pd.DataFrame, schema: pa.DataFrameSchema
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast raw values to the contract's types; values that cannot be cast become reasons."""
    coerced: dict[str, pd.Series] = {}
    reasons = []
    for name, column in schema.columns.items():
        arrow_type = column.metadata["arrow"]
        # A list column left out, or a null in it, holds empty lists, as an empty CSV cell does.
        as_empty = pa_arrow.types.is_list(arrow_type) and not column.nullable
        if name not in raw.columns:
            empty = "" if as_empty else None
            placeholder = pd.Series([empty] * len(raw), index=raw.index, dtype=object)
            coerced[name] = _coerce_column(placeholder, arrow_type)[0]
            if column.required:
                reasons.append(_reasons(raw.index, f"{name}:missing_column"))
            continue
        values = raw[name].map(lambda v: "" if _missing(v) else v) if as_empty else raw[name]
        coerced[name], bad = _coerce_column(values, arrow_type)
        if is_id(column):
            coerced[name] = _composed(_integer_float_text(coerced[name]))
        reasons.append(_reasons(raw.index[bad.to_numpy(dtype=bool)], f"{name}:invalid_type"))
    frame = pd.DataFrame(coerced, index=raw.index)
    return frame, pd.concat(reasons, ignore_index=True) if reasons else pd.DataFrame(
        columns=_REASONS
    )


def _failure_reasons(errors: pa.errors.SchemaErrors) -> pd.DataFrame:
    cases = errors.failure_cases.dropna(subset=["index"])
    check = cases["check"].astype(str).str.split("(", n=1).str[0]
    check = check.replace(
        {"multiple_fields_uniqueness": "duplicate", "field_uniqueness": "duplicate"}
    )
    return pd.DataFrame(
        {"row": cases["index"].astype("int64"), "reason": cases["column"] + ":" + check}
    )


def contract_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Every (row, reason) where the typed frame breaks a column check, all checks at once."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _failure_reasons(errors)
    return pd.DataFrame(columns=_REASONS)


def duplicate_rows(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, copies_allowed: bool = False
) -> tuple[pd.DataFrame, pd.Index]:
    """Rows repeating the schema's unique key of an earlier row (the first one is kept), and,
    with `copies_allowed`, apart from them the rows that repeat an earlier row exactly."""
    keys = list(schema.unique or [])
    if not keys:
        return pd.DataFrame(columns=_REASONS), pd.Index([], dtype="int64")
    repeated = frame.duplicated(subset=keys, keep="first")
    copies = pd.Index([], dtype="int64")
    if copies_allowed and repeated.any():
        shared = frame[frame.duplicated(subset=keys, keep=False)]
        content = _row_content(shared, [c for c in schema.columns if c in shared.columns])
        copies = shared.index[content.duplicated(keep="first").to_numpy()]
    conflicting = frame.index[repeated.to_numpy()].difference(copies)
    return _reasons(conflicting, f"{'+'.join(keys)}:duplicate"), copies


def _row_content(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row's values as one comparable string (lists item by item, nulls alike)."""

    def text(v: object) -> str:
        if isinstance(v, list | tuple | np.ndarray):
            return repr([text(x) for x in v])
        return "<null>" if v is None or (not isinstance(v, str) and pd.isna(v)) else repr(v)

    return frame[columns].apply(lambda row: "\x1f".join(text(v) for v in row), axis=1)


def _plain(v: object) -> object:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return v.isoformat()
    if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"  # JSON has no infinity
    return v


def _record_json(raw: pd.DataFrame) -> list[str]:
    """Each row as it was read, with exactly its own file's columns."""
    data = raw.drop(columns=list(INTERNAL_COLUMNS), errors="ignore").astype(object)
    records = data.where(data.notna(), None).to_dict(orient="records")
    return [json.dumps({k: _plain(v) for k, v in r.items()}, default=str) for r in records]


def _quarantine_frame(parts: list[pd.DataFrame], reasons: pd.Series, key: str) -> pd.DataFrame:
    frames = []
    for part in parts:
        rows = part.loc[part.index.intersection(reasons.index)]
        if len(rows) == 0:
            continue
        keys = (
            rows[key].map(_plain).map(lambda v: None if v is None else str(v))
            if key in rows
            else None
        )
        frames.append(
            pd.DataFrame(
                {
                    "source_file": rows[SOURCE_FILE].astype(str).to_numpy(),
                    "source_row": rows[SOURCE_ROW].astype("int64").to_numpy(),
                    "record_key": keys.to_numpy() if keys is not None else None,
                    "reasons": reasons.loc[rows.index].to_numpy(),
                    "record": _record_json(rows),
                },
                index=rows.index,
            )
        )
    columns = ["source_file", "source_row", "record_key", "reasons", "record"]
    quarantined = pd.concat(frames).sort_index() if frames else pd.DataFrame(columns=columns)
    return quarantined.assign(quarantined_at=pd.Timestamp(datetime.now(UTC))).reset_index(drop=True)


def _alike(parts: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The parts with the same columns and dtypes (one producer's files) joined into one: a day
    of many small files is then cast once per shape, not once per file."""
    shapes: dict[tuple[tuple[str, str], ...], list[pd.DataFrame]] = {}
    for part in parts:
        shape = tuple((str(name), str(dtype)) for name, dtype in part.dtypes.items())
        shapes.setdefault(shape, []).append(part)
    return [group[0] if len(group) == 1 else pd.concat(group) for group in shapes.values()]


def _numbered(parts: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give the rows of all parts one running index, so reasons can point at any row."""
    numbered, offset = [], 0
    for part in parts:
        numbered.append(part.set_axis(pd.RangeIndex(offset, offset + len(part)), axis=0))
        offset += len(part)
    return numbered


def validate(
    raw: pd.DataFrame | list[pd.DataFrame],
    entity: Entity,
    landing_day: date | None = None,
    known_keys: set[str] | None = None,
    horizon: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Validate raw rows (a frame per source file) against the contract; none dropped silently.

    Files are cast apart unless alike, so a messy small file cannot turn a big typed one into
    slow Python objects; all rows are then checked together (uniqueness spans the files).
    """
    parts = _numbered([raw] if isinstance(raw, pd.DataFrame) else list(raw))
    schema = entity.schema(landing_day, horizon)
    cast = [coerce_to_contract(part, schema) for part in _alike(parts)]
    typed = (
        pd.concat([c[0] for c in cast]) if cast else coerce_to_contract(pd.DataFrame(), schema)[0]
    )
    if not typed.index.is_monotonic_increasing:
        typed = typed.sort_index()  # file order: the first of duplicate keys is kept
    reasons = [c[1] for c in cast] + [contract_failures(typed, _without_uniqueness(schema))]
    failed = pd.Index(pd.concat(reasons)["row"].unique())
    clean = typed.drop(index=failed)
    repeated, copies = duplicate_rows(clean, schema, copies_allowed=not entity.daily)
    reasons.append(repeated)
    if known_keys:
        seen = clean.index[clean[entity.key].isin(known_keys)]
        reasons.append(_reasons(seen, f"{entity.key}:already_ingested"))
    all_reasons = _collapse(pd.concat(reasons, ignore_index=True))
    accepted = typed.drop(index=all_reasons.index.union(copies))
    if entity.daily and landing_day is not None:
        accepted[LANDING_DAY_COLUMN] = landing_day
    read_columns = {c for part in parts for c in part.columns}
    counts = Counter(reason for codes in all_reasons for reason in codes)
    return ValidationOutcome(
        accepted=accepted.reset_index(drop=True),
        rejected=_quarantine_frame(parts, all_reasons, entity.key),
        rows_read=sum(len(part) for part in parts),
        reason_counts=dict(sorted(counts.items())),
        unexpected_columns=sorted(read_columns - set(schema.columns) - set(INTERNAL_COLUMNS)),
        absent_columns=[c for c in schema.columns if c not in read_columns] if parts else [],
        rows_repeated=len(copies),
        hints=_dated_after_hint(typed, all_reasons, landing_day)
        + _dated_before_hint(accepted, landing_day),
    )


# The widest offset west of UTC (UTC-12): a local day ends at most this long after the UTC one.
_WIDEST_OFFSET = pd.Timedelta(hours=12)


def _dated_after_hint(
    typed: pd.DataFrame, reasons: pd.Series, landing_day: date | None
) -> list[str]:
    """How far past its day folder the rejected events lie: within a day's time-zone offset, the
    folders were most likely cut on local days while `event_ts` is read as UTC."""
    code = "event_ts:after_landing_day"
    rows = reasons.index[reasons.map(lambda codes: code in codes)] if len(reasons) else []
    if landing_day is None or not len(rows):
        return []
    day_end = pd.Timestamp(landing_day, tz=UTC) + pd.Timedelta(days=1)
    past = typed.loc[rows, "event_ts"] - day_end
    near = past[past <= _WIDEST_OFFSET]
    if len(near) * 2 < len(past):  # mostly further than any zone: not a time-zone pattern
        return [f"{code} rows lie up to {_span(past.max())} past their folder's day"]
    beyond = len(past) - len(near)
    rest = f" ({beyond:,} further, up to {_span(past.max())})" if beyond else ""
    return [
        f"{code} rows lie up to {_span(near.max())} past their folder's day{rest} (its end is "
        "midnight UTC): event_ts is read as UTC (a time without an offset too), so folders cut "
        "on local days west of UTC put each evening here; name the folders by the UTC day"
    ]


# The widest offset east of UTC (UTC+14): a local day starts at most this long before the UTC one.
_WIDEST_EAST = pd.Timedelta(hours=14)
# Late events this share of a day or more, all within a local day's offset: folders cut on
# local days, not data arriving late (which a source sends a few percent of, spread out).
_LOCAL_DAY_SHARE = 0.2
_LOCAL_DAY_EVENTS = 10  # and at least this many: one late event on a quiet day is no pattern


def _dated_before_hint(accepted: pd.DataFrame, landing_day: date | None) -> list[str]:
    """When a large share of a day's accepted events are dated in the hours before it, within a
    time-zone offset: folders cut on local days east of UTC, which nothing rejects (late events
    are accepted) but which moves each morning's events to the day before."""
    if landing_day is None or "event_ts" not in accepted.columns or not len(accepted):
        return []
    early = pd.Timestamp(landing_day, tz=UTC) - accepted["event_ts"]
    near = early[(early > pd.Timedelta(0)) & (early <= _WIDEST_EAST)]
    if len(near) < max(_LOCAL_DAY_SHARE * len(accepted), _LOCAL_DAY_EVENTS):
        return []
    share = len(near) / len(accepted)
    return [
        f"{len(near):,} of the day's {len(accepted):,} accepted events ({share:.0%}) are dated "
        f"up to {_span(near.max())} before it (its start is midnight UTC): folders cut on local "
        "days east of UTC? They are kept as late events and judged on the UTC day they are "
        "dated, not this one; name the folders by the UTC day"
    ]


def _span(past: pd.Timedelta) -> str:
    hours = past / pd.Timedelta(hours=1)
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _without_uniqueness(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    # Uniqueness is judged only among rows that pass every other check, so a broken first copy
    # does not cost the good second copy its place.
    without = copy.copy(schema)
    without.unique = None
    return without


def _collapse(reasons: pd.DataFrame) -> pd.Series:
    """One sorted list of reason codes per rejected row; a failed cast hides its null check."""
    if reasons.empty:
        return pd.Series([], dtype=object, index=pd.Index([], dtype="int64"))
    grouped = reasons.drop_duplicates().groupby("row")["reason"].agg(list)

    def tidy(codes: list[str]) -> list[str]:
        cast_failed = {
            c.split(":")[0] for c in codes if c.endswith((":invalid_type", ":missing_column"))
        }
        return sorted(
            c for c in codes if not (c.endswith(":not_nullable") and c.split(":")[0] in cast_failed)
        )

    return grouped.map(tidy).sort_index()


def stored_table_failures(frame: pd.DataFrame, entity: Entity) -> dict[str, int]:
    """Contract failures in an already-stored table, plus keys stored more than once."""
    stored = frame.assign(**{SOURCE_FILE: "<stored>", SOURCE_ROW: range(len(frame))})
    failures = dict(validate(stored, entity).reason_counts)
    repeated = int(frame[entity.key].duplicated().sum()) if len(frame) else 0
    if repeated:
        failures[f"{entity.key}:stored_twice"] = repeated
    return failures
