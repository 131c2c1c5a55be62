"""Monitoring's day scores: the evidence behind them."""

from datetime import UTC, datetime

import pyarrow as pa

from sands.evaluation.offline import EvaluationSpec, evaluation_setup
from sands.monitoring.champion import users_without_history
from tests.sands.evaluation.test_offline import ARTWORK_LOG, EXAMPLES, SPLIT, USER_LOG


def test_judged_users_without_an_event_in_the_window_before_are_counted():
    # u1 and u2 have positives after the split; u1 viewed a1 three days before it, u2 only
    # forty days before (outside the 28-day window).
    events = pa.table(
        {
            "user_id": ["u1", "u2"],
            "artwork_id": ["a1", "a3"],
            "event_ts": pa.array(
                [datetime(2026, 9, 2, 9, tzinfo=UTC), datetime(2026, 7, 27, 9, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    setup = evaluation_setup(
        EXAMPLES, USER_LOG, ARTWORK_LOG, None, SPLIT, EvaluationSpec(), events=events
    )
    assert set(setup.relevant) == {"u1", "u2"}
    assert users_without_history(setup) == 1
    unknown = evaluation_setup(EXAMPLES, USER_LOG, ARTWORK_LOG, None, SPLIT, EvaluationSpec())
    assert users_without_history(unknown) is None  # no events given: not counted as none
