from datetime import date
from pathlib import Path

from deltalake import DeltaTable
from typer.testing import CliRunner

from sands.cli import app
from sands.contract import INTERACTIONS
from sands.feature_store import USER_FEATURES
from sands.ingest import bronze_uri, ingest_day
from sands.online import SqliteOnlineStore
from sands.prediction_log import impressions_uri, read_impressions
from sands.training_store import TRAINING_EXAMPLES

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "simulate",
        "ingest",
        "features",
        "training-data",
        "demo",
        "status",
        "ui",
        "contract-docs",
        "train",
        "retrain",
        "models",
        "promote",
        "rollback",
        "mlflow",
        "replay",
    ):
        assert command in result.output


def test_simulate_rejects_an_unknown_scenario(paths):
    result = runner.invoke(app, ["simulate", "--scenario", "apocalypse"])
    assert result.exit_code != 0 and "unknown scenario" in result.output


def test_demo_runs_from_landing_files_to_a_champion_recording_runs(paths, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    result = runner.invoke(app, ["demo", "--days", "4", "--events-per-day", "1500"])
    assert result.exit_code == 0, result.output
    assert any(Path(paths.dagster_home).rglob("*.db")), (
        "runs are recorded in the instance under SANDS_HOME"
    )
    assert "bronze/interactions" in result.output
    # Features for both days in one run, then the online store and the training set.
    assert DeltaTable(USER_FEATURES.uri(paths.lake)).version() == 1
    assert DeltaTable(TRAINING_EXAMPLES.uri(paths.lake)).to_pyarrow_table().num_rows > 0
    assert SqliteOnlineStore(paths.online_db).count("user_features") > 0
    assert "training/training_examples" in result.output
    # Then models: trained, evaluated against popularity, reported, and (gate permitting) served.
    assert "report: " in result.output and Path(paths.reports, "evaluation-v1.html").exists()
    assert "MLflow UI" in result.output
    # Then one more day of simulated users browses what `sands serve` served them.
    assert "the service served" in result.output
    assert DeltaTable(bronze_uri(paths.lake, INTERACTIONS)).version() == 5  # 4 days + served day
    assert read_impressions(impressions_uri(paths.lake)).num_rows > 0
    assert "Online quality of what was served" in result.output


def test_status_shows_quarantined_rows_and_rejected_files_per_feed(paths):
    day = date(2026, 9, 2)
    folder = Path(paths.landing, "interactions", str(day))
    folder.mkdir(parents=True)
    (folder / "broken.parquet").write_bytes(b"PAR1 garbage")
    (folder / "feed.jsonl").write_text('{"event_id": "e1"}\n[1]\n{"event_id": "e2", "user')
    ingest_day(paths.landing, paths.lake, day)
    result = runner.invoke(app, ["status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "files rejected" in result.output
    (row,) = [line for line in result.output.splitlines() if "bronze/interactions" in line]
    # e1 (missing columns), the array line and the truncated line: 3 rows; 1 file.
    assert [cell.strip() for cell in row.split("│")[2:6]] == ["1", "0", "3", "1"]
