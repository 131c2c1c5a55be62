"""One setting picks the engine: SANDS_ENGINE switches dbt's target, its executable and where
model rows are read from; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources import build_resources


def test_duckdb_is_the_default_engine(tmp_path: Path) -> None:
    resources = build_resources({"SANDS_HOME": str(tmp_path)})
    warehouse, dbt = resources["warehouse"], resources["dbt"]
    assert warehouse.engine == "duckdb" and not warehouse.on_spark
    assert Path(dbt.dbt_executable).name == "dbt"
    env = warehouse.dbt_environment("/lake", {})
    assert "SANDS_DBT_TARGET" not in env and env["SANDS_WAREHOUSE_PATH"] == warehouse.path


def test_spark_runs_dbt_inside_a_spark_session_and_writes_models_to_the_lake(tmp_path: Path):
    resources = build_resources({"SANDS_HOME": str(tmp_path), "SANDS_ENGINE": "spark"})
    warehouse, dbt = resources["warehouse"], resources["dbt"]
    assert warehouse.on_spark
    assert Path(dbt.dbt_executable).name == "sands-dbt-spark"
    assert Path(dbt.dbt_executable).exists()
    env = warehouse.dbt_environment(str(tmp_path / "lake"), {})
    assert env["SANDS_DBT_TARGET"] == "spark"
    assert env["SANDS_SPARK_MODELS_URI"] == str(tmp_path / "lake" / "dbt")
    assert env["SANDS_SPARK_CATALOG"] == str(tmp_path / "spark")
    # Each engine parses the project for itself; sharing a target folder would re-parse each run.
    assert warehouse.dbt_target_path().name == "dbt-target-spark"


def test_an_unknown_engine_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'duckdb' or 'spark'"):
        build_resources({"SANDS_HOME": str(tmp_path), "SANDS_ENGINE": "polars"})


@pytest.mark.parametrize(
    ("engine", "choice", "expected"),
    [
        ("duckdb", "auto", "embedded"),
        ("spark", "auto", "spark"),
        ("spark", "local", "embedded"),  # a ranker small enough for one process
        ("duckdb", "spark", "spark"),
    ],
)
def test_the_heavy_steps_run_on_the_engine_chosen_once(tmp_path, engine, choice, expected):
    env = {"SANDS_HOME": str(tmp_path), "SANDS_ENGINE": engine}
    compute = build_resources(env)["warehouse"].compute(choice, spark_workers=3)
    assert compute.name == expected
    if expected == "spark":
        assert compute.workers == 3  # no session yet: it starts on first use
