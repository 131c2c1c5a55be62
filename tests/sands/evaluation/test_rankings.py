"""Top-k lists stored in the lake under a digest of the model and the evaluation setup."""

from dataclasses import replace

from sands.evaluation.offline import RankerRecommender, top_k
from sands.evaluation.rankings import cached_top_k, ranking_key, rankings_uri
from sands.lake import delta
from sands.models.ranking import RankerModel, RankerParams, train_ranker
from tests.builders.models import planted_examples
from tests.sands.evaluation.test_offline import setup


def ranker(seed: int) -> RankerRecommender:
    model = train_ranker(planted_examples(), None, RankerParams(trees=10, threads=1, seed=seed))
    return RankerRecommender("ranker", model)


def test_a_ranking_is_computed_once_and_read_back_unchanged(tmp_path):
    lake, s, model = str(tmp_path), setup(k=3), ranker(0)
    first = cached_top_k(model, s, lake)
    assert first == top_k(model, s)
    version = delta.current_version(rankings_uri(lake))
    assert cached_top_k(model, s, lake) == first
    assert delta.current_version(rankings_uri(lake)) == version  # read, not written again


def test_the_key_changes_with_the_model_and_with_what_is_ranked():
    s = setup(k=3)
    model, other = ranker(0).model.model_bytes(), ranker(1).model.model_bytes()
    assert ranking_key(model, s) == ranking_key(model, setup(k=3))
    assert ranking_key(other, s) != ranking_key(model, s)
    assert ranking_key(model, replace(s, exclude={})) != ranking_key(model, s)
    assert ranking_key(model, replace(s, catalogue=s.catalogue.slice(1))) != ranking_key(model, s)
    assert ranking_key(model, setup(k=2)) != ranking_key(model, s)


def test_the_same_trees_under_another_prior_are_another_model(tmp_path):
    lake, s, first = str(tmp_path), setup(k=3), ranker(0)
    spec = first.model.spec
    # Only a hand-edited spec does this (another prior trains other trees), but a key must not
    # rely on it.
    reweighted = RankerModel(
        first.model.booster, replace(spec, params={**spec.params, "popularity_prior": 5.0})
    )
    assert reweighted.model_bytes() == first.model.model_bytes()
    assert ranking_key(reweighted.scoring_bytes(), s) != ranking_key(first.model.scoring_bytes(), s)
    cached_top_k(first, s, lake)
    version = delta.current_version(rankings_uri(lake))
    # Not read back from the first model's stored lists: ranked and stored under its own key.
    again = cached_top_k(RankerRecommender("ranker", reweighted), s, lake)
    assert again == top_k(RankerRecommender("ranker", reweighted), s)
    assert delta.current_version(rankings_uri(lake)) == version + 1
