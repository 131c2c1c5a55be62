"""Render the data contract (docs/data-contract.md) from the pandera schemas."""

from __future__ import annotations

import pandera.pandas as pa

from sands.ingest.contract import ENTITIES, Entity

INTRO = """# Landing-zone data contract

_Generated from `sands/ingest/contract.py` by `sands contract-docs`; a test fails if this file and the
schemas disagree. Edit the schemas, then regenerate._

Upstream systems (and `sands simulate`) drop files into the landing zone under `SANDS_HOME/landing`
(or `SANDS_LANDING_URI`, e.g. `s3://bucket/landing`). Formats: Parquet, CSV (lists are
`|`-separated, or written as a JSON or Python list, `["a", "b"]` or `['a', 'b']` as pandas'
`to_csv` writes a list column: a cell starting `[` then a quote or `]`, and `invalid_type` when
it is no list of text; a tag in brackets such as `[draft]` stays a tag;
an empty cell is an empty list; other empty cells are nulls; spaces around a header's names, as
in `event_id, user_id`, are no part of them, while a value's are kept) and JSON lines
(a `.jsonl` file holding one JSON array of objects, as `to_json(orient="records")` writes, is read
as those records; a `.json` file is read the same way, as either); one feed may mix formats. A list that is null, or a list column left out, is an empty list;
a list's items are trimmed, and blank ones (empty or only spaces) dropped.
In CSV and JSON a timestamp is an ISO 8601 string (`2026-09-01T12:00:00Z`; without an offset it
is read as UTC; a date alone, or a Parquet `date32`, is its midnight UTC). A number, such as a Unix epoch,
is rejected (`invalid_type`): seconds, milliseconds and microseconds cannot be told apart. Files
whose names start with `.` or `_` are treated as in-flight and ignored, so write to a temporary
name and rename.
Extensions may be in any case, and `.csv.gz`/`.jsonl.gz`/`.json.gz` are read through gzip; links to files are
followed (a change to the target counts as a change to the file), links to day folders are not. Day folders are `YYYY-MM-DD` from 1678-01-01 to 2261-12-31 (the span of a nanosecond
timestamp). A folder inside a day folder, or at the top of `users/` or `artworks/`, is one
dataset as Spark, Hive or a warehouse export writes it (`events.parquet/part-00000-….snappy.parquet`):
its files of these formats are read, each on its own like any other file (names starting with `.`
or `_`, such as `_SUCCESS` and `_temporary/`, ignored). Anything else under a feed's folder
(another extension, a folder inside a dataset folder, a day folder named otherwise, a daily file outside a day folder, a file whose name is not UTF-8 text,
such as Latin-1 bytes from an old share, which no table or object store key can hold) is not
read, and `sands ingest` and `sands replay` name each such entry in one line (bytes that are not
text and control characters escaped: `caf\\xe9.csv`).

| feed | path | key | written to |
|---|---|---|---|
| interactions | `landing/interactions/<YYYY-MM-DD>/*.{parquet,csv,jsonl,json}` | `event_id` | `lake/bronze/interactions`, partition `landing_date` replaced per day |
| users | `landing/users/*.{parquet,csv,jsonl,json}` | `user_id` | `lake/bronze/users`, MERGE on `user_id`, latest `updated_ts` wins |
| artworks | `landing/artworks/*.{parquet,csv,jsonl,json}` | `artwork_id` | `lake/bronze/artworks`, MERGE on `artwork_id`, latest `updated_ts` wins |

Users and artworks also keep every version in `lake/bronze/<feed>_history`, which features read as
of their own time. A row that changes nothing but its `updated_ts` (a source touching it for a
field outside this contract) updates the latest row but is no new version there: counted as
`versions_unchanged` in the run's metadata. A row re-sent with the `updated_ts` of a version
already stored but other content (an export corrected and sent again) corrects that version, in
the history and, where it is the latest, in the latest table: counted as `versions_corrected`.
Ingestion never deletes: a user or artwork left out of later files, or a removed file, keeps the
rows already stored (send a new version to change one). A drop none of whose files holds an
optional column (`age`, say) stores its versions without it (null); when the latest stored
versions of some of its rows had it, `sands ingest` says so in one line.

## What happens to a bad row

Every row is either accepted or quarantined, never dropped: `accepted + rejected = read` is an
asset check. A rejected row is stored unchanged (as JSON, with its source file and row number) in
`lake/quarantine/<feed>` with every reason it failed, as `<column>:<check>` codes:

| code | meaning |
|---|---|
| `<col>:missing_column` | a required column is absent from the file |
| `<col>:invalid_type` | the value cannot be read as the column's type (e.g. `"yesterday"` or `"now"` as a timestamp, `true` as a price; a NaN in any format, which is no number and not a null either), or the type cannot hold it (a timestamp outside 1677-2262, a price of 10^10 or more, an integer past 64 bits); a text value whose bytes are not UTF-8 (a Parquet writer that skipped the check; the record shows them as `b'...'`); an id written as a float past 2^53, which is a rounded integer (integer ids are read exactly, nulls among them or not) |
| `<col>:not_nullable` | a required value is null |
| `<col>:<check>` | the value fails a column check listed below (e.g. `event_type:isin`; `non_blank` fails a value of only whitespace, no-break or other Unicode spaces and invisible format characters such as a zero-width space or a byte-order mark; `not_a_null_word` fails an id that is only the word `NULL`, `None` or `NaN` (any case), a missing value an export wrote as text, which as an id would be one user or artwork every such row shares; `trimmed` fails an event, user or artwork id with such a character at either end, which would otherwise be another id than the same without it; `printable` fails such an id holding a control character anywhere, a newline, tab or NUL that would break every line, URL and file it is written to) |
| `<col>:after_1970` | a time at or before 1970-01-01T00:00:00 UTC: the epoch itself is what a zero or an unset field becomes in most exports, and no one acted, signed up or listed anything then |
| `<col>:in_the_future` | a user's or artwork's `signup_ts`, `created_ts` or `updated_ts` more than a day past both the clock and the end of the newest `interactions/` day folder (a placeholder such as 2099-01-01): as the latest version such a row would win over every real update to come, for good. A played scenario that runs ahead of the clock has its day folders, so its rows are in time |
| `event_ts:after_landing_day` | the event is dated after the day folder it landed in (day folders are UTC days; the reject line says how far past: when most lie within 12 hours, as far as a local day west of UTC reaches, it names folders cut on local days as the likely cause) |
| `<key>:duplicate` | an earlier row in the same drop has the same key (the first valid one is kept). In `users/` and `artworks/`, whose files are all read as one drop, a row identical to an earlier one in every column (a full snapshot sent again) is the same fact: kept once, counted as `rows_repeated` in the run's metadata, not rejected |
| `event_id:already_ingested` | the event was already ingested on another landing day |
| `row:invalid_json` | a JSON line that does not parse (e.g. truncated); the record is its raw text |
| `row:not_an_object` | a JSON line that is an array, number, string or null, not an object |
| `row:duplicate_key` | a JSON object (at any depth) that names a field twice (`{"user_id": "u1", "user_id": "u2"}`): JSON readers keep the last value, so which one the source meant is not known; a CSV header naming a column twice makes its file unreadable for the same reason |
| `row:invalid_unicode` | a JSON line whose string escapes half of a UTF-16 surrogate pair (`"\\udfa8"` alone: an emoji cut in two), which is no text any table can store |
| `file:unreadable` | the whole file is not readable as its format (one record per file, below) |
| `file:unopenable` | the file's bytes could not be fetched at all (one record per file) |

Late events (dated before their landing day) are accepted and keep their own `event_ts`; when a
fifth or more of a day's events (10 at least) are dated in the 14 hours before it, `sands ingest`
and `sands replay` say so in one line: folders cut on local days east of UTC put each morning on
the UTC day before, where it is judged.
An id written as an integer float (`42.0`, up to 15 digits: what pandas writes to CSV for a column
of integer ids holding a null) is the id `42`, as the JSON or Parquet number 42.0 is, so one export
in any format lands on the same users and artworks. Ids are read in Unicode's composed form
(NFC): `josé` typed as `e` and a combining accent (as macOS writes names) is the `josé` typed
elsewhere, not a second user.
Columns not in the contract are reported as `unexpected_columns` in the materialization metadata
and in one line by `sands ingest` and `sands replay`, and dropped from the bronze table (they stay
in the quarantined records). The same note on many days is said once, then counted: "raw_interactions:
the same on 29 more days (1997-09-21..1997-10-19): columns not in the contract ...".

## What happens to an unreadable file or a damaged line

One bad file never stops its day, and is never silently skipped:

- **Unreadable file** (a corrupt Parquet file, a CSV that is not UTF-8 (UTF-16, a spreadsheet's
  "Unicode text", is named as such) or has a row with more
  fields than its header, a header that names a column twice, a CSV separated by `;`, tabs or
  `|` instead of commas, a `.gz` file that inflates past
  200 times its size and 256 MiB, a decompression bomb that would take the worker's memory): quarantined whole as one record with `source_row` null, reason
  `file:unreadable` (`file:unopenable` if it is gone or access is denied; a network error
  fails the run instead, to be retried) and, as the record, JSON with its `path`, `size`,
  `sha256`, `reason`, the parser's one-line `message` and `kept_at`: its bytes, copied
  unchanged to `lake/quarantine/files/<feed>/[<day>/]<sha256 prefix>-<name>`. The day's other
  files are ingested. Its rows cannot be counted; the file is counted in `files_rejected`, the
  non-blocking `files_readable` check warns (what depends on the day still runs), `sands
  ingest` shows the day as `1 file unread`, names the file in one line and exits 1 after
  ingesting the rest, and `sands status` shows files rejected per feed.
- **Damaged line** in a JSON-lines file (`row:invalid_json`, `row:not_an_object`,
  `row:duplicate_key`, `row:invalid_unicode`; bytes that
  are not UTF-8 damage only their line), or a CSV row with fewer fields than its header
  (`row:missing_fields`: an upload cut off mid-line, whose last event would otherwise land with
  a truncated time and nulls): that line alone is quarantined, its raw text as the
  record; the other lines are validated as usual.
- **A file of no row whose header names none of the feed's columns** (an error page or other
  text saved under the file's name): `file:unreadable`, as above, not an empty drop.
- **A day repaired by removing events other days rejected as already ingested there** (copies
  re-sent on the wrong day, taken out again): those events are then on no day, and the day's
  line names the days that rejected them (`2 events this day no longer holds were rejected as
  already ingested here on 2026-09-01 (2): ingest those days again to take them in`).
- **A day none of whose files can be read** (a broken re-upload over a good day): the rows
  bronze holds for that day stay as they were, and `sands ingest` says so in its line for the
  day; the files are quarantined and the command exits 1 as above.
- **A folder that cannot be listed** (a feed's folder, or a day folder, without read permission,
  or a file where the folder should be): its files cannot even be counted. `sands ingest` ingests
  everything else, then names the folder in one line and exits 1; `sands replay` stops before
  it starts; the landing sensor warns on every tick until the folder can be listed.
- **Empty file** (no bytes; for CSV and JSON lines also only blank lines): zero rows, no
  rejection. Blank lines (and lines of only spaces) are not rows in either format.

Accounting, per run: rows read (records plus damaged lines, per file) = accepted + rejected, and
files read + files rejected = files listed. A rerun replaces the day's quarantine records and
finds the kept copy by its checksum, so nothing is recorded twice. To repair a day, drop a
corrected file and remove the broken one: the rerun then no longer lists it (its kept copy
stays).
"""


def _type_name(column: pa.Column) -> str:
    return str(column.metadata["arrow"]).replace("timestamp[us, tz=UTC]", "timestamp (UTC, µs)")


def _check_text(check: pa.Check) -> str:
    stats = {k: v for k, v in (check.statistics or {}).items() if v is not None}
    if not stats:
        return f"`{check.name}`"
    values = ", ".join(str(v) for v in stats.values())
    return f"`{check.name}({values})`"


def _checks(column: pa.Column) -> str:
    return ", ".join(_check_text(c) for c in column.checks) or "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_entity(entity: Entity) -> str:
    """One feed's columns as a markdown table."""
    schema = entity.schema()
    lines = [
        f"## {entity.name}",
        "",
        f"Unique: `{' + '.join(schema.unique or [])}`.",
        "",
        "| column | type | required | nullable | checks | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, column in schema.columns.items():
        lines.append(
            f"| `{name}` | {_type_name(column)} | {'yes' if column.required else 'no'} | "
            f"{'yes' if column.nullable else 'no'} | {_cell(_checks(column))} | {_cell(column.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def render_contract() -> str:
    """The whole contract document."""
    return INTRO + "\n" + "\n".join(render_entity(e) for e in ENTITIES.values())
