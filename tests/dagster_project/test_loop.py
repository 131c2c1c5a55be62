"""The in-process loop's history load: feature runs split where nothing landed for weeks."""

from dagster_project.loop import spans


def test_history_is_built_in_one_run_unless_weeks_pass_without_a_landing():
    days = ["1997-09-20", "1997-09-21", "1997-09-25", "1997-10-23"]
    # Gaps of 3 and 27 empty days are jumped over inside one run.
    assert spans(days) == [("1997-09-20", "1997-10-23")]
    # A stray timestamp decades early is its own run, not 15,000 partitions in one.
    assert spans(["1956-05-31", *days]) == [
        ("1956-05-31", "1956-05-31"),
        ("1997-09-20", "1997-10-23"),
    ]
    assert spans(["1997-10-23", "1997-09-20"], max_gap_days=3) == [
        ("1997-09-20", "1997-09-20"),
        ("1997-10-23", "1997-10-23"),
    ]
    assert spans([]) == []
