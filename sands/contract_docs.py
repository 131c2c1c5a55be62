"""Render the data contract (docs/data-contract.md) from the pandera schemas."""

from __future__ import annotations

import pandera.pandas as pa

from sands.contract import ENTITIES, Entity

INTRO = """# Landing-zone data contract

_Generated from `sands/contract.py` by `sands contract-docs`; a test fails if this file and the
schemas disagree. Edit the schemas, then regenerate._

Upstream systems (and `sands simulate`) drop files into the landing zone under `SANDS_HOME/landing`
(or `SANDS_LANDING_URI`, e.g. `s3://bucket/landing`). Formats: Parquet, CSV (lists are
`|`-separated, empty cells are nulls) and JSON lines; one feed may mix formats. Files whose names
start with `.` or `_` are treated as in-flight and ignored, so write to a temporary name and rename.

| feed | path | key | written to |
|---|---|---|---|
| interactions | `landing/interactions/<YYYY-MM-DD>/*.{parquet,csv,jsonl}` | `event_id` | `lake/bronze/interactions`, partition `landing_date` replaced per day |
| users | `landing/users/*.{parquet,csv,jsonl}` | `user_id` | `lake/bronze/users`, MERGE on `user_id`, latest `updated_ts` wins |
| artworks | `landing/artworks/*.{parquet,csv,jsonl}` | `artwork_id` | `lake/bronze/artworks`, MERGE on `artwork_id`, latest `updated_ts` wins |

## What happens to a bad row

Every row is either accepted or quarantined, never dropped: `accepted + rejected = read` is an
asset check. A rejected row is stored unchanged (as JSON, with its source file and row number) in
`lake/quarantine/<feed>` with every reason it failed, as `<column>:<check>` codes:

| code | meaning |
|---|---|
| `<col>:missing_column` | a required column is absent from the file |
| `<col>:invalid_type` | the value cannot be read as the column's type (e.g. `"yesterday"` as a timestamp) |
| `<col>:not_nullable` | a required value is null |
| `<col>:<check>` | the value fails a column check listed below (e.g. `event_type:isin`) |
| `event_ts:after_landing_day` | the event is dated after the day folder it landed in |
| `<key>:duplicate` | an earlier row in the same drop has the same key (the first valid one is kept) |
| `event_id:already_ingested` | the event was already ingested on another landing day |

Late events (dated before their landing day) are accepted and keep their own `event_ts`.
Columns not in the contract are reported as `unexpected_columns` in the materialization metadata
and dropped from the bronze table (they stay in the quarantined records).
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
