"""Where training sets come from and go: pinned reads of bronze and feature tables, Delta writes.

Every read pins a Delta version and every training set records them, so a model trained on it can
be rebuilt from exactly the data it saw.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from sands.features.offline import CREATED_TS, FEATURE_DATE, FEATURE_TS, first_date_to_read
from sands.ingest.contract import LANDING_DAY_COLUMN
from sands.lake import delta, layout

LABEL_EVENT_COLUMNS = ["user_id", "artwork_id", "event_type", "event_ts"]


@dataclass(frozen=True)
class TrainingSetLocation:
    """A Delta table of training examples under the lake root."""

    name: str

    def uri(self, lake_root: str) -> str:
        return layout.training_table(lake_root, self.name)


TRAINING_EXAMPLES = TrainingSetLocation("training_examples")


@dataclass(frozen=True)
class SourceVersions:
    """The Delta version of every table a training set was built from."""

    interactions: int
    artworks: int
    user_features: int
    artwork_features: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def markdown(self) -> str:
        rows = "\n".join(f"| `{name}` | {version} |" for name, version in self.as_dict().items())
        return "| table | Delta version |\n|---|---:|\n" + rows


def _pinned(uri: str, storage_options: dict[str, str] | None) -> DeltaTable:
    table = delta.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {uri}: materialize it first")
    return table


def newest_landing_day(interactions: DeltaTable) -> date | None:
    """The newest landing day holding interactions (None: none), from the Delta log's file
    entries (partition value, row count): reading the column was 4 s at 90 days x 1M events."""
    files = pa.table(interactions.get_add_actions(flatten=True))
    day, rows = f"partition.{LANDING_DAY_COLUMN}", "num_records"
    if (
        {day, rows} <= set(files.column_names)
        and files[rows].null_count == 0
        and pa.types.is_date(files[day].type)
    ):
        return pc.max(files.filter(pc.greater(files[rows], 0))[day]).as_py()
    # Not partitioned by day, or files without row counts: read the column.
    column = interactions.to_pyarrow_dataset().to_table(columns=[LANDING_DAY_COLUMN])
    return pc.max(column[LANDING_DAY_COLUMN]).as_py()


def label_events(
    interactions_uri: str,
    artworks_uri: str,
    label_days: int,
    storage_options: dict[str, str] | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Interactions of the last `label_days` landing days, the artwork ids, and their versions."""
    interactions = _pinned(interactions_uri, storage_options)
    newest = newest_landing_day(interactions)
    if newest is None:
        events = interactions.to_pyarrow_dataset().to_table(columns=LABEL_EVENT_COLUMNS)
    else:
        first = newest - timedelta(days=label_days - 1)
        events = delta.files_where(interactions, LANDING_DAY_COLUMN, ">=", first).to_table(
            columns=LABEL_EVENT_COLUMNS, filter=pc.field(LANDING_DAY_COLUMN) >= first
        )
    artworks = _pinned(artworks_uri, storage_options)
    catalogue = artworks.to_pyarrow_table(columns=["artwork_id"])
    versions = {"interactions": interactions.version(), "artworks": artworks.version()}
    return events, catalogue, versions


def days_holding(
    positives_by_day: list[int],
    min_days: int,
    min_positives: int,
    max_days: int,
    users_by_day: list[int] | None = None,
    min_users: int = 0,
) -> int:
    """How many of the newest days (counts newest first, one per landing day) to take: at least
    `min_days`, more until they hold `min_positives` positives and `min_users` users with a
    positive (counted per day), at most `max_days`."""
    users = users_by_day if users_by_day is not None else [0] * len(positives_by_day)
    held, judged, days = 0, 0, 0
    for days, (count, people) in enumerate(
        zip(positives_by_day[:max_days], users[:max_days], strict=False), start=1
    ):
        held += count
        judged += people
        if days >= min_days and held >= min_positives and judged >= min_users:
            break
    return max(min(max(days, min_days), max_days), 1)


