"""Serving scores a user's candidates exactly as training saw such rows, the pair input too."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sands.features.engagement import ENGAGED_INPUT
from sands.models.ranking import RankerParams, train_ranker
from sands.serving.snapshot import ArmModel, Catalogue
from tests.builders.models import one_row_per, planted_examples


def test_a_users_events_on_an_artwork_reach_its_served_score():
    examples = planted_examples(users=40, artworks=12, days=4)
    model = train_ranker(examples, None, RankerParams(trees=30, threads=1))
    works = one_row_per(examples, "artwork_id", "artwork_")
    user = one_row_per(examples, "user_id", "user_").slice(0, 1)
    # Feature vectors are stored unprefixed, keyed by their id.
    stored = [c if c == "artwork_id" else c.removeprefix("artwork_") for c in works.column_names]
    catalogue = Catalogue.from_vectors(works.rename_columns(stored))
    vector = {c.removeprefix("user_"): v[0] for c, v in user.to_pydict().items()}
    arm = ArmModel.of(1, model)
    rows = np.arange(len(catalogue.ids))
    engaged = {catalogue.ids[0]: 3.0, catalogue.ids[5]: 1.0}

    served = arm.scores(vector, catalogue, rows, engaged)

    crossed = user.take(np.zeros(len(rows), np.int64))
    for name in works.column_names:
        crossed = crossed.append_column(name, works[name])
    counts = [engaged.get(a, 0.0) for a in catalogue.ids]
    expected = model.scores(crossed.append_column(ENGAGED_INPUT, pa.array(counts)))
    np.testing.assert_allclose(served, expected, rtol=1e-6)
    # A history published before the pair input leaves it unknown, which scores otherwise.
    assert not np.allclose(arm.scores(vector, catalogue, rows, None), expected)
