"""Dashboards and alerts as code: the chart's Grafana dashboard (a sidecar ConfigMap) and its
PrometheusRule, rendered by the real helm and checked against a dashboard schema, the Prometheus
Operator's CRDs, the metric names `sands serve` exports, and promtool (syntax and alert logic)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sands.monitoring.online_quality import OnlineObjective
from sands.monitoring.verdicts import Objective
from sands.serving.metrics import ServiceMetrics
from tests.helm.schemas import crd_validator, dashboard_validator
from tests.helm.test_chart import CHART, HELM, find, render

DASHBOARD = CHART / "dashboards" / "serving.json"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
ALERTS = VALUES["monitoring"]["alerts"]
PROMTOOL = shutil.which("promtool")
MONITORED = ("monitoring.alerts.enabled=true", "monitoring.podMonitor.enabled=true")
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*"}

pytestmark = pytest.mark.skipif(
    not Path(HELM).is_file(), reason="helm is not built here (see tests/helm/test_chart.py)"
)

# PromQL words that look like names but are not metrics.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers,
    ranges and grouping label lists are cut out, that are neither functions nor keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group().lower() in KEYWORDS:
            continue  # a function call, or an operator
        names.add(match.group())
    return names


def exported_names() -> set[str]:
    """Every series name the service's registry exposes, suffixes included."""
    names = set()
    for family in ServiceMetrics(CollectorRegistry()).registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def rules(*overrides: str) -> list[dict]:
    rule = find(render(*MONITORED, *overrides), "PrometheusRule", "sands-serving")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


@pytest.fixture(scope="module")
def monitored() -> list[dict]:
    return render(*MONITORED, "monitoring.alerts.labels.release=kube-prometheus-stack")


def test_the_dashboard_ships_verbatim_in_a_configmap_the_grafana_sidecar_picks_up() -> None:
    (config,) = [d for d in render() if d["metadata"]["name"] == "sands-dashboards"]
    assert config["kind"] == "ConfigMap"
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["data"] == {"serving.json": DASHBOARD.read_text()}  # one source of truth
    custom = render(
        "monitoring.dashboards.label=team_dashboard",
        "monitoring.dashboards.labelValue=sands",
        "monitoring.dashboards.annotations.grafana_folder=Shifting Sands",
    )
    metadata = find(custom, "ConfigMap", "sands-dashboards")["metadata"]
    assert metadata["labels"]["team_dashboard"] == "sands"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "Shifting Sands"}
    assert not [d for d in render("monitoring.dashboards.enabled=false") if "dashboards" in str(d)]


def test_the_dashboard_matches_the_grafana_schema_and_lays_out_cleanly() -> None:
    board = dashboard()
    dashboard_validator().validate(board)
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for panel in panels:
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        here = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & here, f"{panel['title']} overlaps another panel"
        cells |= here
    # Every query is scoped by the namespace variable and goes to the chosen Prometheus.
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for selector in re.findall(r"\{[^}]*\}", target["expr"]):
                assert 'namespace=~"$namespace"' in selector, target["expr"]


def test_the_dashboard_has_a_panel_for_each_serving_question() -> None:
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "sands_requests_total",  # requests/s by route and status, 5xx share
        "sands_request_latency_seconds_bucket",  # p50/p95/p99
        "sands_snapshot_swaps_total",  # hot swaps
        "sands_model_version",  # serving version
        "sands_canary_share",  # canary split
        "sands_online_ctr",  # CTR by arm
        "sands_online_conversion_rate",  # conversion by arm
        "sands_prediction_log_queue_depth",  # queue depth
        "sands_impressions_dropped",  # drops
        "sands_features_timestamp_seconds",  # feature freshness
    ):
        assert metric in exprs, metric
    quantiles = re.findall(r"histogram_quantile\(([\d.]+),", exprs)
    assert sorted(quantiles) == ["0.5", "0.95", "0.99"]


