"""dagster-mlflow's `mlflow_tracking` resource and `end_mlflow_on_run_finished` hook, set up for
the registry: one Dagster run is one MLflow parent run, linked both ways.

The upstream resource starts (or, in a later step's process, finds by its `dagster_run_id` tag)
one MLflow run per Dagster run. Around it this module
- creates the experiment first, with the registry's artifact root (MLflow's `set_experiment`
  would create it with `./mlruns` under the working directory);
- tags the run with its Dagster UI page (`dagster.run_url`);
- ends the run in this process when the resource is torn down, if nothing else did (a step that
  is not the job's last, a skipped ranker): otherwise it stays active in the process, and the
  next Dagster run in it (the CLI, a scenario) would log into it. A later step reopens it.

The hook (on the assets that log to MLflow) marks the run FAILED when such a step fails, and
ends it after the job's last step.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import mlflow
from dagster import (
    BetaWarning,
    Field,
    InitResourceContext,
    MetadataValue,
    Noneable,
    ResourceDefinition,
    resource,
)
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sands.models.tags import DAGSTER_RUN_URL_TAG
from sands.models.tracking import dagster_run_url

# Chosen knowingly: dagster-mlflow is marked beta; its warning would repeat in every step's log.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    from dagster_mlflow import end_mlflow_on_run_finished, mlflow_tracking
    from dagster_mlflow.resources import CONFIG_SCHEMA, MlFlow

if TYPE_CHECKING:
    from sands.models.registry import Registry

__all__ = [
    "MlFlow",
    "end_mlflow_on_run_finished",
    "mlflow_links",
    "mlflow_resource",
    "sands_mlflow_tracking",
]

MLFLOW_HOOKS = {end_mlflow_on_run_finished}


def _ensure_experiment(tracking_uri: str | None, name: str, artifact_location: str | None) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(name) is not None:
        return
    try:
        client.create_experiment(name, artifact_location)
    except MlflowException:
        # Another step process created it first.
        if client.get_experiment_by_name(name) is None:
            raise


@resource(
    config_schema={
        **CONFIG_SCHEMA,
        "artifact_location": Field(
            Noneable(str), default_value=None, description="Artifact root of a new experiment."
        ),
        "dagster_ui_url": Field(str, description="The Dagster UI, for the run's link back."),
    },
    description="dagster-mlflow's mlflow_tracking: one MLflow parent run per Dagster run, tagged "
    "dagster_run_id and dagster.run_url; the ranker and evaluation log child runs under it.",
)
def sands_mlflow_tracking(context: InitResourceContext) -> Iterator[MlFlow | None]:
    if context.dagster_run is None:
        # Built outside a run (a sensor tick, `build_resources`): no run to track, nothing to open.
        yield None
        return
    config = context.resource_config
    _ensure_experiment(
        config["mlflow_tracking_uri"], config["experiment_name"], config["artifact_location"]
    )
    with warnings.catch_warnings():
        # Beta, and it reads InitResourceContext.run_id/dagster_run, deprecated in Dagster 1.13.
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        upstream = mlflow_tracking.resource_fn(context)
        mlf = next(upstream)
    # Upstream leaves `mlflow_run_id` None in the process that started the run: the active run.
    mlf.mlflow_run_id = mlflow.active_run().info.run_id
    mlf.set_tag(DAGSTER_RUN_URL_TAG, dagster_run_url(config["dagster_ui_url"], context.run.run_id))
    try:
        yield mlf
    finally:
        next(upstream, None)  # the upstream teardown
        active = mlflow.active_run()
        if active is not None and active.info.run_id == mlf.mlflow_run_id:
            mlflow.end_run()


def mlflow_resource(
    tracking_uri: str, experiment: str, artifact_location: str | None, dagster_ui_url: str
) -> ResourceDefinition:
    """The resource configured for the registry's tracking store and experiment."""
    return sands_mlflow_tracking.configured(
        {
            "experiment_name": experiment,
            "mlflow_tracking_uri": tracking_uri,
            "artifact_location": artifact_location,
            "dagster_ui_url": dagster_ui_url,
        }
    )


def mlflow_links(
    client: Registry, run_id: str | None, parent_run_id: str | None, version: int | None
) -> dict[str, MetadataValue]:
    """Asset metadata linking to the MLflow UI: the asset's own run, the Dagster run's parent
    run, and the model version."""
    links = {}
    if run_id:
        links["mlflow_run"] = MetadataValue.url(client.run_url(run_id))
    if parent_run_id:
        links["mlflow_parent_run"] = MetadataValue.url(client.run_url(parent_run_id))
    if version:
        links["mlflow_model_version"] = MetadataValue.url(client.ui_link(version))
    return links
