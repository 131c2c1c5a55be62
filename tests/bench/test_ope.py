"""The OPE benchmark's gate table: what the gate's criterion held back and what it left unjudged."""

from datetime import date

from bench.ope import GATE, Judged, gate_table
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


def test_supported_days_are_held_back_by_doubly_robust_and_the_others_show_both_click_models():
    rows = [
        # worse beyond the interval: held back (pbm agrees)
        day(1, 0.9, {GATE: -0.02, "pbm": -0.02, "dr, champion's click model": -0.012}, -0.030),
        # within it: passes, though pbm reads it worse beyond its interval
        day(2, 0.9, {GATE: -0.004, "pbm": -0.03, "dr, champion's click model": -0.012}, 0.001),
        # the log cannot see it: the gate does not judge
        day(3, 0.4, {GATE: 0.004, "pbm": -0.03, "dr, champion's click model": -0.012}, -0.010),
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
        "-0.0250 (0% cover, 2 worse, 1 of them not)",  # pbm where the gate judged
        "-0.0100",
        "+0.0040 (0% cover, 0 worse, 0 of them not)",
        "-0.0120 (100% cover, 1 worse, 0 of them not)",
    ]
