"""The ratings-shaped history: a landing zone every row of which the contract accepts."""

from datetime import date

import pyarrow.parquet as pq

from bench.rated_history import write_history
from sands.ingest.bronze import ingest_day, ingest_reference
from sands.ingest.contract import ARTWORKS, USERS


def test_every_row_of_the_rated_history_passes_the_contract(tmp_path):
    landing, lake = tmp_path / "landing", str(tmp_path / "lake")
    written = write_history(landing, days=3, seed=0)
    days = sorted(p.name for p in (landing / "interactions").iterdir())
    assert days and days[0].startswith("1997-09-2")  # old dates, as the public history's
    for entity in (USERS, ARTWORKS):
        report = ingest_reference(entity, str(landing), lake)
        assert report.rows_rejected == 0 and report.rows_accepted > 900, entity.name
    accepted = 0
    for day in days:
        report = ingest_day(str(landing), lake, date.fromisoformat(day))
        assert report.rows_rejected == 0, report.reason_counts
        accepted += report.rows_accepted
    assert accepted == written


def test_a_sparse_history_has_the_catalogue_and_users_asked_for_and_few_events(tmp_path):
    landing = tmp_path / "landing"
    written = write_history(landing, days=10, seed=0, items=5000, users=2000, events_per_day=30)

    assert pq.read_table(landing / "artworks" / "artworks.parquet").num_rows == 5000
    assert pq.read_table(landing / "users" / "users.parquet").num_rows == 2000
    assert 0 < written < 10 * 100  # about 30 a day, on the days that have any
