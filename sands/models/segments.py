"""User segments: k-means over behaviour and demographics, assignable to any feature row.

The fitted model is plain numbers (medians, scales, centroids), so it can be stored with a Delta
commit or a ranker version and applied point in time to historical rows or online vectors.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

LOG_COLUMNS = (
    "n_view_28d",
    "n_click_28d",
    "n_favourite_28d",
    "n_purchase_28d",
    "spend_28d",
    "tenure_days",
)
PLAIN_COLUMNS = ("active_days_28d", "age")
CATEGORY_COLUMN = "gender"


# Rows: a table, or one feature vector (a mapping of column to value, as the online store has).
Rows = pa.Table | Mapping[str, object]


def _column(rows: Rows, prefix: str, name: str) -> np.ndarray:
    if isinstance(rows, pa.Table):
        values = rows[f"{prefix}{name}"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=float)
    value = rows.get(f"{prefix}{name}")
    return np.array([np.nan if value is None else value], dtype=float)


def _categories(rows: Rows, prefix: str) -> list[object]:
    if isinstance(rows, pa.Table):
        return rows[f"{prefix}{CATEGORY_COLUMN}"].to_pylist()
    return [rows.get(f"{prefix}{CATEGORY_COLUMN}")]


def segment_inputs(rows: Rows, categories: list[str], prefix: str = "") -> np.ndarray:
    """Raw clustering inputs per row (missing as NaN): logged counts, plain values, one-hots."""
    columns = [np.log1p(np.nan_to_num(_column(rows, prefix, c), nan=0.0)) for c in LOG_COLUMNS]
    columns += [_column(rows, prefix, c) for c in PLAIN_COLUMNS]
    values = _categories(rows, prefix)
    columns += [np.array([float(v == category) for v in values]) for category in categories]
    return np.column_stack(columns) if len(values) else np.empty((0, len(columns)))


@dataclass(frozen=True)
class SegmentModel:
    """Categories seen at fit time, imputation medians, scales and centroids (standardised)."""

    categories: list[str]
    medians: list[float]
    means: list[float]
    scales: list[float]
    centroids: list[list[float]]

    @property
    def k(self) -> int:
        return len(self.centroids)

    def _standardised(self, inputs: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(inputs), np.asarray(self.medians), inputs)
        return (filled - np.asarray(self.means)) / np.asarray(self.scales)

    def assign(self, rows: Rows, prefix: str = "") -> np.ndarray:
        """The nearest centroid's index for each row (one for a single feature vector)."""
        if isinstance(rows, pa.Table) and rows.num_rows == 0:
            return np.empty(0, dtype=np.int32)
        points = self._standardised(segment_inputs(rows, self.categories, prefix))
        # One centroid at a time: the same sums as one (rows, k, inputs) array, without building
        # it (a second of the ranker's step at 100k events a day).
        distances = np.column_stack(
            [((points - centroid) ** 2).sum(axis=1) for centroid in np.asarray(self.centroids)]
        )
        return distances.argmin(axis=1).astype(np.int32)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SegmentModel:
        return cls(**json.loads(text))


def fit_segments(rows: pa.Table, k: int, seed: int = 0) -> SegmentModel:
    """Fit k-means with `k` clusters (fewer when there are fewer distinct users)."""
    # Imported on use: heavy, and the code location is loaded by every step process.
    from sklearn.cluster import KMeans

    categories = sorted({v for v in rows[CATEGORY_COLUMN].to_pylist() if v is not None})
    inputs = segment_inputs(rows, categories)
    if len(inputs) == 0:
        raise ValueError(
            "no user feature rows to segment: no user profile is in bronze (none landed, or the "
            "contract rejected them all: the users feed's reject line names the rules)"
        )
    # A column with no value at all (every age unknown, which the contract allows) fills with 0.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nan_to_num(np.nanmedian(inputs, axis=0), nan=0.0)
    filled = np.where(np.isnan(inputs), medians, inputs)
    means = filled.mean(axis=0)
    scales = filled.std(axis=0)
    scales[scales == 0] = 1.0
    points = (filled - means) / scales
    clusters = min(k, len(np.unique(points, axis=0)))
    kmeans = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(points)
    # Order segments by size so ids are stable across refits of similar data.
    sizes = np.bincount(kmeans.labels_, minlength=clusters)
    order = np.lexsort((np.arange(clusters), -sizes))
    return SegmentModel(
        categories=categories,
        medians=medians.tolist(),
        means=means.tolist(),
        scales=scales.tolist(),
        centroids=kmeans.cluster_centers_[order].tolist(),
    )


def segment_profile(rows: pa.Table, segments: np.ndarray) -> pa.Table:
    """Size and mean behaviour of each segment, for people to name them."""
    table = pa.table(
        {
            "segment": pa.array(segments, pa.int32()),
            "views": rows["n_view_28d"],
            "purchases": rows["n_purchase_28d"],
            "spend": rows["spend_28d"],
            "tenure_days": rows["tenure_days"],
            "age": rows["age"],
        }
    )
    stats = table.group_by("segment").aggregate(
        [
            ("segment", "count"),
            ("views", "mean"),
            ("purchases", "mean"),
            ("spend", "mean"),
            ("tenure_days", "mean"),
            ("age", "mean"),
        ]
    )
    return stats.sort_by("segment")


def assignments(rows: pa.Table, model: SegmentModel, key: str = "user_id") -> pa.Table:
    """(user_id, segment) for every row."""
    return pa.table({key: rows[key], "segment": pa.array(model.assign(rows), pa.int32())}).sort_by(
        key
    )


def share_by_segment(segments: np.ndarray) -> dict[int, float]:
    """Each segment's share of users."""
    counts = np.bincount(segments) if len(segments) else np.array([])
    return {int(s): float(c / counts.sum()) for s, c in enumerate(counts)}


PROFILE_COLUMNS = ("views_mean", "purchases_mean", "spend_mean", "tenure_days_mean", "age_mean")


def profile_markdown(profile: pa.Table) -> str:
    """The segment profile as a markdown table."""
    lines = [
        "| segment | users | views 28d | purchases 28d | spend 28d | tenure | age |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in profile.to_pylist():
        values = [f"{row[c]:.1f}" if row[c] is not None else "n/a" for c in PROFILE_COLUMNS]
        lines.append(f"| {row['segment']} | {row['segment_count']} | " + " | ".join(values) + " |")
    return "\n".join(lines)
