"""Schemas the chart's rendered objects are validated against, offline: the Kubernetes OpenAPI
schemas (kubernetes-validate) for built-in kinds, the vendored Prometheus Operator CRDs for its
kinds (tests/helm/crds), and a compact Grafana dashboard schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
CRDS = {
    "PrometheusRule": HERE / "crds" / "monitoring.coreos.com_prometheusrules.yaml",
    "PodMonitor": HERE / "crds" / "monitoring.coreos.com_podmonitors.yaml",
}
DASHBOARD_SCHEMA = HERE / "grafana-dashboard.schema.json"


def _strict(schema: object) -> object:
    """The schema with unknown fields refused wherever it lists the known ones: the API server
    would prune a misspelt field silently, so a typo in a template must fail here."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.Draft4Validator:
    """A validator for the CRD's served version's openAPIV3Schema (Draft 4: OpenAPI 3.0's base)."""
    crd = yaml.safe_load(CRDS[kind].read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    return jsonschema.Draft4Validator(_strict(version["schema"]["openAPIV3Schema"]))


def validate(doc: dict, kube_version: str) -> None:
    """Raise when `doc` is not valid for its kind (strict: unknown fields fail too)."""
    if doc["kind"] in CRDS:
        assert doc["apiVersion"] == "monitoring.coreos.com/v1", doc["apiVersion"]
        crd_validator(doc["kind"]).validate(doc)
    else:
        kubernetes_validate.validate(doc, kube_version, strict=True)


@cache
def dashboard_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(DASHBOARD_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
