"""Where every table lives in the lake, in one place: `<lake>/<zone>/<table>`.

Zones: `bronze` (accepted landing rows and reference history), `quarantine` (rejected rows and
unreadable files), `features` (the append-only feature logs), `training` (training sets),
`models` (model outputs such as segments and similarity), `serving` (the prediction log and the
online-quality figures). Each domain module names its tables through these functions.
"""

from __future__ import annotations

from sands.settings import join

BRONZE, QUARANTINE, FEATURES, TRAINING, MODELS, SERVING = (
    "bronze",
    "quarantine",
    "features",
    "training",
    "models",
    "serving",
)


def zone(lake_root: str, name: str) -> str:
    """A zone's folder (the bronze writers lock it as a whole)."""
    return join(lake_root, name)


def bronze(lake_root: str, entity: str) -> str:
    """An entity's accepted rows."""
    return join(lake_root, BRONZE, entity)


def bronze_history(lake_root: str, entity: str) -> str:
    """Every accepted version of a reference feed's rows, never overwritten."""
    return join(lake_root, BRONZE, f"{entity}_history")


def quarantined_rows(lake_root: str, entity: str) -> str:
    """An entity's rejected rows, unchanged, with their reason codes."""
    return join(lake_root, QUARANTINE, entity)


def quarantined_files(lake_root: str, entity: str) -> str:
    """The folder that keeps an entity's unreadable landing files, by landing day."""
    return join(lake_root, QUARANTINE, "files", entity)


def feature_log(lake_root: str, table: str) -> str:
    return join(lake_root, FEATURES, table)


def training_table(lake_root: str, table: str) -> str:
    return join(lake_root, TRAINING, table)


def model_output(lake_root: str, table: str) -> str:
    return join(lake_root, MODELS, table)


def prediction_log(lake_root: str) -> str:
    """Every list the service returned."""
    return join(lake_root, SERVING, "impressions")


def online_quality(lake_root: str) -> str:
    """The online CTR and conversion figures per arm, for the service's gauges."""
    return join(lake_root, SERVING, "online_quality")
