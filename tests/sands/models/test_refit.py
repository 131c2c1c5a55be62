"""The refit of a passed ranker: its cutoff after the holdout, the judged recipe, shared lineage."""

import json
from dataclasses import replace
from datetime import UTC, datetime

from sands.models.ranking import TRENDING_INPUTS, RankerModel, RankerParams, train_ranker
from sands.models.refit import refit_cutoff, refit_params, refit_tags
from tests.builders.models import planted_examples

JUDGED = {
    "sands.train_cutoff": "2026-10-05T00:00:00+00:00",
    "sands.holdout_until": "2026-10-07",
    "sands.delta.training_examples": "12",
    "sands.delta.user_features": "30",
    "sands.git_commit": "abc123",
    "sands.dbt_manifest": "0123456789abcdef",
    "sands.shuffled_labels": "false",
    "sands.gate": "passed",
    "sands.gate.reasons": "beats popularity",
    "sands.eval.ndcg_at_10": "0.21",
    "sands.model_sha256": "feed",
    "dagster.run_id": "run-of-the-ranker",
}


def test_the_refit_trains_through_the_last_day_its_holdout_saw():
    assert refit_cutoff(JUDGED) == datetime(2026, 10, 8, tzinfo=UTC)
    # Nothing held out after its cutoff, or no holdout recorded: nothing to refit.
    assert refit_cutoff({**JUDGED, "sands.train_cutoff": "2026-10-08T00:00:00+00:00"}) is None
    assert refit_cutoff({"sands.train_cutoff": JUDGED["sands.train_cutoff"]}) is None


def test_the_refit_keeps_the_data_lineage_and_leaves_the_verdict_to_the_judged_version():
    tags = refit_tags(JUDGED, 4, datetime(2026, 10, 8, tzinfo=UTC))
    lineage = ("sands.holdout_until", "sands.git_commit", "sands.dbt_manifest")
    kept = ("sands.delta.training_examples", "sands.delta.user_features", *lineage)
    assert tags == {
        **{key: JUDGED[key] for key in (*kept, "sands.shuffled_labels")},
        "sands.train_cutoff": "2026-10-08T00:00:00+00:00",
        "sands.refit_of": "4",
    }
    assert not {"sands.gate", "sands.eval.ndcg_at_10", "sands.model_sha256"} & set(tags)


def test_the_refit_repeats_the_judged_recipe_with_its_trees_fixed():
    recipe = replace(
        RankerParams(trees=40, threads=2),
        half_life_days=3.0,
        excluded_features=TRENDING_INPUTS,
        early_stopping_rounds=5,
        validation_positives=1,
    )
    judged = train_ranker(planted_examples(), None, recipe)
    # What the registry gives back: the spec's params through JSON (tuples become lists).
    stored = RankerModel(
        booster=judged.booster,
        spec=replace(judged.spec, params=json.loads(json.dumps(judged.spec.params))),
    )
    params = refit_params(stored)
    trees = judged.booster.num_boosted_rounds()
    assert 0 < trees < 40 and (params.trees, params.early_stopping_rounds) == (trees, None)
    assert (params.half_life_days, params.excluded_features) == (3.0, TRENDING_INPUTS)
    # The same rows and recipe give the judged model's bytes: nothing else changes in a refit.
    again = train_ranker(planted_examples(), None, params)
    assert again.model_bytes() == judged.model_bytes()


def test_the_refit_keeps_the_judged_trees_a_round_across_the_forest_budget():
    examples = planted_examples()
    judged = train_ranker(examples, None, RankerParams(trees=10, threads=2))
    assert judged.spec.params["parallel_trees"] == 3
    # A refit's extra day may hold more rows than the budget: it still grows three a round.
    params = refit_params(judged)
    assert (params.parallel_trees, params.forest_max_rows) == (3, None)
    # A model recorded before forests grew one tree a round, and its refit does too.
    recorded = {k: v for k, v in judged.spec.params.items() if k != "parallel_trees"}
    legacy = RankerModel(booster=judged.booster, spec=replace(judged.spec, params=recorded))
    assert refit_params(legacy).parallel_trees == 1
