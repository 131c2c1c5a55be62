"""The `sands` Helm chart rendered by the real helm, linted, validated against the Kubernetes
OpenAPI schemas and asserted on object by object (as Dagster tests its own chart); and the values
for Dagster's chart checked against what the `sands` chart creates."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from resources import build_resources
from sands.ingest.contract import CONVERSION_EVENTS, positive_events
from tests.helm.schemas import validate

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "sands"
DAGSTER_VALUES = REPO / "helm" / "dagster-values.yaml"
HELM = os.environ.get("SANDS_HELM", "")
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "sands", "sands"
IMAGE = "registry.example.com/shifting-sands:1.0.0"
# Settings that hold credentials (a Redis URL and a database URI carry passwords).
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|ACCESS_KEY|REDIS_URL|BACKEND_STORE_URI")

pytestmark = pytest.mark.skipif(
    not Path(HELM).is_file(),
    reason="helm is not built here: `make test` builds it from its Go module (needs Go), or set "
    "SANDS_HELM to a helm 3 binary",
)


def render(*overrides: str) -> list[dict]:
    """`helm template` of the chart with `--set` overrides, as parsed documents."""
    command = [HELM, "template", RELEASE, str(CHART), "-n", NAMESPACE]
    command += ["--kube-version", KUBE_VERSION]
    for override in overrides:
        command += ["--set", override]
    rendered = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render()


def test_helm_lint_passes_strict() -> None:
    lint = subprocess.run(
        [HELM, "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


VARIANTS = {
    "defaults": (),
    "fixed-replicas": (
        "serving.autoscaling.enabled=false",
        "serving.podDisruptionBudget.enabled=false",
    ),
    "external-mlflow-and-redis": (
        "mlflow.enabled=false",
        "mlflow.externalUri=https://mlflow.example.com",
        "redis.enabled=false",
    ),
    "spark-on-minio": (
        "engine=spark",
        "sparkMaster=k8s://https://kubernetes.default.svc",
        "lake.endpointUrl=http://minio.storage:9000",
        "stateVolume.storageClass=efs",
    ),
    "monitoring": (
        "monitoring.alerts.enabled=true",
        "monitoring.podMonitor.enabled=true",
        "monitoring.alerts.labels.release=kube-prometheus-stack",
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(variant: str) -> None:
    rendered = render(*VARIANTS[variant])
    assert rendered
    for doc in rendered:
        # strict: an unknown field (a typo in a template) fails too. The Prometheus Operator's
        # kinds against its vendored CRDs (tests/helm/crds).
        validate(doc, KUBE_VERSION)


def test_the_chart_renders_the_service_tracking_server_store_shared_state_and_dashboard(
    docs,
) -> None:
    """The Prometheus Operator's kinds only when asked for: without its CRDs they would not
    install."""
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ConfigMap", "sands-config"),
        ("ConfigMap", "sands-dashboards"),
        ("Deployment", "sands-mlflow"),
        ("Deployment", "sands-serving"),
        ("HorizontalPodAutoscaler", "sands-serving"),
        ("PersistentVolumeClaim", "sands-home"),
        ("PodDisruptionBudget", "sands-serving"),
        ("Service", "sands-mlflow"),
        ("Service", "sands-redis"),
        ("Service", "sands-serving"),
        ("ServiceAccount", "sands"),
        ("StatefulSet", "sands-redis"),
    ]
    claim = find(docs, "PersistentVolumeClaim", "sands-home")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_pod_is_non_root_read_only_unprivileged_and_bounded(docs) -> None:
    for name, spec in pod_specs(docs).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, (name, bound)
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name  # a read-only root still needs a scratch dir


def test_secrets_are_only_ever_referenced(docs) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = find(docs, "ConfigMap", "sands-config")["data"]
    assert not [k for k in config if SECRET_NAME.search(k)]
    references = {}
    for name, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            for var, entry in env_of(container).items():
                if SECRET_NAME.search(var):
                    assert "value" not in entry, (name, var)
                    ref = entry["valueFrom"]["secretKeyRef"]
                    references[(name, var)] = (ref["name"], ref["key"])
    assert references == {
        ("sands-serving", "SANDS_REDIS_URL"): ("sands-redis", "url"),
        ("sands-serving", "SANDS_ADMIN_TOKEN"): ("sands-admin", "token"),
        ("sands-mlflow", "MLFLOW_BACKEND_STORE_URI"): ("sands-mlflow-db", "uri"),
        ("sands-redis", "REDIS_PASSWORD"): ("sands-redis", "password"),
    }


def test_the_recommendation_service(docs) -> None:
    deployment = find(docs, "Deployment", "sands-serving")
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["args"] == [
        "sands", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    # A probe behind a big inference body must not time out at Kubernetes' default 1 s.
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    assert {container[probe]["timeoutSeconds"] for probe in probes} == {3}
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"configMapRef": {"name": "sands-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "sands-object-store"}} in container["envFrom"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        "8000",
        "/metrics",
    )
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    service = find(docs, "Service", "sands-serving")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    hpa = find(docs, "HorizontalPodAutoscaler", "sands-serving")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "sands-serving",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    pdb = find(docs, "PodDisruptionBudget", "sands-serving")["spec"]
    assert pdb == {"minAvailable": 1, "selector": {"matchLabels": labels}}


def test_without_the_autoscaler_the_deployment_sets_its_replicas() -> None:
    docs = render("serving.autoscaling.enabled=false", "serving.replicas=3")
    assert find(docs, "Deployment", "sands-serving")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]


def test_the_tracking_server_accepts_the_name_the_platform_calls_it_by(docs) -> None:
    config = find(docs, "ConfigMap", "sands-config")["data"]
    assert config["SANDS_MLFLOW_TRACKING_URI"] == "http://sands-mlflow:5000"
    (container,) = find(docs, "Deployment", "sands-mlflow")["spec"]["template"]["spec"][
        "containers"
    ]
    args = container["args"]
    assert args[:2] == ["mlflow", "server"]
    assert args[args.index("--backend-store-uri") + 1] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert args[args.index("--artifacts-destination") + 1] == "s3://sands/mlflow"
    allowed = args[args.index("--allowed-hosts") + 1].split(",")
    assert "sands-mlflow:5000" in allowed and "sands-mlflow.sands.svc.cluster.local:5000" in allowed
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"


def test_the_config_map_and_secrets_make_the_production_resources(docs, tmp_path) -> None:
    """The chart's environment is what `SANDS_ENV=production` insists on: no code edits."""
    env = dict(find(docs, "ConfigMap", "sands-config")["data"])
    env |= {"SANDS_REDIS_URL": "redis://:secret@sands-redis:6379/0", "SANDS_HOME": str(tmp_path)}
    resources = build_resources(env)
    assert resources["online"].backend == "redis"
    assert resources["registry"].tracking_uri == "http://sands-mlflow:5000"
    assert resources["lake"].root == "s3://sands/lake"
    # Without the Secret-provided Redis URL, production refuses to start.
    with pytest.raises(ValueError, match="SANDS_REDIS_URL"):
        build_resources({k: v for k, v in env.items() if k != "SANDS_REDIS_URL"})


