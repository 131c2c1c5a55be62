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
    # deployed_ranker refits a passed challenger: a second ranker fit on promotion days.
    heavy = {
        "ranker",
        "deployed_ranker",
        "training_examples",
        "user_segments",
        "artwork_similarity",
    }
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


def model_training_job():
    """The real job, reconstructable (the executor re-imports it by this module-level name)."""
    return defs.resolve_job_def("model_training")


def test_the_k8s_executor_launches_each_step_as_a_job_of_its_size(tmp_path) -> None:
    """The real `k8s_job_executor` step handler, with the Kubernetes API replaced by a recorder:
    the Job it would create for the heavy `ranker` step and for a light-or-default step."""
    from unittest import mock

    from dagster import reconstructable
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
    from dagster._core.execution.context_creation_job import create_context_free_log_manager
    from dagster._core.execution.retries import RetryMode
    from dagster._core.executor.init import InitExecutorContext
    from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
    from dagster._core.test_utils import create_run_for_test, instance_for_test
    from dagster._grpc.types import ExecuteStepArgs
    from dagster_k8s.executor import _K8S_EXECUTOR_CONFIG_SCHEMA, k8s_job_executor

    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "unused"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    launcher = {
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": "dagster-postgresql",
        "dagster_home": "/opt/dagster/dagster_home",
        "job_namespace": "sands",
        "service_account_name": "dagster",
        "env_config_maps": ["sands-config"],
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    job = reconstructable(model_training_job)
    overrides = {
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}
    }
    with instance_for_test(overrides=overrides) as instance:
        executor_config = process_config(
            resolve_to_config_type(_K8S_EXECUTOR_CONFIG_SCHEMA), {"job_image": IMAGE}
        ).value
        executor = k8s_job_executor.executor_creation_fn(
            InitExecutorContext(
                job=job,
                executor_def=k8s_job_executor,
                executor_config=executor_config,
                instance=instance,
            )
        )
        handler = executor._step_handler
        handler._api_client.batch_api = mock.MagicMock()  # record instead of calling a cluster
        run = create_run_for_test(
            instance, job_name="model_training", job_code_origin=job.get_python_origin()
        )
        plan = create_execution_plan(job)
        launched = {}
        for step in ("ranker", "popularity_baseline"):
            context = StepHandlerContext(
                instance=instance,
                plan_context=PlanOrchestrationContext(
                    plan_data=PlanData(
                        job=job,
                        dagster_run=run,
                        instance=instance,
                        execution_plan=plan,
                        raise_on_error=True,
                        retry_mode=RetryMode.DISABLED,
                    ),
                    log_manager=create_context_free_log_manager(instance, run),
                    executor=executor,
                    output_capture=None,
                ),
                steps=plan.steps,
                execute_step_args=ExecuteStepArgs(
                    job.get_python_origin(), run.run_id, [step], print_serialized_events=False
                ),
            )
            list(handler.launch_step(context))
            call = handler._api_client.batch_api.create_namespaced_job.call_args.kwargs
            launched[step] = (call["namespace"], call["body"])
    namespace, ranker = launched["ranker"]
    assert namespace == "sands"
    assert resources_of(ranker) == (
        STEP_RESOURCES["heavy"]["requests"],
        STEP_RESOURCES["heavy"]["limits"],
    )
    (container,) = ranker.spec.template.spec.containers
    assert container.image == IMAGE and container.args[:3] == ["dagster", "api", "execute_step"]
    assert "sands-config" in [s.config_map_ref.name for s in container.env_from if s.config_map_ref]
    # An untagged step gets no size of its own: in-cluster, the code location's defaults apply.
    (untagged,) = launched["popularity_baseline"][1].spec.template.spec.containers
    assert untagged.resources is None or untagged.resources.requests is None, untagged.resources
    for _, body in launched.values():
        manifest = kubernetes.client.ApiClient().sanitize_for_serialization(body)
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)
