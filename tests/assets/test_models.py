"""The model_training job on a small simulated marketplace: train, register with lineage,
evaluate, promote through the gate; a shuffled-label model is never promoted."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from assets.models import RankerConfig
from dagster_project.cli import app
from dagster_project.runner import (
    run_feature_build,
    run_ingestion,
    run_model_training,
    run_training_data,
)
from resources import build_resources
from sands.evaluation.challenger import evaluate_challenger
from sands.evaluation.gate import GateRules
from sands.evaluation.offline import EvaluationSpec
from sands.evaluation.rankings import KEY, ranking_key, rankings_uri
from sands.evaluation.report import render_html
from sands.ingest.bronze import bronze_uri
from sands.ingest.contract import INTERACTIONS
from sands.lake import delta
from sands.models.aliases import CHALLENGER, CHAMPION, CHAMPION_POLICY, POPULARITY_POLICY
from sands.models.ranking import TRENDING_INPUTS, RankerParams, trees_chosen_on
from sands.models.tags import EVALUATION_RUN_TAG, PARENT_RUN_TAG, REUSED_VERSION_TAG
from sands.monitoring.guard import guard_new_champion
from sands.monitoring.verdicts import Objective
from sands.serving.prediction_log import Impression, impressions_table, impressions_uri
from sands.settings import SandsPaths
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop

START = date(2026, 9, 1)
DAYS = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A simulated marketplace carried through ingestion, features and the training set."""
    home = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDS_HOME", str(home))
        for var in (
            "SANDS_LANDING_URI",
            "SANDS_LAKE_URI",
            "SANDS_ENV",
            "SANDS_MLFLOW_TRACKING_URI",
            "SANDS_MLFLOW_UI_URL",
            "SANDS_DAGSTER_URL",
        ):
            patch.delenv(var, raising=False)
        paths = SandsPaths.from_env()
        paths.ensure_local_dirs()
        config = SimulationConfig(
            seed=11,
            start=START,
            days=DAYS,
            events_per_day=4_000,
            initial_users=400,
            initial_artworks=150,
            new_users_per_day=5,
            new_artworks_per_day=3,
        )
        for drop in Marketplace(config).days():
            write_drop(drop, paths.landing, paths.storage_options, "parquet")
        instance = DagsterInstance.ephemeral()
        days = [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]
        assert all(r.success for r in run_ingestion(days, instance))
        assert run_feature_build(days[0], days[-1], instance).success
        assert run_training_data(instance).success
        first = run_model_training(instance)
        yield paths, instance, first


@pytest.fixture(scope="module")
def shuffled(world):
    """Version 3: a challenger trained on shuffled labels, which the gate rejects; the drills
    below push it to champion. Each test that needs it asks, so it also runs alone."""
    _, instance, _ = world
    return run_model_training(instance, {"ranker": {"shuffle_labels": True}})


def registry():
    return build_resources()["registry"].open()


def materialized(result, name: str) -> dict[str, object]:
    events = result.asset_materializations_for_node(name)
    return {k: v.value for k, v in events[-1].metadata.items()}


def mlflow_tree(dagster_run_id: str):
    """The MLflow run dagster-mlflow opened for a Dagster run, and its children by name."""
    reg = registry()
    experiment = reg.experiment_id()
    (parent,) = reg.client.search_runs([experiment], f"tags.dagster_run_id = '{dagster_run_id}'")
    children = reg.client.search_runs(
        [experiment], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'"
    )
    return parent, {c.info.run_name.split()[0]: c for c in children}


def test_the_first_ranker_beats_popularity_and_becomes_champion(world):
    _, _, first = world
    assert first.success
    report = materialized(first, "evaluation_report")
    assert report["challenger_version"] == 1 and report["champion_version"] is None
    assert Path(report["report"]).read_text().count("<svg") >= 4
    checks = first.get_asset_check_evaluations()
    gate = next(c for c in checks if c.check_name == "promotion_gate")
    assert gate.passed
    reg = registry()
    # v1 passed; v2, its recipe refit on every label day (the holdout too), serves.
    assert reg.aliases() == {CHALLENGER: 1, CHAMPION: 2}
    assert (reg.history()[-1].action, reg.history()[-1].version) == ("gate_promote", 2)
    assert reg.judged_version(2) == 1 and reg.judged_version(1) == 1


