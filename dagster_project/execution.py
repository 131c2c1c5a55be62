"""How a run executes its steps: in subprocesses (default) or one Kubernetes Job per step."""

from __future__ import annotations

import os

from dagster import ExecutorDefinition

EXECUTORS = ("multiprocess", "k8s")


def executor_from_env(env: dict[str, str] | None = None) -> ExecutorDefinition | None:
    """`SANDS_EXECUTOR`: `multiprocess` (default: Dagster's own, None) or `k8s` (each step a
    Kubernetes Job sized by its `dagster-k8s/config` tags; `SANDS_K8S_MAX_CONCURRENT` at once)."""
    env = os.environ if env is None else env
    name = env.get("SANDS_EXECUTOR", "multiprocess")
    if name not in EXECUTORS:
        raise ValueError(f"SANDS_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")
    if name == "multiprocess":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(
        {"max_concurrent": int(env.get("SANDS_K8S_MAX_CONCURRENT", "4"))}, name="k8s_steps"
    )