def test_the_operator_objects_are_valid_against_the_vendored_crds(monitored) -> None:
    rule = find(monitored, "PrometheusRule", "sands-serving")
    crd_validator("PrometheusRule").validate(rule)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    monitor = find(monitored, "PodMonitor", "sands-serving")
    crd_validator("PodMonitor").validate(monitor)
    serving = find(monitored, "Deployment", "sands-serving")["spec"]["template"]["metadata"]
    assert monitor["spec"]["selector"]["matchLabels"] == serving["labels"]
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s"}
    ]
    # The strict schema is strict: a misspelt field fails.
    typo = json.loads(json.dumps(rule))
    typo["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    with pytest.raises(Exception, match="expresion"):
        crd_validator("PrometheusRule").validate(typo)


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    found = rules()
    assert [r["alert"] for r in found] == [
        "SandsServingLatencyHigh",
        "SandsServingErrors",
        "SandsOnlineCtrBelowObjective",
        "SandsPredictionLogDrops",
        "SandsPredictionLogFailing",
        "SandsChampionStale",
        "SandsServingSnapshotStale",
        "SandsFeaturesStale",
    ]
    for rule in found:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_metric_parser_finds_names_and_skips_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (le, arm) (rate(a_total{x="b_total", y=~"$c"}[$__rate_interval])) / '
        "ignoring (arm) group_left sum(b:ratio offset 5m) > bool 1e-05 and on (z) time() - c"
    )
    assert metric_names(expr) == {"a_total", "b:ratio", "c"}


def test_every_metric_the_dashboard_and_alerts_query_is_one_the_service_exports() -> None:
    exported = exported_names()
    assert "sands_requests_total" in exported and "sands_model_version" in exported
    used = {name: "dashboard" for expr in dashboard_exprs() for name in metric_names(expr)}
    used |= {name: r["alert"] for r in rules() for name in metric_names(r["expr"])}
    unknown = {name: where for name, where in used.items() if name not in exported}
    assert not unknown, f"not exported by sands/serving/metrics.py: {unknown}"


def test_thresholds_come_from_values_and_match_the_platform_objectives() -> None:
    # The CTR alert is the same objective Dagster's online_ctr_meets_objective check applies.
    assert ALERTS["ctr"]["min"] == OnlineObjective.min_ctr
    assert ALERTS["ctr"]["minImpressions"] == OnlineObjective.min_impressions
    assert ALERTS["staleChampion"]["maxAgeHours"] == Objective.max_age_days * 24
    # The dashboard draws the same lines the alerts fire on.
    lines = {
        p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
        for p in dashboard()["panels"]
        if len(p["fieldConfig"]["defaults"]["thresholds"]["steps"]) > 1
    }
    assert lines == {
        "5xx share": ALERTS["errors"]["maxShare"],
        "Latency of /recommendations (p50, p95, p99)": ALERTS["latency"]["p99Seconds"],
        "CTR by arm (online_performance)": ALERTS["ctr"]["min"],
    }
    changed = {
        r["alert"]: r
        for r in rules(
            "monitoring.alerts.ctr.min=0.08",
            "monitoring.alerts.latency.p99Seconds=0.05",
            "monitoring.alerts.staleChampion.maxAgeHours=48",
            "monitoring.alerts.errors.severity=page",
        )
    }
    assert "< 0.08" in changed["SandsOnlineCtrBelowObjective"]["expr"]
    assert changed["SandsServingLatencyHigh"]["expr"].endswith("> 0.05")
    assert changed["SandsChampionStale"]["expr"].endswith("> 48 * 3600")
    assert changed["SandsServingErrors"]["labels"]["severity"] == "page"


needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: `make promtool` (Debian's prometheus package, as root)",
)


