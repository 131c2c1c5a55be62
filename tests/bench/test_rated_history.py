"""The ratings-shaped history: a landing zone every row of which the contract accepts."""

from datetime import date

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
