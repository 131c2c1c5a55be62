"""Where the non-ranker model outputs live: Delta tables under `lake/models`, one commit each.

The segment model (medians, scales, centroids) rides in the commit metadata of its assignments,
so a Delta version of `user_segments` pins both the model and the assignments made with it.
"""

from __future__ import annotations

import json

import pyarrow as pa

from sands.lake import delta, layout
from sands.models.segments import SegmentModel

SEGMENT_MODEL_KEY = "sands.segment_model"


def model_uri(lake_root: str, name: str) -> str:
    """The Delta table of model output `name`."""
    return layout.model_output(lake_root, name)


USER_SEGMENTS, ARTWORK_SIMILARITY, POPULARITY = "user_segments", "artwork_similarity", "popularity"
SEGMENT_FAVOURITES = "segment_favourites"
# The trailing days the served popularity list counted over (one value per table version).
POPULARITY_WINDOW_COLUMN = "window_days"


def read_model_table(
    lake_root: str, name: str, storage_options: dict[str, str] | None = None
) -> tuple[pa.Table, int]:
    """The latest rows of model output `name` and their Delta version."""
    uri = model_uri(lake_root, name)
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no model output at {uri}: materialize {name} first")
    return table.to_pyarrow_table(), table.version()


def write_model_table(
    lake_root: str,
    name: str,
    rows: pa.Table,
    sources: dict[str, int],
    storage_options: dict[str, str] | None = None,
    **metadata: str,
) -> int:
    """Replace model output `name` in one commit recording its source versions; the version."""
    extra = {f"sands.{k}": v for k, v in metadata.items()}
    return delta.overwrite(
        model_uri(lake_root, name),
        rows,
        {delta.SOURCE_VERSIONS_KEY: json.dumps(sources, sort_keys=True), **extra},
        storage_options,
    )


def write_segments(
    lake_root: str,
    rows: pa.Table,
    model: SegmentModel,
    sources: dict[str, int],
    storage_options: dict[str, str] | None = None,
) -> int:
    """Store segment assignments with the model that made them."""
    return write_model_table(
        lake_root, USER_SEGMENTS, rows, sources, storage_options, segment_model=model.to_json()
    )


def read_segment_model(
    lake_root: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[SegmentModel, int]:
    """The segment model stored with `version` of `user_segments` (default: latest)."""
    uri = model_uri(lake_root, USER_SEGMENTS)
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no user segments at {uri}: materialize user_segments first")
    pinned = table.version() if version is None else version
    return SegmentModel.from_json(
        delta.commit_metadata(uri, pinned, storage_options)[SEGMENT_MODEL_KEY]
    ), pinned


def served_popularity_window(
    lake_root: str, storage_options: dict[str, str] | None = None
) -> int | None:
    """The window of the popularity list serving falls back to now; None before there is one (or
    for a list written before the window was recorded)."""
    table = delta.open_table(model_uri(lake_root, POPULARITY), storage_options)
    if table is None:
        return None
    rows = table.to_pyarrow_dataset()
    if POPULARITY_WINDOW_COLUMN not in rows.schema.names:
        return None
    column = rows.head(1, columns=[POPULARITY_WINDOW_COLUMN]).column(0)
    return column[0].as_py() if len(column) else None
