"""The code-location image as declared (no Docker engine here to build it): pinned dependencies
in sync with pyproject, a non-root user, the dbt manifest made at build time, Java on request."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text()
LOCK = (REPO / "docker" / "requirements.lock").read_text()
PINNED = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", LOCK, re.M))


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_locked_requirement_is_pinned_exactly() -> None:
    requirements = [line for line in LOCK.splitlines() if line and not line.startswith((" ", "#"))]
    assert requirements and all("==" in line for line in requirements), requirements[:3]


def test_the_lock_covers_every_runtime_dependency_at_the_pinned_releases() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    block = pyproject.split("dependencies = [", 1)[1].split("]\n", 1)[0]
    k8s = pyproject.split("k8s = [", 1)[1].split("]\n", 1)[0]
    wanted = re.findall(r'^\s+"([^"]+)"', block + k8s, re.M)
    locked = {name.lower().replace("_", "-") for name in PINNED}
    assert {_name(r) for r in wanted} - locked == set()
    # dagster and its webserver must be one release; dbt-core stays below 1.12.
    assert PINNED["dagster"] == PINNED["dagster-webserver"] == "1.13.27"
    assert PINNED["dbt-core"].startswith("1.11.")


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_the_base_image_is_pinned_and_slim() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base


def test_dependencies_come_from_the_lock_only_and_the_manifest_is_built_in() -> None:
    assert "pip install --no-deps -r /tmp/requirements.lock" in DOCKERFILE
    assert "pip install --no-deps -e ." in DOCKERFILE
    assert re.search(r"dbt parse --profiles-dir \. --target-path target", DOCKERFILE)


def test_java_and_the_delta_jars_only_in_the_spark_variant() -> None:
    assert "ARG WITH_JAVA=false" in DOCKERFILE
    for line in (n for n in DOCKERFILE.splitlines() if "openjdk" in n):
        assert "openjdk-17-jre-headless" in line
    java = DOCKERFILE.split("openjdk")[0].rsplit("RUN", 1)[1]
    assert 'if [ "$WITH_JAVA" = "true" ]' in java
    assert "sands spark-jars /opt/sands/jars" in DOCKERFILE
    assert "SANDS_SPARK_JARS=/opt/sands/jars" in DOCKERFILE