def test_the_passed_recipe_is_refit_on_every_label_day_and_that_serves(world):
    _, _, first = world
    reg = registry()
    judged, refit = reg.version(1).tags, reg.version(2).tags
    last_label = date.fromisoformat(judged["sands.holdout_until"])
    assert refit["sands.refit_of"] == "1"
    assert refit["sands.train_cutoff"] == f"{last_label + timedelta(days=1)}T00:00:00+00:00"
    assert judged["sands.train_cutoff"] < refit["sands.train_cutoff"]
    for key in ("sands.delta.training_examples", "sands.delta.user_segments", "sands.git_commit"):
        assert refit[key] == judged[key], key
    assert "sands.gate" not in refit  # the verdict belongs to the version the gate judged
    model, served = reg.load_ranker(1), reg.load_ranker(2)
    assert served.booster.num_boosted_rounds() == model.booster.num_boosted_rounds()
    assert served.spec.features == model.spec.features
    assert served.spec.segment_model == model.spec.segment_model
    assert served.spec.params["trained_rows"] > model.spec.params["trained_rows"]
    deployed = materialized(first, "deployed_ranker")
    assert deployed["decision"].startswith("promoted v1; serving v2, its refit")
    listing = CliRunner().invoke(app, ["models"])
    assert "refit of v1" in listing.output


def test_the_gate_ranks_a_challenger_once_and_keeps_its_lists(world):
    """Kept for whoever ranks that model on that setup next: at volume the holdout is the newest
    day, and the guard judges a just-promoted champion on it (`deployed_ranker`)."""
    paths, _, _ = world
    reg = registry()
    uri = rankings_uri(paths.lake)
    shutil.rmtree(uri, ignore_errors=True)  # what the first run stored, forgotten
    run = evaluate_challenger(reg, paths.lake, EvaluationSpec(), GateRules(), 7)
    key = ranking_key(reg.load_ranker(run.challenger_version).scoring_bytes(), run.setup)
    stored = DeltaTable(uri).to_pyarrow_table(filters=[(KEY, "=", key)])
    lists = zip(stored["user_id"].to_pylist(), stored["artwork_ids"].to_pylist(), strict=True)
    assert dict(lists) == run.challenger.recommendations
    version = delta.current_version(uri)
    again = evaluate_challenger(reg, paths.lake, EvaluationSpec(), GateRules(), 7)
    assert delta.current_version(uri) == version  # read back, not ranked again
    assert again.challenger.overall == run.challenger.overall


def test_an_evaluation_of_a_sample_of_users_says_of_how_many(world):
    paths, _, _ = world
    reg = registry()
    small = EvaluationSpec(max_scored_pairs=1, min_sampled_users=2)
    run = evaluate_challenger(reg, paths.lake, small, GateRules(), 7)
    everyone = run.setup.labelled_users
    assert run.challenger.overall["users"] == 2 < everyone
    page = render_html(run.report)
    assert f"for 2 users, a stable sample of the {everyone:,} with a positive" in page
    full = evaluate_challenger(reg, paths.lake, EvaluationSpec(), GateRules(), 7)
    assert f"for {everyone:,} users.</p>" in render_html(full.report)


def test_the_registered_version_carries_lineage_signature_and_its_report(world):
    _, _, first = world
    reg = registry()
    version = reg.version(1)
    tags = version.tags
    for table in (
        "training_examples",
        "user_features",
        "artwork_features",
        "interactions",
        "artworks",
        "user_segments",
    ):
        assert tags[f"sands.delta.{table}"].isdigit(), table
    assert len(tags["sands.dbt_manifest"]) == 16
    assert tags["sands.git_commit"]
    assert tags["dagster.run_id"] == first.run_id
    assert tags["dagster.run_url"] == f"http://localhost:3000/runs/{first.run_id}"
    assert tags["sands.gate"] == "passed"
    info = reg.model_info(1)
    model = reg.load_ranker(1)
    ranker = materialized(first, "ranker")
    assert ranker["trees"] == model.booster.num_boosted_rounds()
    assert ranker["trees_chosen_on"] == trees_chosen_on(model.spec.params)
    assert info.signature.inputs.input_names() == model.spec.features
    assert info.saved_input_example_info is not None
    evaluation = tags[EVALUATION_RUN_TAG]
    artifacts = reg.client.list_artifacts(evaluation, "evaluation")
    assert [Path(a.path).name for a in artifacts] == ["evaluation-v1.html"]
    assert reg.client.get_run(evaluation).data.metrics["eval_ndcg_at_10"] > 0


