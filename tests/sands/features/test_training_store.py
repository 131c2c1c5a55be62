"""How many landing days a training set labels: enough positives on sparse histories."""

from datetime import date

import pyarrow as pa
from deltalake import write_deltalake

from sands.features.training_store import days_holding, newest_landing_day
from sands.ingest.contract import LANDING_DAY_COLUMN
from sands.lake import delta


def test_dense_days_keep_the_minimum_window():
    assert days_holding([500, 500, 500, 500], min_days=2, min_positives=300, max_days=28) == 2


def test_sparse_days_reach_back_until_the_positives_are_there():
    # Newest first: 3 + 0 + 4 + 5 = 12 >= 10 after four days.
    assert days_holding([3, 0, 4, 5, 9, 9], min_days=1, min_positives=10, max_days=28) == 4


def test_the_reach_is_capped_and_never_below_one_day():
    assert days_holding([1, 1, 1], min_days=1, min_positives=100, max_days=2) == 2
    assert days_holding([1, 1, 1], min_days=1, min_positives=100, max_days=28) == 3
    assert days_holding([], min_days=1, min_positives=10, max_days=28) == 1
    assert days_holding([0, 0], min_days=7, min_positives=0, max_days=28) == 7


def test_a_window_also_reaches_back_until_enough_users_hold_the_positives():
    # A ratings history: each user-day holds many positives, so 300 positives can be 20 users.
    positives, users = [200, 150, 120, 90], [12, 10, 9, 6]
    assert days_holding(positives, min_days=1, min_positives=300, max_days=7) == 2
    assert days_holding(positives, 1, 300, 7, users, min_users=30) == 3
    assert days_holding(positives, 1, 300, 7, users, min_users=100) == 4
    assert days_holding(positives, 1, 300, 3, users, min_users=100) == 3


def _day_rows(day: date, n: int) -> pa.Table:
    return pa.table(
        {
            "event_id": pa.array([f"{day}-{i}" for i in range(n)], pa.string()),
            LANDING_DAY_COLUMN: pa.array([day] * n, pa.date32()),
        }
    )


def test_the_newest_landing_day_comes_from_the_log_and_an_emptied_day_does_not_count(tmp_path):
    uri = str(tmp_path / "interactions")
    days = [date(2026, 9, 1), date(2026, 9, 3), date(2026, 9, 2)]
    for day in days:
        delta.replace_partition(uri, _day_rows(day, 3), LANDING_DAY_COLUMN, day)
    assert newest_landing_day(delta.open_table(uri)) == date(2026, 9, 3)
    # The newest day re-landed with every row quarantined: the day before is the newest.
    delta.replace_partition(uri, _day_rows(date(2026, 9, 3), 0), LANDING_DAY_COLUMN, days[1])
    assert newest_landing_day(delta.open_table(uri)) == date(2026, 9, 2)
    # Not partitioned by day: read from the column, the same answer.
    flat = str(tmp_path / "flat")
    write_deltalake(flat, pa.concat_tables([_day_rows(d, 2) for d in days]))
    assert newest_landing_day(delta.open_table(flat)) == date(2026, 9, 3)
    empty = str(tmp_path / "empty")
    write_deltalake(empty, _day_rows(date(2026, 9, 1), 0), partition_by=[LANDING_DAY_COLUMN])
    assert newest_landing_day(delta.open_table(empty)) is None
