from dagster_project.cli.common import RepeatedNotes

EXTRA = "columns not in the contract were not written to bronze: 'rating'"


def test_a_note_repeated_day_after_day_is_said_once_then_counted():
    said: list[str] = []
    notes = RepeatedNotes(said.append)
    for day in ("1997-09-20", "1997-09-21", "1997-09-23"):
        notes(f"raw_interactions {day}: {EXTRA}")
    notes("raw_interactions 1997-09-21: 2 of 9 rows rejected by the contract (age:in_range 2)")
    notes("users: 3 of 943 rows rejected by the contract (age:in_range 3)")
    notes("raw_users 1997-09-20: " + EXTRA)  # another feed: its own note
    assert said == [
        f"raw_interactions 1997-09-20: {EXTRA}",
        "raw_interactions 1997-09-21: 2 of 9 rows rejected by the contract (age:in_range 2)",
        "users: 3 of 943 rows rejected by the contract (age:in_range 3)",
        f"raw_users 1997-09-20: {EXTRA}",
    ]
    notes.close()
    assert said[4:] == [
        f"raw_interactions: the same on 2 more days (1997-09-21..1997-09-23): {EXTRA}"
    ]
    notes.close()  # nothing held back twice
    assert len(said) == 5


def test_one_more_day_is_named():
    said: list[str] = []
    notes = RepeatedNotes(said.append)
    notes(f"raw_interactions 1997-09-20: {EXTRA}")
    notes(f"raw_interactions 1997-09-22: {EXTRA}")
    notes.close()
    assert said[-1] == f"raw_interactions: the same on 1 more day (1997-09-22): {EXTRA}"
