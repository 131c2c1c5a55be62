"""Write hand-made rows straight into the bronze Delta tables, bypassing the landing zone."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa

from sands.ingest.bronze import bronze_uri, history_uri
from sands.ingest.contract import ARTWORKS, INTERACTIONS, LANDING_DAY_COLUMN, USERS, Entity
from sands.lake import delta


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def write_events(
    lake_root: str, day: date, rows: list[tuple[str, str, str, str, datetime, float | None]]
) -> None:
    """Replace one landing day with (event_id, user, artwork, type, event_ts, price) rows."""
    records = [
        {
            "event_id": e,
            "user_id": u,
            "artwork_id": a,
            "event_type": kind,
            "event_ts": ts,
            "session_id": "s",
            "price": None if price is None else Decimal(f"{price:.2f}"),
            LANDING_DAY_COLUMN: day,
        }
        for e, u, a, kind, ts, price in rows
    ]
    table = _table(records, INTERACTIONS.arrow_schema())
    delta.replace_partition(bronze_uri(lake_root, INTERACTIONS), table, LANDING_DAY_COLUMN, day)


def _reference(lake_root: str, entity: Entity, table: pa.Table) -> None:
    """What reference ingestion writes: the latest row per id, and every version in history."""
    delta.upsert(bronze_uri(lake_root, entity), table, entity.key, "updated_ts")
    delta.insert_new(history_uri(lake_root, entity), table, [entity.key, "updated_ts"])


def write_users(lake_root: str, rows: list[dict]) -> None:
    """Upsert user rows; missing optional fields get defaults."""
    defaults = {"age": 30, "gender": None, "country": "GB", "interests": ["art"]}
    records = [{**defaults, **r, "updated_ts": r.get("updated_ts", r["signup_ts"])} for r in rows]
    _reference(lake_root, USERS, _table(records, USERS.arrow_schema()))


def write_artworks(lake_root: str, rows: list[dict]) -> None:
    """Upsert artwork rows; missing optional fields get defaults."""
    defaults = {
        "artist_id": "painter",
        "title": "Untitled",
        "description": None,
        "medium": "oil",
        "colours": ["red"],
        "tags": ["night"],
    }
    records = [
        {
            **defaults,
            **r,
            "price": Decimal(str(r.get("price", 10.0))),
            "updated_ts": r.get("updated_ts", r["created_ts"]),
        }
        for r in rows
    ]
    _reference(lake_root, ARTWORKS, _table(records, ARTWORKS.arrow_schema()))


def label_events(rows: list[tuple[str, str, str, datetime]]) -> pa.Table:
    """Interactions as the label and attribution joins read them, from (user, artwork, type,
    event_ts) tuples."""
    users, artworks, kinds, times = zip(*rows, strict=True)
    return pa.table(
        {
            "user_id": list(users),
            "artwork_id": list(artworks),
            "event_type": list(kinds),
            "event_ts": pa.array(list(times), pa.timestamp("us", tz="UTC")),
        }
    )
