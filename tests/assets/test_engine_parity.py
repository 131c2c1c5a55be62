"""The same pipeline on both engines: DuckDB + delta-rs (embedded) and Spark + delta-spark.

One small simulated marketplace is ingested once; its bronze tables are copied into two homes.
Each home runs the real feature build and training-set jobs on its engine (`SANDS_ENGINE`), and
every dbt model, feature log and the training set must match row for row (content hash).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance
from deltalake import DeltaTable

from dagster_project.runner import (
    run_feature_build,
    run_ingestion,
    run_model_training,
    run_training_data,
)
from resources import build_resources
from sands.engines.parity import content_hash
from sands.engines.spark import java_available
from sands.features.offline import FEATURE_TABLES
from sands.features.training_store import TRAINING_EXAMPLES, read_training_set
from sands.features.warehouse import MODEL_TABLES
from sands.models.ranking import RankerParams
from sands.settings import SandsPaths
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        not java_available(),
        reason="no JVM on this machine: Spark needs Java 17 (JAVA_HOME or PATH)",
    ),
]

START = date(2026, 9, 1)
DAYS = 5
ENGINES = ("duckdb", "spark")
EVERYTHING = (date(1970, 1, 1), date(2999, 12, 31))


class Home:
    """One SANDS_HOME on one engine, with the environment its runs need."""

    def __init__(self, root: Path, engine: str) -> None:
        self.root, self.engine = root, engine
        self.instance = DagsterInstance.ephemeral()

    def env(self, patch: pytest.MonkeyPatch) -> SandsPaths:
        patch.setenv("SANDS_HOME", str(self.root))
        patch.setenv("SANDS_ENGINE", self.engine)
        local = ("SANDS_LANDING_URI", "SANDS_LAKE_URI", "SANDS_ENV", "SANDS_REDIS_URL")
        for var in (*local, "SANDS_MLFLOW_TRACKING_URI"):
            patch.delenv(var, raising=False)
        paths = SandsPaths.from_env()
        paths.ensure_local_dirs()
        return paths


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Home]]:
    """Both homes with identical bronze tables, features built and training sets joined."""
    homes = {e: Home(tmp_path_factory.mktemp(e), e) for e in ENGINES}
    config = SimulationConfig(
        seed=5,
        start=START,
        days=DAYS,
        events_per_day=1_500,
        initial_users=120,
        initial_artworks=60,
        new_users_per_day=3,
        new_artworks_per_day=2,
    )
    days = [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]
    with pytest.MonkeyPatch.context() as patch:
        paths = homes["duckdb"].env(patch)
        for drop in Marketplace(config).days():
            write_drop(drop, paths.landing, paths.storage_options, "parquet")
        assert all(r.success for r in run_ingestion(days, homes["duckdb"].instance))
        shutil.copytree(Path(paths.lake, "bronze"), homes["spark"].root / "lake" / "bronze")
    for home in homes.values():
        with pytest.MonkeyPatch.context() as patch:
            home.env(patch)
            # Days 1-4 in one dbt call and day 5 alone (the daily run): both ways a build of
            # many dates and of one may compute a mart.
            home.builds = [
                run_feature_build(days[0], days[-2], home.instance),
                run_feature_build(days[-1], days[-1], home.instance),
            ]
            home.training = run_training_data(home.instance)
    yield homes


def _model_rows(home: Home, model: str) -> object:
    with pytest.MonkeyPatch.context() as patch:
        home.env(patch)
        warehouse = build_resources()["warehouse"]
    return warehouse.model_rows(model, *EVERYTHING, column=MODEL_TABLES[model])


def test_both_builds_succeed_with_every_dbt_test_passing(homes):
    for home in homes.values():
        assert home.training.success, home.engine
        for build in home.builds:
            assert build.success, home.engine
            checks = build.get_asset_check_evaluations()
            assert len(checks) >= 30
            assert [c.check_name for c in checks if not c.passed] == [], home.engine


@pytest.mark.parametrize("model", MODEL_TABLES)
def test_every_dbt_model_has_the_same_rows_and_types_on_both_engines(homes, model):
    duck, spark = (_model_rows(homes[e], model) for e in ENGINES)
    assert duck.num_rows > 0
    assert spark.schema == duck.schema
    assert (spark.num_rows, content_hash(spark)) == (duck.num_rows, content_hash(duck))


def test_the_published_feature_logs_are_identical(homes):
    for table in FEATURE_TABLES:
        duck, spark = (
            DeltaTable(table.uri(str(homes[e].root / "lake"))).to_pyarrow_table() for e in ENGINES
        )
        assert duck.num_rows > 100
        # created_ts is when a row was published: the same first-publish rule on both homes.
        assert content_hash(spark) == content_hash(duck), table.name


def test_the_point_in_time_training_sets_are_identical(homes):
    sets = {e: read_training_set(str(homes[e].root / "lake")) for e in ENGINES}
    (duck, _, duck_sources), (spark, _, spark_sources) = sets["duckdb"], sets["spark"]
    assert duck.num_rows > 500 and set(duck["label"].to_pylist()) == {0, 1}
    assert spark.schema == duck.schema
    # Row order too: the training set is written in label order on both engines.
    assert spark.equals(duck)
    assert spark_sources == duck_sources


def test_the_spark_trained_ranker_lands_in_the_registry_with_the_same_lineage(homes):
    spark_home = homes["spark"]
    with pytest.MonkeyPatch.context() as patch:
        spark_home.env(patch)
        result = run_model_training(spark_home.instance)
        registry = build_resources()["registry"].open()
        version = registry.version(1)
        model = registry.load_ranker(1)
    assert result.success
    assert model.spec.params["trainer"] == "xgboost.spark"
    # Recency weights need one weight per query group, which the estimator cannot take.
    assert model.spec.params["half_life_days"] is None
    # The popularity prior is the estimator's base margin column, as it is the local trainer's.
    assert model.spec.prior() == RankerParams.popularity_prior
    training_version = DeltaTable(TRAINING_EXAMPLES.uri(str(spark_home.root / "lake"))).version()
    assert version.tags["sands.delta.training_examples"] == str(training_version)
    for table in ("user_features", "artwork_features", "interactions", "user_segments"):
        assert version.tags[f"sands.delta.{table}"].isdigit(), table
    assert version.tags["dagster.run_id"] == result.run_id
    report = result.asset_materializations_for_node("evaluation_report")[-1].metadata
    assert report["challenger_version"].value == 1
    # It learned something real from the rows it was given.
    run = registry.client.get_run(version.run_id)
    assert run.data.metrics["train_auc"] > 0.7
