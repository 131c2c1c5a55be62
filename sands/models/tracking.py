"""Links between Dagster and MLflow, for one training run's tree of MLflow runs.

One Dagster run that trains is one MLflow *parent* run: dagster-mlflow's `mlflow_tracking`
resource opens it (or finds it again, in another step's process) by its `dagster_run_id` tag, and
`resources/tracking.py` adds the link back to the Dagster UI. The ranker and the evaluation log
*child* runs under it (`mlflow.parentRunId`). Nothing here imports Dagster: callers pass the
parent's run id and the UI addresses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sands.models.tags import DAGSTER_RUN_ID_TAG, DAGSTER_RUN_URL_TAG

MLFLOW_UI_ENV = "SANDS_MLFLOW_UI_URL"
DAGSTER_UI_ENV = "SANDS_DAGSTER_URL"
DEFAULT_MLFLOW_UI = "http://localhost:5000"  # what `sands mlflow` serves
DEFAULT_DAGSTER_UI = "http://localhost:3000"  # what `sands ui` serves


def _server(tracking_uri: str | None) -> str | None:
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        return tracking_uri
    return None


def mlflow_ui_url(env: Mapping[str, str] | None = None, tracking_uri: str | None = None) -> str:
    """Where a browser finds the MLflow UI: `SANDS_MLFLOW_UI_URL`, else the tracking server,
    else `sands mlflow`'s address."""
    env = os.environ if env is None else env
    found = env.get(MLFLOW_UI_ENV) or _server(tracking_uri) or DEFAULT_MLFLOW_UI
    return found.rstrip("/")


def dagster_ui_url(env: Mapping[str, str] | None = None) -> str:
    """Where a browser finds the Dagster UI: `SANDS_DAGSTER_URL`, else `sands ui`'s address."""
    env = os.environ if env is None else env
    return (env.get(DAGSTER_UI_ENV) or DEFAULT_DAGSTER_UI).rstrip("/")


def dagster_run_url(base: str, run_id: str) -> str:
    """The Dagster UI page of a run."""
    return f"{base.rstrip('/')}/runs/{run_id}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(base: str, model_name: str, version: int | str) -> str:
    """The MLflow UI page of a registered model version."""
    return f"{base.rstrip('/')}/#/models/{model_name}/versions/{version}"


def dagster_tags(base: str, run_id: str) -> dict[str, str]:
    """Tags tying a child run or a model version to the Dagster run that made it."""
    return {DAGSTER_RUN_ID_TAG: run_id, DAGSTER_RUN_URL_TAG: dagster_run_url(base, run_id)}
