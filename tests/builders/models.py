"""Hand-sized point-in-time rows for model tests: every column the ranker and evaluation read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from sands.features.engagement import ENGAGED_INPUT

STYLES = ("abstract", "cubism", "pop-art")
MEDIA = ("oil", "digital")

USER_DEFAULTS: dict[str, object] = {
    "n_view_7d": 10,
    "n_click_7d": 3,
    "n_favourite_28d": 1,
    "n_purchase_28d": 1,
    "n_view_28d": 30,
    "n_click_28d": 8,
    "spend_28d": 200.0,
    "tenure_days": 100.0,
    "active_days_28d": 5,
    "days_since_view": 1.0,
    "days_since_favourite": 3.0,
    "days_since_purchase": 10.0,
    "age": 35,
    "gender": "female",
    "country": "GB",
    "top_style": "abstract",
    "top_style_share": 0.5,
    "top_medium": "oil",
    "top_medium_share": 0.5,
}
ARTWORK_DEFAULTS: dict[str, object] = {
    "n_view_1d": 5,
    "n_click_1d": 1,
    "n_favourite_1d": 0,
    "n_purchase_1d": 0,
    "n_view_7d": 40,
    "n_click_7d": 10,
    "n_favourite_7d": 4,
    "n_purchase_7d": 1,
    "n_view_28d": 100,
    "n_click_28d": 30,
    "n_favourite_28d": 10,
    "n_purchase_28d": 2,
    "revenue_28d": 400.0,
    "click_rate_7d": 0.25,
    "favourite_rate_7d": 0.1,
    "purchase_rate_28d": 0.02,
    "n_tags": 3,
    "n_colours": 2,
    "price": 200.0,
    "age_days": 30.0,
    "style": "abstract",
    "medium": "oil",
}
TYPES = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}


def _typed(name: str, values: list[object], defaults: dict[str, object]) -> pa.Array:
    kind = type(defaults[name])
    return pa.array(values, TYPES[kind])


def user_vector(user_id: str, **overrides: object) -> dict[str, object]:
    return {"user_id": user_id, **USER_DEFAULTS, **overrides}


def artwork_vector(artwork_id: str, **overrides: object) -> dict[str, object]:
    return {"artwork_id": artwork_id, **ARTWORK_DEFAULTS, **overrides}


def vectors_table(rows: list[dict[str, object]], defaults: dict[str, object]) -> pa.Table:
    """Unprefixed feature vectors (as in a feature log) from dicts."""
    key = next(k for k in rows[0] if k.endswith("_id"))
    columns = {key: pa.array([r[key] for r in rows], pa.string())}
    for name in defaults:
        columns[name] = _typed(name, [r[name] for r in rows], defaults)
    for name in ("feature_date", "feature_ts", "created_ts"):
        if name in rows[0]:
            kind = pa.date32() if name == "feature_date" else pa.timestamp("us", tz="UTC")
            columns[name] = pa.array([r[name] for r in rows], kind)
    return pa.table(columns)


def joined_rows(pairs: list[tuple[dict[str, object], dict[str, object]]], **extra) -> pa.Table:
    """PIT-joined rows (`user_*`, `artwork_*`) for (user vector, artwork vector) pairs."""
    columns: dict[str, pa.Array] = {
        "user_id": pa.array([u["user_id"] for u, _ in pairs], pa.string()),
        "artwork_id": pa.array([a["artwork_id"] for _, a in pairs], pa.string()),
    }
    for name in USER_DEFAULTS:
        columns[f"user_{name}"] = _typed(name, [u[name] for u, _ in pairs], USER_DEFAULTS)
    for name in ARTWORK_DEFAULTS:
        columns[f"artwork_{name}"] = _typed(name, [a[name] for _, a in pairs], ARTWORK_DEFAULTS)
    for name, values in extra.items():
        columns[name] = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.table(columns)


def planted_examples(
    users: int = 60,
    artworks: int = 30,
    days: int = 6,
    seed: int = 0,
    first: date = date(2026, 9, 1),
    declared: bool = False,
) -> pa.Table:
    """Labelled rows where users favour artworks of their top style (a learnable signal).

    Each user has a top style; each day they see 6 artworks and convert with probability 0.6
    when the style matches and 0.05 otherwise. With `declared`, every other user also declared
    another style (`user_declared_style`), converting on it with probability 0.35.
    """
    rng = np.random.default_rng(seed)
    user_vectors = [
        user_vector(
            f"u{i:03d}",
            top_style=STYLES[i % 3],
            top_style_share=float(rng.uniform(0.4, 0.9)),
            n_view_28d=int(rng.integers(5, 80)),
            spend_28d=float(rng.uniform(0, 500)),
            age=int(rng.integers(20, 60)),
            gender=("female", "male")[i % 2],
        )
        for i in range(users)
    ]
    art_vectors = [
        artwork_vector(
            f"a{j:03d}",
            style=STYLES[j % 3],
            medium=MEDIA[j % 2],
            price=float(rng.uniform(50, 900)),
            n_view_7d=int(rng.integers(5, 200)),
        )
        for j in range(artworks)
    ]
    pairs, labels, times, sources, engaged = [], [], [], [], []
    # The pair input as training sets carry it: the days the user saw the artwork before.
    seen: dict[tuple[object, object], int] = {}
    for d in range(days):
        day = datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=UTC)
        for u in user_vectors:
            for j in rng.choice(artworks, size=6, replace=False):
                a = art_vectors[j]
                match = u["top_style"] == a["style"]
                said = declared and _declared_style(u) == a["style"]
                labels.append(int(rng.random() < (0.6 if match else 0.35 if said else 0.05)))
                times.append(day + timedelta(hours=int(rng.integers(0, 24))))
                pairs.append((u, a))
                sources.append("viewed")
                key = (u["user_id"], a["artwork_id"])
                engaged.append(float(seen.get(key, 0)))
                seen[key] = seen.get(key, 0) + 1
    extra = {"user_declared_style": [_declared_style(u) for u, _ in pairs]} if declared else {}
    return joined_rows(
        pairs,
        **extra,
        label=pa.array(labels, pa.int8()),
        label_ts=pa.array(times, pa.timestamp("us", tz="UTC")),
        sample_source=pa.array(sources, pa.string()),
        **{ENGAGED_INPUT: pa.array(engaged, pa.float64())},
    )


def _declared_style(user: dict[str, object]) -> str | None:
    """The style every other planted user declared: the one after their top style."""
    number = int(str(user["user_id"])[1:])
    return None if number % 2 else STYLES[(STYLES.index(user["top_style"]) + 1) % len(STYLES)]


def one_row_per(rows: pa.Table, key: str, prefix: str) -> pa.Table:
    """One row per distinct `key` with only the `prefix` columns, in first-seen order."""
    ids = rows[key].to_pylist()
    first = sorted({v: i for i, v in reversed(list(enumerate(ids)))}.values())
    return rows.take(first).select([c for c in rows.column_names if c.startswith(prefix)])


def with_nulls(rows: pa.Table, column: str, at: list[int]) -> pa.Table:
    """`rows` with `column` missing on the rows numbered `at`."""
    values = rows[column].to_pylist()
    for row in at:
        values[row] = None
    return rows.set_column(rows.column_names.index(column), column, pa.array(values))
