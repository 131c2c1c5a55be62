"""The OPE benchmark's gate table: what the gate's estimator held back and what it left unjudged."""

from datetime import date

from bench.ope import Judged, gate_table
from sands.evaluation.off_policy import Estimate


def gap(value: float, half: float = 0.005, name: str = "pbm difference") -> Estimate:
    return Estimate(name, value, value - half, value + half, 1000, 900.0, 0)


def day(n: int, support: float, gaps: dict[str, float], truth_gap: float) -> Judged:
    return Judged(
        "steady",
        date(2026, 9, n),
        "worse model",
        0.04,
        0.04,
        {},
        support=support,
        gaps={name: gap(v) for name, v in gaps.items()},
        truth_gap=truth_gap,
    )


def test_supported_days_are_held_back_by_pbm_and_the_others_show_both_click_models() -> None:
    dr = {"dr, own click model": 0.004, "dr, champion's click model": -0.012}
    rows = [
        day(1, 0.9, {"pbm": -0.02, **dr}, -0.030),  # worse beyond the interval: held back
        day(2, 0.9, {"pbm": -0.004, **dr}, 0.001),  # within it: passes
        day(3, 0.4, {"pbm": -0.03, **dr}, -0.010),  # the log cannot see it: pbm does not judge
    ]
    table = gate_table(rows)
    cells = [next(iter(column.cells)) for column in table.columns]
    assert cells == [
        "worse model",
        "3 (2)",
        "-0.0130",
        "-0.0120 (50% cover, 1 worse, 0 of them not)",
        "1 (1)",
        "0",
        "+0.0040 (50% cover, 0 worse, 0 of them not)",  # doubly robust where pbm judged
        "-0.0100",
        "+0.0040 (0% cover, 0 worse, 0 of them not)",
        "-0.0120 (100% cover, 1 worse, 0 of them not)",
    ]