def test_links_in_metadata_and_mlflow_use_the_urls_people_browse(tmp_path) -> None:
    """Without `links`, the port-forward defaults; with them, what the registry links with."""
    plain = find(render(), "ConfigMap", "sands-config")["data"]
    assert "SANDS_DAGSTER_URL" not in plain and "SANDS_MLFLOW_UI_URL" not in plain
    docs = render(
        "links.dagsterUrl=https://dagster.example.com", "links.mlflowUiUrl=https://ml.example.com"
    )
    env = dict(find(docs, "ConfigMap", "sands-config")["data"])
    env |= {"SANDS_REDIS_URL": "redis://:secret@sands-redis:6379/0", "SANDS_HOME": str(tmp_path)}
    registry = build_resources(env)["registry"]
    assert registry.dagster_ui_url == "https://dagster.example.com"
    assert registry.mlflow_ui_url == "https://ml.example.com"


def test_a_source_without_conversions_sets_what_a_positive_is_for_every_step() -> None:
    """`positiveEvents` reaches every container through the config map, as the platform reads
    it; unset, the contract's conversions hold."""
    plain = find(render(), "ConfigMap", "sands-config")["data"]
    assert "SANDS_POSITIVE_EVENTS" not in plain and positive_events(plain) == CONVERSION_EVENTS
    env = find(render("positiveEvents={click,favourite,purchase}"), "ConfigMap", "sands-config")
    assert positive_events(env["data"]) == ("click", "favourite", "purchase")


def test_dagster_values_point_at_what_the_sands_chart_creates(docs) -> None:
    values = yaml.safe_load(DAGSTER_VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    sands_values = yaml.safe_load((CHART / "values.yaml").read_text())
    image = deployment["image"]
    assert f"{image['repository']}:{image['tag']}" == IMAGE
    assert image["tag"] == chart["appVersion"]
    pyproject = (REPO / "pyproject.toml").read_text()
    module = re.search(r'module_name = "([^"]+)"', pyproject).group(1)
    assert deployment["codeServerArgs"] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert [c["name"] for c in deployment["envConfigMaps"]] == ["sands-config"]
    find(docs, "ConfigMap", "sands-config")
    claim = next(v for v in deployment["volumes"] if "persistentVolumeClaim" in v)
    find(docs, "PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    assert [s["name"] for s in deployment["envSecrets"]] == [
        sands_values["secrets"]["objectStore"]["name"]
    ]
    redis = env_of(deployment)["SANDS_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert (redis["name"], redis["key"]) == (sands_values["secrets"]["redis"]["name"], "url")
    assert deployment["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["envConfigMaps"] == [{"name": "sands-config"}]
    assert values["postgresql"]["enabled"] is False
    assert (
        values["global"]["postgresqlSecretName"] and not values["generatePostgresqlPasswordSecret"]
    )
    assert values["dagsterDaemon"]["enabled"] is True
    # Dagster's images must be the release the code location pins.
    assert values["dagsterWebserver"]["image"]["tag"] in pyproject
