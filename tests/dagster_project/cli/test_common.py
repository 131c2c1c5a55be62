from collections import Counter
from datetime import date

from dagster_project.cli.common import RepeatedNotes

EXTRA = "columns not in the contract were not written to bronze: 'rating'"


def test_a_note_repeated_day_after_day_is_said_once_then_counted():
    said: list[str] = []
    notes = RepeatedNotes(said.append)
    for day in ("1997-09-20", "1997-09-21", "1997-09-23"):
        notes(f"raw_interactions {day}: {EXTRA}")
    notes("raw_interactions 1997-09-21: 2 of 9 rows rejected by the contract (age:in_range 2)")
    notes("users: 3 of 943 rows rejected by the contract (age:in_range 3)")
    notes("users: 3 of 943 rows rejected by the contract (age:in_range 3)")  # read again: once
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


class _Landed:
    """A landing zone that holds these events (its first day with a conversion: 1997-09-21)."""

    def __init__(self, *types: str) -> None:
        self.counts = Counter(types)

    def event_counts(self, days: list) -> tuple[date | None, Counter]:
        converted = {"favourite", "purchase"} & set(self.counts)
        return (date(1997, 9, 21) if converted else None), self.counts


def test_conversions_landed_in_another_case_are_named_when_views_become_the_labels(
    capsys, monkeypatch
):
    from dagster_project.cli.demo import _positives_by_what_landed

    monkeypatch.delenv("SANDS_POSITIVE_EVENTS", raising=False)
    chosen = _positives_by_what_landed(_Landed("view", "Click ", "FAVOURITE"), [])
    assert chosen == {"SANDS_POSITIVE_EVENTS": "view,click,favourite,purchase"}
    told = capsys.readouterr().out
    assert "'Click ', 'FAVOURITE' landed too, which the contract rejects" in told
    assert _positives_by_what_landed(_Landed("view", "purchase"), []) == {}


def test_a_history_with_conversions_is_told_what_its_positives_are_and_how_rare(
    capsys, monkeypatch
):
    from dagster_project.cli.demo import _positives_by_what_landed

    monkeypatch.delenv("SANDS_POSITIVE_EVENTS", raising=False)
    sessions = _Landed(*["click"] * 47, "purchase", "purchase", "view")
    assert _positives_by_what_landed(sessions, []) == {}
    told = capsys.readouterr().out
    assert "are favourite and purchase events: 2 of 50 events (4.0%) on 1997-09-21" in told
    assert "view and click events are inputs only" in told
    monkeypatch.setenv("SANDS_POSITIVE_EVENTS", "click,purchase")
    assert _positives_by_what_landed(sessions, []) == {}
    assert capsys.readouterr().out == ""
