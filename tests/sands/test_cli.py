from pathlib import Path

from deltalake import DeltaTable
from typer.testing import CliRunner

from sands.cli import app
from sands.contract import INTERACTIONS
from sands.ingest import bronze_uri

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "ingest", "demo", "status", "ui", "contract-docs"):
        assert command in result.output


def test_simulate_rejects_an_unknown_scenario(paths):
    result = runner.invoke(app, ["simulate", "--scenario", "apocalypse"])
    assert result.exit_code != 0 and "unknown scenario" in result.output


def test_demo_simulates_and_ingests_into_sands_home_recording_runs(paths, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    result = runner.invoke(app, ["demo", "--days", "2", "--events-per-day", "1500"])
    assert result.exit_code == 0, result.output
    assert DeltaTable(bronze_uri(paths.lake, INTERACTIONS)).version() == 2
    assert any(Path(paths.dagster_home).rglob("*.db")), (
        "runs are recorded in the instance under SANDS_HOME"
    )
    assert "bronze/interactions" in result.output
