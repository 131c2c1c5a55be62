"""The dbt project agrees with the data contract and stays portable."""

import json
import re
from pathlib import Path

import yaml

from resources.dbt import DBT_PROJECT_DIR, ensure_manifest
from sands.features.warehouse import MODEL_TABLES
from sands.ingest.contract import EVENT_TYPES

MODELS = sorted((DBT_PROJECT_DIR / "models").rglob("*.sql"))


def test_event_types_in_dbt_are_the_contracts():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["event_types"]) == EVENT_TYPES
    assert set(project["vars"]["event_weights"]) == set(EVENT_TYPES)


def test_models_use_no_duckdb_only_syntax():
    # These would not run on Spark; the dispatch macros in dbt/macros/ carry the differences.
    engine_only = re.compile(r"\b(unnest|len|list_\w+|strftime|epoch|interval)\b|::", re.I)
    jinja = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|--[^\n]*", re.S)
    offenders = {
        str(path.relative_to(DBT_PROJECT_DIR)): engine_only.findall(jinja.sub("", path.read_text()))
        for path in MODELS
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_profiles_keep_the_warehouse_in_utc():
    profiles = yaml.safe_load(Path(DBT_PROJECT_DIR, "profiles.yml").read_text())
    embedded = profiles["sands"]["outputs"]["embedded"]
    assert embedded["settings"]["TimeZone"] == "UTC"
    assert embedded["plugins"] == [{"module": "delta"}]


def test_the_tables_compared_across_engines_are_every_incremental_model():
    manifest = json.loads(ensure_manifest().read_text())
    incremental = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    }
    assert incremental == set(MODEL_TABLES)


def test_the_spark_target_runs_in_process_and_the_engine_picks_the_target():
    profiles = yaml.safe_load(Path(DBT_PROJECT_DIR, "profiles.yml").read_text())
    assert profiles["sands"]["outputs"]["spark"]["method"] == "session"
    assert "SANDS_DBT_TARGET" in profiles["sands"]["target"]
