"""Segments: clear clusters are found, stored as numbers and applied to any row."""

import numpy as np
import pytest

from sands.models.segments import (
    SegmentModel,
    assignments,
    fit_segments,
    profile_markdown,
    segment_inputs,
    segment_profile,
)
from tests.builders.models import (
    USER_DEFAULTS,
    artwork_vector,
    joined_rows,
    user_vector,
    vectors_table,
)


def _users():
    light = [user_vector(f"l{i}", n_view_28d=2 + i, spend_28d=0.0, gender="male") for i in range(6)]
    heavy = [
        user_vector(
            f"h{i}", n_view_28d=400 + i, spend_28d=2000.0, n_purchase_28d=9, gender="female"
        )
        for i in range(4)
    ]
    return vectors_table(light + heavy, USER_DEFAULTS)


def test_two_obvious_groups_become_two_segments_largest_first():
    users = _users()
    model = fit_segments(users, k=2)
    segments = model.assign(users)
    assert segments.tolist() == [0] * 6 + [1] * 4
    assert model.categories == ["female", "male"]


def test_no_user_rows_fail_in_one_line_that_points_at_the_users_feed():
    with pytest.raises(ValueError, match=r"no user profile is in bronze.*users feed"):
        fit_segments(_users().slice(0, 0), k=2)


def test_the_model_round_trips_through_json_and_applies_to_prefixed_rows():
    model = fit_segments(_users(), k=2)
    again = SegmentModel.from_json(model.to_json())
    rows = joined_rows(
        [
            (
                user_vector(
                    "new", n_view_28d=390, spend_28d=1800.0, n_purchase_28d=8, gender="female"
                ),
                artwork_vector("a"),
            )
        ]
    )
    assert again.assign(rows, prefix="user_").tolist() == [1]


def test_missing_values_and_unseen_categories_still_get_a_segment():
    model = fit_segments(_users(), k=2)
    odd = vectors_table(
        [user_vector("x", age=None, gender=None), user_vector("y", gender="other")], USER_DEFAULTS
    )
    assert len(model.assign(odd)) == 2


def test_fitting_is_deterministic_and_k_is_capped_by_distinct_users():
    users = _users()
    assert fit_segments(users, 3, seed=0) == fit_segments(users, 3, seed=0)
    twins = vectors_table([user_vector("a"), user_vector("b")], USER_DEFAULTS)
    assert fit_segments(twins, k=5).k == 1
    table = assignments(users, fit_segments(users, 2))
    assert table.column_names == ["user_id", "segment"] and table.num_rows == 10
    assert np.unique(table["segment"].to_numpy()).tolist() == [0, 1]


def test_the_profile_reads_as_a_markdown_table():
    users = _users()
    text = profile_markdown(segment_profile(users, fit_segments(users, 2).assign(users)))
    assert text.splitlines()[2].startswith("| 0 | 6 | ")
    assert text.splitlines()[3].startswith("| 1 | 4 | ")


def test_assignment_is_the_nearest_centroid_by_the_same_sums_as_the_broadcast_form():
    users = _users()
    model = fit_segments(users, k=3)
    points = model._standardised(segment_inputs(users, model.categories))
    centroids = np.asarray(model.centroids)
    broadcast = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(model.assign(users), broadcast.argmin(axis=1))
    assert len(set(model.assign(users).tolist())) == 3


def test_a_column_no_user_has_fits_quietly_as_zero(recwarn):
    # The contract allows every age to be unknown; that is no reason to warn on every fit.
    users = vectors_table(
        [user_vector(f"u{i}", age=None, n_view_28d=i) for i in range(5)], USER_DEFAULTS
    )
    model = fit_segments(users, k=2)
    assert len(model.assign(users)) == 5
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
