"""CPU and memory per step when steps run as Kubernetes Jobs (`k8s_job_executor`).

Assets carry a size as a `dagster-k8s/config` op tag; untagged steps get the code location's
defaults from the Helm values. Outside Kubernetes the tags are inert.
"""

from __future__ import annotations

from typing import Literal

Size = Literal["light", "heavy"]

STEP_RESOURCES: dict[Size, dict[str, dict[str, str]]] = {
    # Small reads and writes by id: ingestion of a day, the online store, checks.
    "light": {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    # Whole-history joins and model fits: dbt, the training set, segments, similarity, the ranker.
    "heavy": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "16Gi"}},
}


def k8s_step(size: Size) -> dict[str, object]:
    """Op tags that give a step pod `size`'s requests and limits."""
    return {"dagster-k8s/config": {"container_config": {"resources": STEP_RESOURCES[size]}}}
