"""The Spark trainer's estimator arguments: the same recipe as the local trainer."""

from dataclasses import replace

from sands.engines.spark_training import BASE_MARGIN, estimator_params
from sands.models.ranking import PRIOR_INPUT, TRENDING_INPUTS, RankerParams, feature_names


def test_the_popularity_prior_trains_as_a_base_margin_column_when_its_input_is_there():
    names = feature_names(0)
    assert PRIOR_INPUT in names
    assert estimator_params(RankerParams(), names)["base_margin_col"] == BASE_MARGIN
    untrended = [n for n in names if n not in TRENDING_INPUTS]
    assert "base_margin_col" not in estimator_params(RankerParams(), untrended)
    none = replace(RankerParams(), popularity_prior=0.0)
    assert "base_margin_col" not in estimator_params(none, names)
