"""MovieLens-100k converted as documented, and accepted by the contract but for its rules."""

from datetime import date

import pandas as pd
import pytest

from bench.movielens import GENRES, main, write_zone
from sands.ingest.bronze import ingest_day, ingest_reference
from sands.ingest.contract import ARTWORKS, USERS


def _grouplens(folder):
    """Three ratings by two users over two UTC days, in GroupLens' own layout."""
    folder.mkdir()
    # 1997-09-20 10:00 (5 stars), 1997-09-20 11:00 (3), 1997-09-21 09:00 (4).
    rows = ["1\t10\t5\t874749600", "1\t20\t3\t874753200", "2\t10\t4\t874832400"]
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|9|F|student|94043\n")
    flags = lambda *on: "|".join("1" if g in on else "0" for g in GENRES)  # noqa: E731
    (folder / "u.item").write_text(
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags('animation', 'comedy')}\n"
        f"20|Heat (1995)|01-Jan-1995||http://y|{flags('action', 'crime')}\n",
        encoding="latin-1",
    )


def test_each_rating_is_a_view_with_a_click_at_four_and_a_favourite_at_five(tmp_path):
    _grouplens(tmp_path / "ml-100k")
    landing, lake = tmp_path / "landing", str(tmp_path / "lake")
    assert write_zone(tmp_path / "ml-100k", landing) == 3 + 2 + 1
    first = pd.read_csv(landing / "interactions" / "1997-09-20" / "ratings.csv")
    assert sorted(first["event_type"]) == ["click", "favourite", "view", "view"]
    second = pd.read_csv(landing / "interactions" / "1997-09-21" / "ratings.csv")
    assert sorted(second["event_type"]) == ["click", "view"]
    assert set(second["user_id"]) == {"u2"} and set(second["artwork_id"]) == {"m10"}
    users = pd.read_parquet(landing / "users" / "users.parquet").set_index("user_id")
    assert str(users.loc["u2", "signup_ts"]) == "1997-09-21 09:00:00+00:00"  # first rating
    artworks = pd.read_parquet(landing / "artworks" / "artworks.parquet").set_index("artwork_id")
    assert artworks.loc["m20", "style"] == "action"
    assert list(artworks.loc["m10", "tags"]) == ["animation", "comedy"]
    # The contract takes it all but the nine-year-old's profile, with the rule that says why.
    report = ingest_reference(USERS, str(landing), lake)
    assert (report.rows_accepted, report.rows_rejected) == (1, 1)
    assert report.reason_counts == {"age:in_range": 1}
    assert ingest_reference(ARTWORKS, str(landing), lake).rows_rejected == 0
    for day in ("1997-09-20", "1997-09-21"):
        assert ingest_day(str(landing), lake, date.fromisoformat(day)).rows_rejected == 0


def test_a_folder_without_the_data_is_one_line_and_a_failed_exit(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "nothing"), str(tmp_path / "landing")])
    assert str(stopped.value).startswith("error: ") and "u.data" in str(stopped.value)
    assert not (tmp_path / "landing").exists()


def test_a_click_log_and_a_view_log_stop_the_funnel_at_their_step(tmp_path):
    _grouplens(tmp_path / "ml-100k")
    assert write_zone(tmp_path / "ml-100k", tmp_path / "clicks", up_to="click") == 3 + 2
    assert write_zone(tmp_path / "ml-100k", tmp_path / "views", up_to="view") == 3
    first = pd.read_csv(tmp_path / "clicks" / "interactions" / "1997-09-20" / "ratings.csv")
    assert sorted(first["event_type"]) == ["click", "view", "view"]
    second = pd.read_csv(tmp_path / "views" / "interactions" / "1997-09-21" / "ratings.csv")
    assert list(second["event_type"]) == ["view"]
