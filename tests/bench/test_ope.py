"""The OPE benchmark's gate table: what the gate's criterion held back, by which click model."""

import os
from datetime import date

import numpy as np
import pytest

from bench.ope import (
    BY_CHAMPION,
    GATE,
    OBP_PYTHON,
    Judged,
    gate_table,
    pair_table,
    peer_estimates,
)
from sands.evaluation.off_policy import Estimate, LoggedLists, ips, snips


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


def test_the_gate_reads_its_own_click_model_where_the_log_sees_and_the_champion_s_elsewhere():
    rows = [
        # worse beyond the interval: held back (pbm agrees)
        day(1, 0.9, {GATE: -0.02, "pbm": -0.02, BY_CHAMPION: -0.012}, -0.030),
        # within it: passes, though pbm reads it worse beyond its interval
        day(2, 0.9, {GATE: -0.004, "pbm": -0.03, BY_CHAMPION: -0.012}, 0.001),
        # the log cannot see it: read by the champion's click model, worse beyond its interval
        day(3, 0.4, {GATE: 0.004, "pbm": -0.03, BY_CHAMPION: -0.012}, -0.010),
    ]
    table = gate_table(rows)
    cells = [next(iter(column.cells)) for column in table.columns]
    assert cells == [
        "worse model",
        "3 (2)",
        "-0.0130",
        "-0.0120 (67% cover, 2 worse, 0 of them not)",  # -0.02, -0.004, -0.012
        "2 (2)",
        "0",
        "-0.0250 (0% cover, 2 worse, 1 of them not)",  # pbm on the supported days
        "-0.0100",
        "+0.0040 (0% cover, 0 worse, 0 of them not)",
        "-0.0120 (100% cover, 1 worse, 0 of them not)",
    ]


def online(n: int, policy: str, realised: float, estimate: float) -> Judged:
    """A policy-day whose online day has a standard error of 0.001."""
    return Judged(
        "steady", date(2026, 9, n), policy, realised, realised, {"pbm": gap(estimate)}, 0.001
    )


def test_pairs_count_only_days_the_online_day_separates_and_whether_the_estimate_agrees():
    rows = [
        online(1, "champion", 0.050, 0.050),
        online(1, "worse", 0.040, 0.045),  # 0.010 apart: separated, ordered
        online(2, "champion", 0.050, 0.050),
        online(2, "worse", 0.049, 0.060),  # 0.001 apart, within 1.96 x 0.0014: not counted
        online(3, "champion", 0.050, 0.040),
        online(3, "worse", 0.030, 0.045),  # separated, ordered the wrong way
    ]
    table = pair_table(rows, "pbm")
    assert [list(column.cells) for column in table.columns] == [
        ["champion / worse"],
        ["2"],
        ["50%"],
    ]


OBP = os.environ.get("SANDS_OBP_PYTHON") or (str(OBP_PYTHON) if OBP_PYTHON.exists() else None)


@pytest.mark.skipif(
    OBP is None,
    reason="Open Bandit Pipeline needs its own Python 3.9 environment with torch 1.13 (3.7 GB): "
    "`make obp-venv`, or SANDS_OBP_PYTHON",
)
def test_open_bandit_pipeline_reads_a_hand_computed_log_as_we_do() -> None:
    # Three lists of two; the target keeps l0 whole, l1's first slot and l2's second.
    clicks = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    propensity = np.array([[0.9, 0.1], [0.9, 0.2], [0.9, 0.1]])
    shown = np.ones((3, 2), bool)
    logged = LoggedLists(clicks, propensity, propensity, shown)
    where = np.array([[1, 2], [1, 0], [0, 2]])
    peer = peer_estimates(OBP, logged, {"target": where})["target"]
    # Item-position IPS: l0's click at slot 1 (1/0.9) and l2's at slot 2 (1/0.1), over 3 lists.
    assert peer["obp iips"].value == pytest.approx((1 / 0.9 + 1 / 0.1) / 3)
    assert peer["obp iips"].value == pytest.approx(ips(logged, where).value)
    # Self-normalised per slot: each slot's weighted clicks over its mean weight, 0.5 + 0.5.
    assert peer["obp sniips"].value == pytest.approx(1.0)
    assert peer["obp sniips"].value == pytest.approx(snips(logged, where).value)
    assert peer["obp iips"].low <= peer["obp iips"].value <= peer["obp iips"].high