@needs_promtool
def test_promtool_accepts_the_rules_and_every_dashboard_query(tmp_path: Path) -> None:
    rule = find(render(*MONITORED), "PrometheusRule", "sands-serving")
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rule["spec"]))
    # Dashboard queries, with Grafana's variables substituted, as recording rules.
    recorded = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, expr
            recorded.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}"})
            recorded[-1]["expr"] = expr
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]})
    )
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", "alerts.yaml", "dashboard.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    assert f"SUCCESS: {len(recorded)} rules found" in checked.stdout


# Series for promtool's rule unit tests: per namespace, what the pods export over 40 minutes.
SERIES = {
    # CTR below 5 % on enough impressions fires; on too few, or above the objective, it does not.
    'sands_online_ctr{namespace="low", arm="champion", version="3"}': "0.03x40",
    'sands_online_impressions{namespace="low", arm="champion", version="3"}': "300x40",
    'sands_online_ctr{namespace="thin", arm="champion", version="3"}': "0.03x40",
    'sands_online_impressions{namespace="thin", arm="champion", version="3"}': "100x40",
    'sands_online_ctr{namespace="fine", arm="champion", version="4"}': "0.07x40",
    'sands_online_impressions{namespace="fine", arm="champion", version="4"}': "900x40",
    # 2 % of responses are 5xx in "low"; none in "fine" (and /metrics never counts).
    'sands_requests_total{namespace="low", endpoint="recommendations", status="200"}': "0+98x40",
    'sands_requests_total{namespace="low", endpoint="recommendations", status="503"}': "0+2x40",
    'sands_requests_total{namespace="fine", endpoint="recommendations", status="200"}': "0+99x40",
    'sands_requests_total{namespace="fine", endpoint="metrics", status="500"}': "0+50x40",
    # One pod of "low" drops impressions at minute 30.
    'sands_impressions_dropped{namespace="low", pod="a"}': "0x30 7x10",
    'sands_impressions_dropped{namespace="low", pod="b"}': "0x40",
    # Pod a of "low" fails to commit its log from minute 30; pod b once, for two minutes.
    'sands_prediction_log_failing{namespace="low", pod="a"}': "0x30 1x10",
    'sands_prediction_log_failing{namespace="low", pod="b"}': "0x20 1x2 0x18",
    # Pod b of "low" stopped reading the registry at minute 5 (the gauge is unix time).
    'sands_snapshot_checked_timestamp_seconds{namespace="low", pod="a"}': "0+60x40",
    'sands_snapshot_checked_timestamp_seconds{namespace="low", pod="b"}': "0+60x5 300x35",
}


def _alert(name: str, **labels: str) -> dict:
    return {"exp_labels": {**labels, "severity": ALERTS[name]["severity"]}}


@needs_promtool
def test_the_alerts_fire_when_they_should_and_only_then(tmp_path: Path) -> None:
    """promtool's rule unit tests on made-up series (annotations left out: their templates are
    checked by `promtool check rules`)."""
    spec = find(render(*MONITORED), "PrometheusRule", "sands-serving")["spec"]
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(spec))
    cases = {
        "SandsOnlineCtrBelowObjective": [_alert("ctr", namespace="low", version="3")],
        "SandsServingErrors": [_alert("errors", namespace="low")],
        "SandsPredictionLogDrops": [_alert("logDrops", namespace="low", pod="a")],
        "SandsPredictionLogFailing": [_alert("logFailing", namespace="low", pod="a")],
        "SandsServingSnapshotStale": [_alert("staleSnapshot", namespace="low", pod="b")],
    }
    tests = {
        "rule_files": ["alerts.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in SERIES.items()],
                "alert_rule_test": [
                    {"eval_time": "38m", "alertname": name, "exp_alerts": expected}
                    for name, expected in cases.items()
                ]
                + [
                    # Before the drop, and before the stale pod's `for` elapsed: nothing.
                    {"eval_time": at, "alertname": name, "exp_alerts": []}
                    for at, name in (
                        ("29m", "SandsPredictionLogDrops"),
                        ("33m", "SandsPredictionLogFailing"),
                        ("12m", "SandsServingSnapshotStale"),
                    )
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
