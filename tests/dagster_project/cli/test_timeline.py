from io import StringIO

from rich.console import Console

from dagster_project.cli.timeline import COLUMNS, Timeline, fitting
from dagster_project.scenario import DayRecord


def _timeline() -> Timeline:
    timeline = Timeline("replay")
    timeline.add(
        DayRecord(
            day="1997-10-18",
            runs=3,
            triggers=["new training data", "champion missing, below objective or stale"],
            gate=False,
            served_policy="popularity",
            served_ndcg=0.2264,
            popularity_ndcg=0.2264,
            judged_users=4,
            positives=63,
            seconds=7.8,
        )
    )
    timeline.add(DayRecord(day="1997-10-19", runs=2, champion=3, serving=3, frozen=3))
    return timeline


def _printed(timeline: Timeline, width: int) -> tuple[str, list[str]]:
    table, left_out = timeline.render(width)
    out = StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue(), left_out


def test_a_narrow_terminal_keeps_what_served_and_its_scores_whole_and_names_the_rest():
    text, left_out = _printed(_timeline(), 80)
    # Whole cells, not `19…`: the day, the policy, its score, popularity's and the users.
    for cell in ("1997-10-18", "popularity", "0.2264", "4 (63)", "no labels"):
        assert cell in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert left_out and "runs" in left_out and "day" not in left_out
    assert left_out == [c for c in COLUMNS if c in left_out]  # in table order


def test_a_wide_terminal_shows_every_column():
    text, left_out = _printed(_timeline(), 250)
    assert left_out == []
    assert "data, quality" in text and "reject" in text and "v3" in text


def test_fitting_keeps_the_first_column_even_when_nothing_fits():
    widths = dict.fromkeys(COLUMNS, 10)
    assert fitting(widths, 5) == ["day"]
    # 1 border + 13 each: three columns in 40.
    assert fitting(widths, 40) == ["day", "served by", "NDCG@10"]
