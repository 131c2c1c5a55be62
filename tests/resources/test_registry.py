"""The registry resource: embedded SQLite under SANDS_HOME unless a tracking server is named."""

import pytest

from resources import build_resources


def test_embedded_registry_lives_under_sands_home(paths, monkeypatch):
    monkeypatch.delenv("SANDS_MLFLOW_TRACKING_URI", raising=False)
    registry = build_resources()["registry"]
    assert registry.tracking_uri == f"sqlite:///{paths.home}/mlflow/mlflow.db"
    assert registry.artifact_location == f"file://{paths.home}/mlflow/artifacts"
    assert registry.history_uri == f"{paths.lake}/registry/champion_history"
    assert registry.report_path("r.html") == f"{paths.home}/reports/r.html"


def test_a_named_tracking_server_is_used_as_is(paths, monkeypatch):
    monkeypatch.setenv("SANDS_MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    registry = build_resources()["registry"]
    assert registry.tracking_uri == "http://mlflow.internal:5000"
    assert registry.artifact_location is None
    assert (
        registry.open().ui_link(3) == "http://mlflow.internal:5000/#/models/sands-ranker/versions/3"
    )


def test_production_insists_on_a_tracking_server(monkeypatch):
    monkeypatch.setenv("SANDS_ENV", "production")
    monkeypatch.setenv("SANDS_LANDING_URI", "s3://b/landing")
    monkeypatch.setenv("SANDS_LAKE_URI", "s3://b/lake")
    monkeypatch.setenv("SANDS_REDIS_URL", "redis://r:6379/0")
    monkeypatch.delenv("SANDS_MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match="missing: SANDS_MLFLOW_TRACKING_URI"):
        build_resources()


def test_links_point_at_the_uis_a_browser_uses(paths, monkeypatch):
    monkeypatch.delenv("SANDS_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SANDS_MLFLOW_UI_URL", "https://mlflow.example.com/")
    monkeypatch.setenv("SANDS_DAGSTER_URL", "https://dagster.example.com")
    registry = build_resources()["registry"]
    assert registry.dagster_ui_url == "https://dagster.example.com"
    assert registry.open().ui_link(3) == (
        "https://mlflow.example.com/#/models/sands-ranker/versions/3"
    )
    monkeypatch.delenv("SANDS_MLFLOW_UI_URL")
    monkeypatch.delenv("SANDS_DAGSTER_URL")
    registry = build_resources()["registry"]
    assert registry.dagster_ui_url == "http://localhost:3000"  # `sands ui`
    assert registry.open().ui_link(3).startswith("http://localhost:5000/#/")  # `sands mlflow`
