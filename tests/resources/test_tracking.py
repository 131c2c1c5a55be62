"""dagster-mlflow's resource as configured by `build_resources`: one MLflow run per Dagster run,
in the registry's store and experiment, linked back to the Dagster UI, never left active."""

import mlflow
import pytest
from dagster import Config, Definitions, ResourceParam, asset, define_asset_job

from resources import build_resources
from resources.tracking import MLFLOW_HOOKS, MlFlow
from sands.models.tags import PARENT_RUN_TAG
from sands.models.tracking import DAGSTER_UI_ENV


class StepConfig(Config):
    fail: bool = False


@asset(hooks=MLFLOW_HOOKS)
def trained(mlflow: ResourceParam[MlFlow]) -> str:
    return mlflow.mlflow_run_id


@asset(hooks=MLFLOW_HOOKS, deps=[trained])
def evaluated(config: StepConfig, mlflow: ResourceParam[MlFlow]) -> str:
    if config.fail:
        raise RuntimeError("evaluation broke")
    return mlflow.mlflow_run_id


JOB = define_asset_job("toy_training", selection=[trained, evaluated])


@pytest.fixture
def resources(paths, monkeypatch):
    monkeypatch.delenv("SANDS_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(DAGSTER_UI_ENV, "http://dagster.test:3000")
    return build_resources()


def run(resources, fail: bool = False):
    defs = Definitions(assets=[trained, evaluated], jobs=[JOB], resources=resources)
    config = {"ops": {"evaluated": {"config": {"fail": fail}}}}
    return defs.resolve_job_def("toy_training").execute_in_process(
        run_config=config, raise_on_error=False
    )


def test_each_dagster_run_is_one_mlflow_run_in_the_registry_store_linked_back(resources, paths):
    registry = resources["registry"].open()
    first, second = run(resources), run(resources)
    assert first.success and second.success
    assert mlflow.active_run() is None  # nothing left active for the next run in this process
    experiment = registry.client.get_experiment_by_name(registry.experiment)
    assert experiment.artifact_location == paths.mlflow_artifacts  # not ./mlruns
    runs = registry.client.search_runs([experiment.experiment_id])
    by_dagster = {r.data.tags["dagster_run_id"]: r for r in runs}
    assert set(by_dagster) == {first.run_id, second.run_id} and len(runs) == 2
    for result in (first, second):
        parent = by_dagster[result.run_id]
        # Both steps saw the same MLflow run: the one tagged with their Dagster run.
        assert result.output_for_node("trained") == parent.info.run_id
        assert result.output_for_node("evaluated") == parent.info.run_id
        assert parent.data.tags["dagster.run_url"] == (
            f"http://dagster.test:3000/runs/{result.run_id}"
        )
        assert PARENT_RUN_TAG not in parent.data.tags
        assert parent.info.status == "FINISHED"  # ended by the hook after the last step


def test_a_failed_step_fails_the_mlflow_run_and_the_next_run_starts_afresh(resources):
    registry = resources["registry"].open()
    failed = run(resources, fail=True)
    assert not failed.success
    assert mlflow.active_run() is None
    after = run(resources)
    experiment = registry.client.get_experiment_by_name(registry.experiment).experiment_id
    status = {
        r.data.tags["dagster_run_id"]: r.info.status
        for r in registry.client.search_runs([experiment])
    }
    assert status == {failed.run_id: "FAILED", after.run_id: "FINISHED"}