def test_one_dagster_run_is_one_mlflow_run_holding_the_ranker_and_evaluation_runs(world):
    _, _, first = world
    parent, children = mlflow_tree(first.run_id)
    tags = parent.data.tags
    assert tags["dagster.run_url"] == f"http://localhost:3000/runs/{first.run_id}"
    assert tags["sands.decision"].startswith("promoted v1")
    assert parent.info.status == "FINISHED"  # ended by the hook after deployed_ranker
    reg = registry()
    version = reg.version(1)
    assert set(children) == {"ranker", "evaluation", "refit"}
    assert children["ranker"].info.run_id == version.run_id  # the run that logged the model
    assert children["refit"].info.run_id == reg.version(2).run_id
    assert children["evaluation"].info.run_id == version.tags[EVALUATION_RUN_TAG]
    for child in children.values():
        assert child.data.tags["dagster.run_url"] == tags["dagster.run_url"]
        assert "dagster_run_id" not in child.data.tags  # dagster-mlflow finds parents by it
    # Dagster's metadata links to those runs and to the version, in the MLflow UI.
    runs = f"http://localhost:5000/#/experiments/{parent.info.experiment_id}/runs/"
    model = "http://localhost:5000/#/models/sands-ranker/versions/1"
    ranker = materialized(first, "ranker")
    assert ranker["mlflow_run"] == runs + version.run_id
    assert ranker["mlflow_parent_run"] == runs + parent.info.run_id
    assert ranker["mlflow_model_version"] == model
    report = materialized(first, "evaluation_report")
    assert report["mlflow_run"] == runs + children["evaluation"].info.run_id
    assert report["mlflow_parent_run"] == runs + parent.info.run_id
    assert report["mlflow_model_version"] == model
    deployed = materialized(first, "deployed_ranker")
    assert deployed["mlflow_parent_run"] == runs + parent.info.run_id
    assert deployed["mlflow_champion_version"] == model[:-1] + "2"
    # `sands models` prints the same links for the champion (the refit) and the challenger.
    listing = CliRunner().invoke(app, ["models"])
    assert listing.exit_code == 0, listing.output
    assert "champion v2:" in listing.output and "challenger v1:" in listing.output
    assert "Popularity, where it serves, counts the last 7 days" in listing.output
    for link in (model, runs + version.run_id, tags["dagster.run_url"]):
        assert link in listing.output


def test_without_a_champion_monitoring_asks_for_one(world):
    _, _, first = world
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks["no_dataset_drift"] is True  # nothing to drift from
    assert checks["champion_meets_objective"] is False  # no champion: a reason to train


def test_a_shuffled_label_model_is_rejected_and_the_champion_stays(world, shuffled):
    _, instance, _ = world
    result = shuffled
    # Monitoring ran first against champion v1 and its training rows.
    drift = materialized(result, "feature_drift")
    assert drift["champion_version"] == 2 and Path(drift["report"]).read_text().count("<svg") > 1
    quality = materialized(result, "champion_performance")
    assert quality["champion_version"] == 2 and quality["ndcg_at_10"] > 0
    # The refit was trained on every label day there is: no day newer than its data.
    assert quality["age_days"] == 0
    assert not result.success  # the blocking gate stops the run before deployed_ranker
    parent, children = mlflow_tree(result.run_id)
    assert parent.info.status == "FAILED"  # the hook failed the MLflow run with the step
    assert set(children) == {"ranker", "evaluation"}  # nothing refit: nothing passed
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")
    assert not gate.passed
    criteria = gate.metadata["criteria"].value
    assert "beats champion | **FAIL**" in criteria
    assert "beats popularity | **FAIL**" in criteria  # popularity is always a contender
    # The champion (v2) refits v1 on this very holdout: v1, as the gate judged it, is the rival.
    report = Path(materialized(result, "evaluation_report")["report"]).read_text()
    assert "v1, the recipe as the gate judged it, stands in for it here" in report
    assert not result.asset_materializations_for_node("deployed_ranker")
    reg = registry()
    assert reg.aliases() == {CHALLENGER: 3, CHAMPION: 2}
    assert reg.version(3).tags["sands.gate"] == "rejected"
    assert reg.version(3).tags["sands.shuffled_labels"] == "true"
    last = reg.history()[-1]
    assert (last.action, last.version, last.previous) == ("gate_reject", 3, 2)
    assert instance.get_latest_materialization_event(AssetKey("deployed_ranker")) is not None


