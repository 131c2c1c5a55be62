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
from deltalake import DeltaTable

from sands import lake
from sands.contract import LANDING_DAY_COLUMN
from sands.feature_store import FEATURE_DATE
from sands.settings import join

LABEL_EVENT_COLUMNS = ["user_id", "artwork_id", "event_type", "event_ts"]
SOURCE_VERSIONS_KEY = "sands.source_versions"


@dataclass(frozen=True)
class TrainingSetLocation:
    """A Delta table of training examples under the lake root."""

    name: str

    def uri(self, lake_root: str) -> str:
        return join(lake_root, "training", self.name)


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
    table = lake.open_table(uri, storage_options)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {uri}: materialize it first")
    return table


def label_events(
    interactions_uri: str,
    artworks_uri: str,
    label_days: int,
    storage_options: dict[str, str] | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Interactions of the last `label_days` landing days, the artwork ids, and their versions."""
    interactions = _pinned(interactions_uri, storage_options)
    dataset = interactions.to_pyarrow_dataset()
    days = dataset.to_table(columns=[LANDING_DAY_COLUMN]).column(LANDING_DAY_COLUMN)
    if len(days) == 0:
        events = dataset.to_table(columns=LABEL_EVENT_COLUMNS)
    else:
        first = pc.max(days).as_py() - timedelta(days=label_days - 1)
        events = dataset.to_table(
            columns=LABEL_EVENT_COLUMNS, filter=pc.field(LANDING_DAY_COLUMN) >= first
        )
    artworks = _pinned(artworks_uri, storage_options)
    catalogue = artworks.to_pyarrow_table(columns=["artwork_id"])
    versions = {"interactions": interactions.version(), "artworks": artworks.version()}
    return events, catalogue, versions


def feature_rows_since(
    uri: str, since: datetime | None, storage_options: dict[str, str] | None = None
) -> tuple[pa.Table, int]:
    """Feature-log rows with feature dates from the day before `since` on, and the version read."""
    table = _pinned(uri, storage_options)
    dataset = table.to_pyarrow_dataset()
    if since is None:
        return dataset.to_table(), table.version()
    return dataset.to_table(filter=pc.field(FEATURE_DATE) >= first_feature_date(since)), (
        table.version()
    )


def first_feature_date(since: datetime) -> date:
    """The oldest feature date a training set starting at `since` reads (a day of margin)."""
    return (since - timedelta(days=1)).date()


def write_training_set(
    lake_root: str,
    examples: pa.Table,
    versions: SourceVersions,
    config: dict[str, object],
    storage_options: dict[str, str] | None = None,
) -> int:
    """Replace the training set in one commit that records its sources; the new version."""
    return lake.overwrite(
        TRAINING_EXAMPLES.uri(lake_root),
        examples,
        {
            SOURCE_VERSIONS_KEY: json.dumps(versions.as_dict()),
            "sands.config": json.dumps(config, sort_keys=True),
        },
        storage_options,
    )


def read_training_set(
    lake_root: str, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[pa.Table, int, SourceVersions]:
    """The training set at `version` (default: latest), its version and its source versions."""
    uri = TRAINING_EXAMPLES.uri(lake_root)
    table = _pinned(uri, storage_options)
    if version is not None:
        table.load_as_version(version)
    pinned = table.version()
    sources = json.loads(lake.commit_metadata(uri, pinned, storage_options)[SOURCE_VERSIONS_KEY])
    return table.to_pyarrow_table(), pinned, SourceVersions(**sources)
