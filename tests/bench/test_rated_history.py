"""The ratings-shaped history: a landing zone every row of which the contract accepts."""

from datetime import date

import pandas as pd
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


def test_a_sessions_history_rates_each_film_once_and_converts_as_documented(tmp_path):
    landing, lake = tmp_path / "landing", str(tmp_path / "lake")
    written = write_history(landing, days=6, seed=0, users=200, events_per_day=150, sessions=True)
    events = pd.concat(pd.read_csv(f) for f in sorted(landing.glob("interactions/*/*.csv")))
    assert len(events) == written and events["event_id"].is_unique
    # One rating per (user, film): its view, with a click and a favourite at the same time.
    views = events[events["event_type"] == "view"]
    assert not views.duplicated(["user_id", "artwork_id"]).any()
    for kind in ("click", "favourite"):
        ratings = events[events["event_type"] == kind].merge(
            views, on=["user_id", "artwork_id"], suffixes=("", "_view")
        )
        assert 0 < len(ratings) == (events["event_type"] == kind).sum()
        assert (ratings["event_ts"] == ratings["event_ts_view"]).all()
    favourites = set(events.loc[events["event_type"] == "favourite", "event_id"].str[:-10])
    clicks = set(events.loc[events["event_type"] == "click", "event_id"].str[:-6])
    assert favourites < clicks  # a 5 is also a 4 and above
    # Most of a user's ratings come on their first day.
    first = views.groupby("user_id")["event_ts"].transform(lambda ts: ts.str[:10].min())
    assert (views["event_ts"].str[:10] == first).mean() > 0.6
    for day in sorted(p.name for p in (landing / "interactions").iterdir()):
        report = ingest_day(str(landing), lake, date.fromisoformat(day))
        assert report.rows_rejected == 0, report.reason_counts


def test_a_sparse_history_has_the_catalogue_and_users_asked_for_and_few_events(tmp_path):
    landing = tmp_path / "landing"
    written = write_history(landing, days=10, seed=0, items=5000, users=2000, events_per_day=30)

    assert pq.read_table(landing / "artworks" / "artworks.parquet").num_rows == 5000
    assert pq.read_table(landing / "users" / "users.parquet").num_rows == 2000
    assert 0 < written < 10 * 100  # about 30 a day, on the days that have any