def test_rerunning_on_unchanged_data_reuses_the_version_and_keeps_the_champion(world, shuffled):
    _, instance, _ = world
    result = run_model_training(instance)
    assert result.success
    reg = registry()
    assert [int(v.version) for v in reg.versions()] == [1, 2, 3]
    assert reg.aliases() == {CHALLENGER: 1, CHAMPION: 2}
    deployed = materialized(result, "deployed_ranker")
    assert deployed["decision"] == "v1 is already the champion (serving as its refit v2)"
    # No new version, but this run's MLflow run still holds its ranker run, naming v1.
    _, children = mlflow_tree(result.run_id)
    assert children["ranker"].data.tags[REUSED_VERSION_TAG] == "1"
    assert materialized(result, "ranker")["mlflow_run"].endswith(children["ranker"].info.run_id)


def test_a_history_too_short_for_the_held_out_window_skips_training_without_failing(world):
    _, instance, _ = world
    before = [int(v.version) for v in registry().versions()]
    result = run_model_training(instance, {"ranker": {"eval_days": DAYS}})
    assert result.success  # a young history is not an error: nothing to train on yet
    assert not result.asset_materializations_for_node("ranker")
    assert not result.asset_materializations_for_node("deployed_ranker")
    assert [int(v.version) for v in registry().versions()] == before
    # Its MLflow run holds nothing, and is ended, not left running, after the last step skipped.
    parent, children = mlflow_tree(result.run_id)
    assert parent.info.status == "FINISHED" and children == {}


def test_popularity_serves_while_it_beats_the_champion_until_a_new_champion_passes(world, shuffled):
    _, instance, _ = world
    reg = registry()
    reg.promote(3, "tests", "drill: the shuffled-label model serves")
    result = run_model_training(instance)
    quality = materialized(result, "champion_performance")
    assert quality["champion_version"] == 3
    assert quality["popularity_ndcg_at_10"] > quality["ndcg_at_10"]
    assert quality["positives"] >= 1 and quality["users"] >= 1
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["champion_meets_objective"] is False  # the degradation trigger
    actions = [(c.action, c.version) for c in reg.history()]
    guard = actions.index(("serving_policy_popularity", 3))
    # The retrained challenger (v1 again) beats both the shuffled champion and popularity: its
    # refit (v2 again: the same data and recipe) serves again.
    assert actions[guard + 1 :] == [("gate_promote", 2), ("serving_policy_champion", 2)]
    assert reg.serving_policy() == "champion" and reg.champion_version() == 2
    assert [int(v.version) for v in reg.versions()] == [1, 2, 3]
    guard_reason = next(c.reason for c in reg.history() if c.action == "serving_policy_popularity")
    assert guard_reason.startswith("popularity ") and "CI" in guard_reason


def test_a_new_champion_that_popularity_beats_on_the_newest_days_does_not_serve(world, shuffled):
    """What deployed_ranker does after a promotion: the guard judges the new champion at once."""
    paths, _, _ = world
    reg = registry()
    reg.promote(3, "tests", "drill: the shuffled-label model is pushed")
    assert reg.serving_policy() == CHAMPION_POLICY  # a push alone would serve it
    policy, verdict = guard_new_champion(reg, paths.lake, Objective(), "tests")
    assert policy == POPULARITY_POLICY == reg.serving_policy()
    assert verdict.popularity_ndcg > verdict.ndcg and reg.history()[-1].version == 3
    # The refit saw every label day: v1, the version its gate judged, is ranked in its place.
    reg.promote(2, "tests", "drill over")
    policy, verdict = guard_new_champion(reg, paths.lake, Objective(), "tests")
    assert (
        policy == CHAMPION_POLICY == reg.serving_policy() and verdict.ndcg > verdict.popularity_ndcg
    )