def evidence_days(
    interactions_uri: str,
    positive_events: tuple[str, ...],
    min_days: int,
    min_positives: int,
    max_days: int,
    storage_options: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Landing days to label so a sparse history still yields enough positives: the window
    (see `days_holding`) and the positives it holds."""
    interactions = _pinned(interactions_uri, storage_options)
    newest = newest_landing_day(interactions)
    if newest is None:
        return min_days, 0
    first = newest - timedelta(days=max_days - 1)
    rows = delta.files_where(interactions, LANDING_DAY_COLUMN, ">=", first).to_table(
        columns=[LANDING_DAY_COLUMN],
        filter=(pc.field(LANDING_DAY_COLUMN) >= first)
        & pc.field("event_type").isin(list(positive_events)),
    )
    grouped = rows.group_by(LANDING_DAY_COLUMN).aggregate([([], "count_all")]).to_pylist()
    counts = {row[LANDING_DAY_COLUMN]: row["count_all"] for row in grouped}
    per_day = [counts.get(newest - timedelta(days=i), 0) for i in range(max_days)]
    chosen = days_holding(per_day, min_days, min_positives, max_days)
    return chosen, sum(per_day[:chosen])


def feature_rows_since(
    uri: str,
    since: datetime | None,
    storage_options: dict[str, str] | None = None,
    keys: tuple[str, pa.Array | pa.ChunkedArray] | None = None,
) -> tuple[pa.Table, int]:
    """Feature-log rows a training set starting at `since` reads, and the version read; with
    `keys` (a key column and its values), only those entities' rows, plus `instants`."""
    table = _pinned(uri, storage_options)
    if since is None:
        files, window = table.to_pyarrow_dataset(), None
    else:
        first = first_feature_date(table, since)
        files = delta.files_where(table, FEATURE_DATE, ">=", first)
        window = pc.field(FEATURE_DATE) >= first
    if keys is None:
        return files.to_table(filter=window), table.version()
    # The log holds a row per entity per day (users x days): the labels' entities are a few
    # thousand of them, and reading everyone's rows held 6.8 GB at 338,000 users.
    wanted = pc.field(keys[0]).isin(pc.unique(keys[1]))
    rows = files.to_table(filter=wanted if window is None else window & wanted)
    times = files.to_table(columns=[FEATURE_TS, CREATED_TS], filter=window)
    nullable = pa.schema([f.with_nullable(True) for f in rows.schema])
    return pa.concat_tables([rows.cast(nullable), instants(times, nullable)]), table.version()


def instants(times: pa.Table, schema: pa.Schema) -> pa.Table:
    """One row of `schema` (nullable) without a key or values per distinct (feature_ts,
    created_ts) of a log: the point-in-time join takes the newest snapshot at each instant from
    every row it is given (`sands.features.pit`), so the rows of some entities, read with these,
    join as the whole log would (an entity missing from the newest snapshots ages out)."""
    pairs = times.group_by([FEATURE_TS, CREATED_TS]).aggregate([])
    columns = {
        name: pairs[name] if name in (FEATURE_TS, CREATED_TS) else pa.nulls(pairs.num_rows)
        for name in schema.names
    }
    return pa.table(columns).cast(schema, safe=False)


def first_feature_date(log: DeltaTable, since: datetime) -> date:
    """The oldest feature date a training set starting at `since` reads (a day of margin)."""
    return first_date_to_read(log, since, timedelta(days=1))


def write_training_set(
    lake_root: str,
    examples: pa.Table,
    versions: SourceVersions,
    config: dict[str, object],
    storage_options: dict[str, str] | None = None,
) -> int:
    """Replace the training set in one commit that records its sources; the new version."""
    return delta.overwrite(
        TRAINING_EXAMPLES.uri(lake_root),
        examples,
        {
            delta.SOURCE_VERSIONS_KEY: json.dumps(versions.as_dict()),
            "sands.config": json.dumps(config, sort_keys=True),
        },
        storage_options,
    )


def has_training_set(lake_root: str, storage_options: dict[str, str] | None = None) -> bool:
    """Whether a training set has been written (a young history may not hold one yet)."""
    return delta.open_table(TRAINING_EXAMPLES.uri(lake_root), storage_options) is not None


def open_training_set(
    lake_root: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[ds.Dataset, int, SourceVersions]:
    """The training set at `version` (default: latest) as a dataset, its version and its source
    versions: readers that want a few columns or label days read only those (row groups follow
    label time, so a day's filter skips the rest)."""
    uri = TRAINING_EXAMPLES.uri(lake_root)
    table = _pinned(uri, storage_options)
    if version is not None:
        table.load_as_version(version)
    pinned = table.version()
    sources = json.loads(
        delta.commit_metadata(uri, pinned, storage_options)[delta.SOURCE_VERSIONS_KEY]
    )
    return table.to_pyarrow_dataset(), pinned, SourceVersions(**sources)


def read_training_set(
    lake_root: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[pa.Table, int, SourceVersions]:
    """The training set at `version` (default: latest), its version and its source versions."""
    dataset, pinned, sources = open_training_set(lake_root, version, storage_options)
    return dataset.to_table(), pinned, sources
