"""Steps as Kubernetes Jobs: the executor comes from the environment, and the Job dagster-k8s
builds for a step carries the asset's size (heavy, light) over the code location's defaults."""

from __future__ import annotations

from pathlib import Path

import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster import AssetKey
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from assets.step_resources import STEP_RESOURCES
from dagster_project.definitions import defs
from dagster_project.execution import executor_from_env

IMAGE = "registry.example.com/shifting-sands:1.0.0"
# What helm/dagster-values.yaml gives every run and step pod of the code location.
(USER_CODE,) = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "helm" / "dagster-values.yaml").read_text()
)["dagster-user-deployments"]["deployments"]
DEFAULTS = USER_CODE["resources"]
CODE_LOCATION = K8sContainerContext(
    env_config_maps=[c["name"] for c in USER_CODE["envConfigMaps"]],
    env_secrets=[s["name"] for s in USER_CODE["envSecrets"]],
    resources={
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
)


def step_job(asset: str) -> kubernetes.client.V1Job:
    """The Job the k8s executor would create for `asset`'s step: the code location's context
    merged with the asset's `dagster-k8s/config` tags, as `K8sStepHandler` merges them."""
    tags = defs.resolve_assets_def(AssetKey(asset)).op.tags
    context = CODE_LOCATION.merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags))
    )
    config = DagsterK8sJobConfig(
        job_image=IMAGE,
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql",
    )
    return construct_dagster_k8s_job(
        config,
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{asset.replace('_', '-')}",
        user_defined_k8s_config=context.run_k8s_config,
        component="step_worker",
    )


def resources_of(job: kubernetes.client.V1Job) -> tuple[dict, dict]:
    (container,) = job.spec.template.spec.containers
    return container.resources.requests, container.resources.limits


def test_a_heavy_step_gets_the_heavy_size_over_the_defaults() -> None:
    job = step_job("ranker")
    assert resources_of(job) == (
        STEP_RESOURCES["heavy"]["requests"],
        STEP_RESOURCES["heavy"]["limits"],
    )
    (container,) = job.spec.template.spec.containers
    assert container.image == IMAGE
    assert container.args == ["dagster", "api", "execute_step"]
    sources = [(s.config_map_ref or s.secret_ref).name for s in container.env_from]
    assert sorted(sources) == ["sands-config", "sands-object-store"]


def test_a_light_step_and_an_untagged_step() -> None:
    assert resources_of(step_job("online_features")) == (
        STEP_RESOURCES["light"]["requests"],
        STEP_RESOURCES["light"]["limits"],
    )
    # No tag: the code location's defaults from the Dagster chart values.
    assert resources_of(step_job("popularity_baseline")) == (
        DEFAULTS["requests"],
        DEFAULTS["limits"],
    )


@pytest.mark.parametrize("asset", ["ranker", "online_features", "transform_models"])
def test_step_jobs_are_valid_kubernetes_jobs(asset: str) -> None:
    # The dbt step's tags live on its multi-asset; any of its keys resolves to it.
    name = "user_feature_snapshots" if asset == "transform_models" else asset
    job = kubernetes.client.ApiClient().sanitize_for_serialization(step_job(name))
    kubernetes_validate.validate(job, "1.30.0", strict=True)


def test_the_sizes_go_where_the_work_is() -> None:
    heavy = {"ranker", "training_examples", "user_segments", "artwork_similarity"}
    for asset in heavy | {"user_feature_snapshots"}:
        tags = defs.resolve_assets_def(AssetKey(asset)).op.tags
        assert (
            get_user_defined_k8s_config(tags).container_config["resources"]
            == STEP_RESOURCES["heavy"]
        ), asset
    for asset in ("online_features", "raw_interactions"):
        tags = defs.resolve_assets_def(AssetKey(asset)).op.tags
        assert (
            get_user_defined_k8s_config(tags).container_config["resources"]
            == STEP_RESOURCES["light"]
        ), asset


def test_the_executor_comes_from_the_environment() -> None:
    assert executor_from_env({}) is None  # Dagster's default: subprocesses on this machine
    k8s = executor_from_env({"SANDS_EXECUTOR": "k8s", "SANDS_K8S_MAX_CONCURRENT": "6"})
    assert k8s.name == "k8s_steps"
    with pytest.raises(ValueError, match="multiprocess, k8s"):
        executor_from_env({"SANDS_EXECUTOR": "celery"})
