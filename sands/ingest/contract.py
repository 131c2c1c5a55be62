"""The landing-zone data contract: pandera schemas that validation, the lake and the docs all read.

Each column carries its Arrow type (how it is stored in Delta) and a description in pandera's
column metadata, so `docs/data-contract.md` is generated from here and cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from sands.settings import positive_events_setting

# The funnel, weakest step first.
EVENT_TYPES: tuple[str, ...] = ("view", "click", "favourite", "purchase")
# The events that mean a user wanted the artwork: online conversions, and by default training
# positives and never recommended again (`positive_events`).
CONVERSION_EVENTS: tuple[str, ...] = ("favourite", "purchase")
LANDING_DAY_COLUMN = "landing_date"
TS = "datetime64[ns, UTC]"
# Arrow-backed strings: dtype checks and string checks stay vectorised on millions of rows.
STRING = pd.StringDtype("pyarrow")
PRICE_TYPE = pa_arrow.decimal128(12, 2)
STRING_LIST = pa_arrow.list_(pa_arrow.string())
TS_ARROW = pa_arrow.timestamp("us", tz="UTC")


def positive_events(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """What makes a training positive (and is not recommended again): `SANDS_POSITIVE_EVENTS`,
    or the conversions."""
    return positive_events_setting(EVENT_TYPES, env) or CONVERSION_EVENTS


def strongest_positives(present: set[str]) -> tuple[str, ...] | None:
    """For a history holding the event types `present` and no conversion (a click or view log):
    its strongest funnel step and every step above it; None when it holds a conversion (the
    default serves) or no event at all."""
    if present & set(CONVERSION_EVENTS):
        return None
    steps = [e for e in EVENT_TYPES if e in present]
    return EVENT_TYPES[EVENT_TYPES.index(steps[-1]) :] if steps else None


def _list_of_strings(values: pd.Series) -> pd.Series:
    return values.map(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))


# Nothing but whitespace, Unicode separators (a no-break space) and format characters (a
# zero-width space, a byte-order mark; `str.strip` keeps those): such an id reads as empty.
_BLANK = r"[\s\p{Z}\p{Cf}]*"


def _non_blank(values: pd.Series) -> pd.Series:
    # RE2 (Arrow strings) knows \p{..}; as fast as strip-and-measure on a million ids.
    return ~values.astype(STRING).str.fullmatch(_BLANK)


# A space (of any kind above) at either end of an id with something else in it: `' u5'` would
# be another user than `'u5'` (a blank id fails `non_blank` alone).
_OUTER_SPACE = r"^[\s\p{Z}\p{Cf}]+[^\s\p{Z}\p{Cf}]|[^\s\p{Z}\p{Cf}][\s\p{Z}\p{Cf}]+\z"


def _trimmed(values: pd.Series) -> pd.Series:
    # Arrow's RE2 on the strings themselves: a third of the time of pandas' `str` methods.
    outer = pc.match_substring_regex(pa_arrow.array(values.astype(STRING)), _OUTER_SPACE)
    kept = pc.fill_null(pc.invert(outer), True)  # a null is `not_nullable`'s to judge
    return pd.Series(kept.to_numpy(zero_copy_only=False), index=values.index)


# A control character in an id (a newline, a tab, a NUL): no one typed it, and it breaks every
# line, URL and CSV the id is written to later. CSV files holding NUL are unreadable already.
_CONTROL = r"[\x00-\x1f\x7f]"


def _printable(values: pd.Series) -> pd.Series:
    control = pc.match_substring_regex(pa_arrow.array(values.astype(STRING)), _CONTROL)
    kept = pc.fill_null(pc.invert(control), True)
    return pd.Series(kept.to_numpy(zero_copy_only=False), index=values.index)


# A missing value written as a word by the export that made the file (`NULL` from a database
# client, `None` from Python, `nan` from pandas): as an id it would be one user or artwork
# that every such row shares.
_NULL_WORD = r"(?i)[\s\p{Z}\p{Cf}]*(null|none|nan)[\s\p{Z}\p{Cf}]*"


def _not_a_null_word(values: pd.Series) -> pd.Series:
    word = pc.match_substring_regex(pa_arrow.array(values.astype(STRING)), f"^{_NULL_WORD}$")
    kept = pc.fill_null(pc.invert(word), True)
    return pd.Series(kept.to_numpy(zero_copy_only=False), index=values.index)


def _column(
    dtype: object,
    arrow: pa_arrow.DataType,
    description: str,
    *checks: pa.Check,
    nullable: bool = False,
    required: bool = True,
) -> pa.Column:
    return pa.Column(
        dtype,
        checks=list(checks),
        nullable=nullable,
        required=required,
        description=description,
        metadata={"arrow": arrow},
    )


NON_BLANK = pa.Check(_non_blank, name="non_blank", element_wise=False)
NOT_A_NULL_WORD = pa.Check(_not_a_null_word, name="not_a_null_word", element_wise=False)
TRIMMED = pa.Check(_trimmed, name="trimmed", element_wise=False)
PRINTABLE = pa.Check(_printable, name="printable", element_wise=False)
LIST_OF_STRINGS = pa.Check(_list_of_strings, name="list_of_strings", element_wise=False)
NON_NEGATIVE = pa.Check(lambda s: s >= 0, name="non_negative", element_wise=False)
# Prices are stored as decimal(12, 2); a third decimal place would be rounded away silently.
WHOLE_CENTS = pa.Check(
    lambda s: ((s * 100) - (s * 100).round()).abs() < 1e-6, name="whole_cents", element_wise=False
)
TS_CHECK_FLOOR = pd.Timestamp("1970-01-01", tz="UTC")
# Strictly after: the epoch itself is what a zero or an unset field becomes in most exports.
AFTER_EPOCH = pa.Check(lambda s: s > TS_CHECK_FLOOR, name="after_1970", element_wise=False)


def _id(description: str, *checks: pa.Check) -> pa.Column:
    column = _column(STRING, pa_arrow.string(), description, NON_BLANK, NOT_A_NULL_WORD, *checks)
    column.metadata["id"] = True
    return column


def is_id(column: pa.Column) -> bool:
    """An id column: text, whose value written as an integer float means that integer."""
    return bool((column.metadata or {}).get("id"))


def _ts(description: str, *checks: pa.Check) -> pa.Column:
    return _column(TS, TS_ARROW, description, AFTER_EPOCH, *checks)


def _text(
    description: str, *checks: pa.Check, nullable: bool = False, required: bool = True
) -> pa.Column:
    return _column(
        STRING, pa_arrow.string(), description, *checks, nullable=nullable, required=required
    )


def _tags(description: str, required: bool = True) -> pa.Column:
    return _column(object, STRING_LIST, description, LIST_OF_STRINGS, required=required)


def _not_after(landing_day: date) -> pa.Check:
    end = pd.Timestamp(datetime.combine(landing_day + timedelta(days=1), time(), tzinfo=UTC))
    return pa.Check(lambda s: s < end, name="after_landing_day", element_wise=False)


def _not_in_future(horizon: pd.Timestamp) -> pa.Check:
    return pa.Check(lambda s: s <= horizon, name="in_the_future", element_wise=False)


def reference_horizon(now: datetime, newest_day: date | None) -> pd.Timestamp:
    """The latest time a user or artwork row may carry: a day past both the clock and the end of
    the newest landing day (a played scenario runs ahead of the clock). A row dated later would,
    as the latest version, win over every real update to come."""
    if newest_day is not None:
        now = max(now, datetime.combine(newest_day + timedelta(days=1), time(), tzinfo=UTC))
    return pd.Timestamp(now) + pd.Timedelta(days=1)


def interactions_schema(landing_day: date | None = None) -> pa.DataFrameSchema:
    """Interaction events; with a landing day, events dated after that day are rejected."""
    late_guard = [_not_after(landing_day)] if landing_day else []
    return pa.DataFrameSchema(
        {
            "event_id": _id(
                "Globally unique id of the event; later duplicates are rejected.",
                TRIMMED,
                PRINTABLE,
            ),
            "user_id": _id("The user who acted.", TRIMMED, PRINTABLE),
            "artwork_id": _id("The artwork acted on.", TRIMMED, PRINTABLE),
            "event_type": _text(
                "Funnel step: " + ", ".join(EVENT_TYPES) + ".", pa.Check.isin(list(EVENT_TYPES))
            ),
            "event_ts": _ts(
                "When the event happened (UTC). May precede its landing day (late data), "
                "never follow it.",
                *late_guard,
            ),
            "session_id": _text("Browsing session, when known.", nullable=True, required=False),
            "price": _column(
                float,
                PRICE_TYPE,
                "Amount paid, for purchases (decimal, 2 places).",
                NON_NEGATIVE,
                WHOLE_CENTS,
                nullable=True,
                required=False,
            ),
        },
        unique=["event_id"],
        report_duplicates="exclude_first",
        name="interactions",
    )


USERS_SCHEMA = pa.DataFrameSchema(
    {
        "user_id": _id(
            "User id; the MERGE key (one row per id and `updated_ts`).", TRIMMED, PRINTABLE
        ),
        "signup_ts": _ts("When the user signed up (UTC)."),
        "age": _column(
            "Int64",
            pa_arrow.int32(),
            "Age in years, when given.",
            pa.Check.in_range(13, 120),
            nullable=True,
            required=False,
        ),
        "gender": _text("Self-described gender, when given.", nullable=True, required=False),
        # Optional like age and gender: many real histories know nothing of where users live,
        # and nothing trains on it (the evaluation slices it, null as `unknown`).
        "country": _text(
            "ISO 3166-1 alpha-2 country code, when known.",
            pa.Check.str_matches(r"^[A-Z]{2}$"),
            nullable=True,
            required=False,
        ),
        "interests": _tags(
            "Declared interests (`|`-separated in CSV); an absent column is no interests.",
            required=False,
        ),
        "updated_ts": _ts("When this version of the record was produced; the latest wins."),
    },
    unique=["user_id", "updated_ts"],
    report_duplicates="exclude_first",
    name="users",
)

ARTWORKS_SCHEMA = pa.DataFrameSchema(
    {
        "artwork_id": _id(
            "Artwork id; the MERGE key (one row per id and `updated_ts`).", TRIMMED, PRINTABLE
        ),
        # Not `TRIMMED`: an attribute, not a key; a padded artist name costs an artwork nothing
        # worse than a second artist, where rejecting it would drop the artwork.
        "artist_id": _id("The artist who made it."),
        "created_ts": _ts("When the artwork was listed (UTC)."),
        "title": _text("Title.", NON_BLANK),
        "description": _text("Free-text description.", nullable=True, required=False),
        "style": _text("Art style (open vocabulary: new styles appear).", NON_BLANK),
        "medium": _text("Medium, such as oil, digital or photography.", NON_BLANK),
        "colours": _tags(
            "Dominant colours (`|`-separated in CSV); an absent column is none.", required=False
        ),
        "tags": _tags(
            "Free tags (`|`-separated in CSV); an absent column is none.", required=False
        ),
        "price": _column(
            float, PRICE_TYPE, "Listed price (decimal, 2 places).", NON_NEGATIVE, WHOLE_CENTS
        ),
        "updated_ts": _ts("When this version of the record was produced; the latest wins."),
    },
    unique=["artwork_id", "updated_ts"],
    report_duplicates="exclude_first",
    name="artworks",
)


@dataclass(frozen=True)
class Entity:
    """A landing-zone feed: where its files land, how its rows are keyed and versioned."""

    name: str
    key: str
    daily: bool
    version_column: str | None

    def schema(
        self, landing_day: date | None = None, horizon: pd.Timestamp | None = None
    ) -> pa.DataFrameSchema:
        """The feed's contract; events are bounded by their landing day, a reference feed's
        times by `horizon` (`reference_horizon`) when given."""
        if self.name == "interactions":
            return interactions_schema(landing_day)
        schema = _STATIC[self.name]
        if horizon is None:
            return schema
        dated = [n for n, c in schema.columns.items() if c.metadata["arrow"] == TS_ARROW]
        return schema.update_columns(
            {n: {"checks": [*schema.columns[n].checks, _not_in_future(horizon)]} for n in dated}
        )

    @cached_property  # read once per landing file: a day may hold thousands
    def list_columns(self) -> tuple[str, ...]:
        """Columns holding lists (CSV writes an empty one as an empty cell)."""
        return tuple(f.name for f in self.arrow_schema() if pa_arrow.types.is_list(f.type))

    def arrow_schema(self) -> pa_arrow.Schema:
        """The Delta table schema of accepted rows (daily feeds add the landing day)."""
        columns = self.schema().columns
        fields = [
            pa_arrow.field(n, c.metadata["arrow"], nullable=c.nullable) for n, c in columns.items()
        ]
        if self.daily:
            fields.append(pa_arrow.field(LANDING_DAY_COLUMN, pa_arrow.date32(), nullable=False))
        return pa_arrow.schema(fields)


_STATIC = {"users": USERS_SCHEMA, "artworks": ARTWORKS_SCHEMA}
INTERACTIONS = Entity("interactions", key="event_id", daily=True, version_column=None)
USERS = Entity("users", key="user_id", daily=False, version_column="updated_ts")
ARTWORKS = Entity("artworks", key="artwork_id", daily=False, version_column="updated_ts")
ENTITIES: dict[str, Entity] = {e.name: e for e in (INTERACTIONS, USERS, ARTWORKS)}
# `.json` is read as `.jsonl` is (JSON lines, or one array of records): the name exports most
# often carry, which was only named and skipped, its events lost to the day with exit 0.
FILE_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl", "json")