def test_the_champion_s_logged_lists_judge_the_challenger_before_it_serves(world):
    """An exploring log of champion v1 on the held-out day: the off-policy asset estimates every
    policy from it, and the gate reads its criterion."""
    paths, instance, _ = world
    reg = registry()
    champion = reg.champion_version()
    judged = reg.judged_version(champion)
    cutoff = datetime.fromisoformat(reg.version(judged).tags["sands.train_cutoff"])
    events = DeltaTable(bronze_uri(paths.lake, INTERACTIONS)).to_pyarrow_table(
        columns=["user_id", "artwork_id", "event_type", "event_ts"]
    )
    clicks = [
        e for e in events.to_pylist() if e["event_type"] == "click" and e["event_ts"] > cutoff
    ][:120]
    others = sorted({e["artwork_id"] for e in events.to_pylist()})[:12]
    log = []
    for i, e in enumerate(clicks):
        # The clicked artwork shown at slot i % 10, explored in every third list.
        items = [a for a in others if a != e["artwork_id"]][:10]
        items[i % 10] = e["artwork_id"]
        explored = [slot == i % 10 and i % 3 == 0 for slot in range(10)]
        chances = [0.0025 if x else 0.9 for x in explored]
        served = e["event_ts"] - timedelta(minutes=2)
        log.append(
            Impression(
                f"i{i}",
                e["user_id"],
                items,
                [1.0] * 10,
                champion,
                CHAMPION,
                served,
                "ranked",
                chances,
                explored,
                "epsilon-slots(rate=0.1)",
            )
        )
    write_deltalake(
        impressions_uri(paths.lake),
        impressions_table(log),
        mode="append",
        partition_by=["served_date"],
        schema_mode="merge",
    )
    result = run_model_training(
        instance, {"ranker": {"shuffle_labels": True}, "off_policy_estimate": {"min_lists": 10}}
    )
    estimate = materialized(result, "off_policy_estimate")
    assert estimate["challenger_version"] == 3 and estimate["lists"] == len(clicks)
    for policy in ("| challenger |", "| champion |", "| popularity |", "(as logged)"):
        assert policy in estimate["estimates"], policy
    # Doubly robust beside pbm for the two models (the gate would read it, had it judged).
    assert "| clicks per list, dr |" in estimate["estimates"]
    assert "Challenger - champion: dr difference" in estimate["estimates"]
    assert "The gate reads" not in estimate["estimates"]
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")
    criteria = gate.metadata["criteria"].value
    # The log's lists are arbitrary artworks, not what v1 ranks: the recomputed champion does
    # not reproduce them, so the gate reports the estimates but does not judge by them.
    assert "| online estimate (off-policy) | pass | not judged: the champion recomputed" in criteria
    report = Path(materialized(result, "evaluation_report")["report"]).read_text()
    assert "Online estimate from logged traffic" in report and "dr difference" in report


def test_the_ranker_config_defaults_are_the_trainers_and_reach_it():
    """The launchpad's config holds no defaults of its own, and passes every choice on."""
    assert RankerConfig().params() == RankerParams()
    chosen = RankerConfig(popularity_prior=0.0, trend_inputs=False, trees=7).params()
    assert chosen.popularity_prior == 0.0 and chosen.trees == 7
    assert chosen.excluded_features == TRENDING_INPUTS


def test_the_popularity_window_is_chosen_unless_fixed_to_a_feature_window():
    import pydantic

    from assets.models import PopularityConfig

    assert PopularityConfig().window_days is None  # chosen by evidence
    assert PopularityConfig(window_days=28).window_days == 28
    with pytest.raises(pydantic.ValidationError, match="window_days 14"):
        PopularityConfig(window_days=14)
