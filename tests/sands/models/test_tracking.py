"""Run trees and UI links: the ranker and evaluation runs nest under the parent a caller names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sands.models import tracking
from sands.models.aliases import CHALLENGER
from sands.models.ranking import RankerParams, train_ranker
from sands.models.registry import Registry
from sands.models.tags import MODEL_VERSION_TAG, PARENT_RUN_TAG, REUSED_VERSION_TAG
from tests.builders.models import planted_examples

EXAMPLES = planted_examples(users=20, days=2)


def test_the_mlflow_ui_is_the_named_one_else_the_tracking_server_else_sands_mlflow():
    env = {tracking.MLFLOW_UI_ENV: "https://mlflow.example.com/"}
    assert tracking.mlflow_ui_url(env, "http://mlflow:5000") == "https://mlflow.example.com"
    assert tracking.mlflow_ui_url({}, "http://mlflow:5000/") == "http://mlflow:5000"
    assert tracking.mlflow_ui_url({}, "sqlite:///h/mlflow.db") == "http://localhost:5000"
    assert tracking.dagster_ui_url({}) == "http://localhost:3000"
    assert tracking.dagster_ui_url({tracking.DAGSTER_UI_ENV: "https://d.example.com/"}) == (
        "https://d.example.com"
    )
    assert tracking.dagster_tags("http://d:3000", "abc") == {
        "dagster.run_id": "abc",
        "dagster.run_url": "http://d:3000/runs/abc",
    }
    assert tracking.run_url("http://m", "3", "r1") == "http://m/#/experiments/3/runs/r1"
    assert tracking.model_version_url("http://m", "sands-ranker", 2) == (
        "http://m/#/models/sands-ranker/versions/2"
    )


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        history_uri=str(tmp_path / "history"),
        artifact_location=(tmp_path / "artifacts").as_uri(),
        ui_url="http://mlflow.test",
    )


def test_ranker_and_evaluation_runs_are_children_of_the_parent_they_are_given(registry, tmp_path):
    parent = registry.client.create_run(registry.experiment_id(), run_name="training").info.run_id
    model = train_ranker(EXAMPLES, None, RankerParams(trees=3, max_depth=2))
    inputs = model.inputs(EXAMPLES)
    logged = registry.log_ranker(model, inputs, {"trees": 3}, {"auc": 0.7}, {}, "r", parent)
    assert logged.version.run_id == logged.run_id  # the version's own run is the child
    child = registry.client.get_run(logged.run_id)
    assert child.data.tags[PARENT_RUN_TAG] == parent
    assert child.data.tags[MODEL_VERSION_TAG] == "1"
    experiment = child.info.experiment_id
    assert registry.run_url(logged.run_id) == (
        f"http://mlflow.test/#/experiments/{experiment}/runs/{logged.run_id}"
    )
    assert registry.run_link(1) == registry.run_url(logged.run_id)
    assert registry.ui_link(1) == "http://mlflow.test/#/models/sands-ranker/versions/1"

    # The same model again: no new version, but the parent still gets a ranker run saying so.
    again = registry.log_ranker(model, inputs, {"trees": 3}, {"auc": 0.7}, {}, "r2", parent)
    assert int(again.version.version) == 1 and again.run_id != logged.run_id
    rerun = registry.client.get_run(again.run_id)
    assert rerun.data.tags[PARENT_RUN_TAG] == parent
    assert rerun.data.tags[REUSED_VERSION_TAG] == "1"
    assert rerun.data.params == {"trees": "3"} and rerun.data.metrics == {"auc": 0.7}
    assert [int(v.version) for v in registry.versions()] == [1]
    assert registry.aliases() == {CHALLENGER: 1}

    report = tmp_path / "evaluation-v1.html"
    report.write_text("<html></html>")
    evaluation = registry.log_child_run(
        parent, "evaluation", {"evaluation": str(report)}, {"ndcg": 0.2, "nan": float("nan")}, {}
    )
    run = registry.client.get_run(evaluation.run_id)
    assert run.data.tags[PARENT_RUN_TAG] == parent
    assert run.data.metrics == {"ndcg": 0.2} and run.info.status == "FINISHED"
    assert evaluation.artifacts["evaluation"].endswith("/evaluation/evaluation-v1.html")
    children = registry.client.search_runs([experiment], f"tags.`{PARENT_RUN_TAG}` = '{parent}'")
    assert {c.info.run_id for c in children} == {logged.run_id, again.run_id, evaluation.run_id}


def test_without_a_parent_runs_are_top_level_as_before(registry, tmp_path):
    model = train_ranker(EXAMPLES, None, RankerParams(trees=3, max_depth=2))
    inputs = model.inputs(EXAMPLES)
    first = registry.log_ranker(model, inputs, {}, {}, {}, "r")
    again = registry.log_ranker(model, inputs, {}, {}, {}, "r")
    assert again.run_id == first.run_id == first.version.run_id  # nothing new logged
    tags = registry.client.get_run(first.run_id).data.tags
    assert PARENT_RUN_TAG not in tags
    default = Registry(f"sqlite:///{tmp_path}/other.db", str(tmp_path / "h"))
    assert default.ui_url == "http://localhost:5000"  # what `sands mlflow` serves


def test_new_versions_are_registered_without_printing_to_stderr(registry, capfd):
    first = train_ranker(EXAMPLES, None, RankerParams(trees=3, max_depth=2))
    second = train_ranker(EXAMPLES, None, RankerParams(trees=4, max_depth=2))
    capfd.readouterr()
    for model, name in ((first, "r1"), (second, "r2")):
        logged = registry.log_ranker(model, model.inputs(EXAMPLES), {}, {}, {}, name)
        assert logged.version.run_id == logged.run_id
        # The MLflow UI links the logged model to its version, as after fluent registration.
        model_id = logged.version.source.removeprefix("models:/")
        tags = registry.client.get_logged_model(model_id).tags
        assert json.loads(tags["mlflow.modelVersions"]) == [
            {"name": "sands-ranker", "version": int(logged.version.version)}
        ]
    assert [int(v.version) for v in registry.versions()] == [1, 2]
    # The CLIs print progress on stderr: MLflow's "Successfully registered model ..." and
    # "Created version ..." lines, two per retrain, would run through it.
    printed = capfd.readouterr().err.lower()
    assert "registered model" not in printed and "created version" not in printed
