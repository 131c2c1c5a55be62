"""Monitoring logic: which columns are compared, the recent window, drift verdicts, objectives."""

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sands.evaluation.metrics import paired_gain
from sands.monitoring.champion import evidence_days
from sands.monitoring.verdicts import (
    Objective,
    QualityVerdict,
    compare,
    data_age_days,
    feature_columns,
    recent_window,
    render_drift_html,
)
from tests.builders.models import planted_examples


def test_feature_columns_are_the_joined_features_without_bookkeeping():
    examples = planted_examples(users=3, days=1).append_column(
        "user_feature_ts", pa.array([datetime(2026, 9, 1, tzinfo=UTC)] * 18)
    )
    groups = feature_columns(examples.schema)
    names = {n for members in groups.values() for n, _ in members}
    assert "user_feature_ts" not in names and "user_id" not in names and "label" not in names
    assert ("user_top_style", False) in groups["user"]
    assert ("artwork_price", True) in groups["artwork"]


def test_recent_window_keeps_the_last_label_days():
    examples = planted_examples(users=4, days=5)
    window = recent_window(examples, 2)
    days = {ts.date() for ts in window["label_ts"].to_pylist()}
    assert days == {date(2026, 9, 4), date(2026, 9, 5)}
    # Before a cutoff: the last 2 label days of the rows before it, nothing from or after it.
    early = recent_window(examples, 2, before=datetime(2026, 9, 4, tzinfo=UTC))
    days = {ts.date() for ts in early["label_ts"].to_pylist()}
    assert days == {date(2026, 9, 2), date(2026, 9, 3)}


def test_a_shifted_world_drifts_and_the_same_world_does_not():
    reference = planted_examples(users=200, days=4, seed=0)
    same = planted_examples(users=200, days=2, seed=1)
    scores = np.random.default_rng(0).normal(size=reference.num_rows)
    steady = compare(reference, same, scores, np.random.default_rng(1).normal(size=same.num_rows))
    assert not steady.drifted and not steady.features.drifted
    # Every artwork gets pricier and more viewed, every user's taste moves: a different world.
    shifted = same
    for column, factor in (("artwork_price", 3.0), ("artwork_n_view_7d", 4.0)):
        values = np.asarray(shifted[column].to_numpy(), dtype=float) * factor
        shifted = shifted.set_column(
            shifted.schema.get_field_index(column), column, pa.array(values, pa.float64())
        )
    moved = compare(reference, shifted, scores, scores[: same.num_rows] + 2.0)
    drifted = {c.column for c in moved.features.columns if c.drifted}
    assert {"artwork_price", "artwork_n_view_7d"} <= drifted
    assert moved.prediction.drifted and moved.verdict(prediction_counts=True)
    # Scores alone moving is reported, and counts only when configured to.
    only_scores = compare(reference, same, scores, scores[: same.num_rows] + 2.0)
    assert only_scores.prediction.drifted and not only_scores.drifted
    assert only_scores.verdict(prediction_counts=True)
    assert not only_scores.verdict(prediction_counts=False)
    # The check's one-line reason names what moved, and how many rows were compared.
    assert steady.reason(True).startswith("no drift beyond the thresholds")
    assert moved.reason(True).startswith("drift in predictions; columns moved: ")
    assert "artwork_n_view_7d, artwork_price" in moved.reason(True)
    assert moved.reason(True).endswith(
        f"({same.num_rows:,} current rows vs {reference.num_rows:,} reference rows)"
    )
    assert only_scores.reason(True).startswith("drift in predictions")
    assert only_scores.reason(False).startswith("no drift beyond")
    html = render_drift_html("t", moved, reference, shifted, scores, scores[: same.num_rows] + 2)
    assert html.count("<svg") >= 3 and "artwork_price" in html
    assert "| artwork_price |" in moved.markdown()


def test_quality_verdict_against_objective_and_popularity():
    objective = Objective(min_ndcg=0.05, min_ratio_to_popularity=1.0, max_age_days=7)
    good = QualityVerdict("2026-09-14", 0.12, 0.08, 500, 3, objective)
    assert good.meets_objective and good.fresh and good.floor == 0.08
    assert not QualityVerdict("d", 0.07, 0.08, 500, 3, objective).meets_objective
    assert not QualityVerdict("d", 0.04, 0.01, 500, 3, objective).meets_objective
    assert not QualityVerdict("d", 0.2, 0.01, 500, 8, objective).fresh


def test_champion_age_is_counted_in_data_days():
    examples = planted_examples(users=2, days=5)  # labels 2026-09-01 .. 09-05
    assert data_age_days(datetime(2026, 9, 3, tzinfo=UTC), examples) == 2
    assert data_age_days(datetime(2026, 9, 9, tzinfo=UTC), examples) == 0


def test_entity_rows_keep_one_row_per_entity_and_feature_time():
    from datetime import UTC, datetime

    import pyarrow as pa

    from sands.monitoring.verdicts import entity_rows

    day1, day2 = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 2, tzinfo=UTC)
    rows = pa.table(
        {
            "user_id": ["a", "a", "b", "a"],
            "user_feature_ts": pa.array([day1, day1, day1, day2], pa.timestamp("us", tz="UTC")),
            "artwork_id": ["x", "y", "x", "x"],
            "n": [1, 2, 3, 4],
        }
    )
    assert entity_rows(rows, "user")["n"].to_pylist() == [1, 3, 4]
    assert entity_rows(rows, "artwork") is rows  # no artwork_feature_ts: left as it is


def test_a_change_of_taste_drifts_the_label_group_before_any_profile_moves():
    reference = planted_examples(users=200, days=4, seed=0)
    same = planted_examples(users=200, days=2, seed=1)
    scores = np.zeros(reference.num_rows)
    # The same users and catalogue, but every conversion is now of one style and one medium.
    positive = pc.equal(same["label"], 1)
    shifted = same
    for column in ("artwork_style", "artwork_medium"):
        moved = pc.if_else(positive, pa.scalar("glitch"), same[column])
        shifted = shifted.set_column(shifted.schema.get_field_index(column), column, moved)
    result = compare(reference, shifted, scores, np.zeros(same.num_rows))
    share, _, drifted = result.features.groups["label"]
    assert drifted and share == 2 / 3  # positives' style and medium; the positive rate holds
    assert not result.features.groups["user"][2]
    assert not compare(reference, same, scores, np.zeros(same.num_rows)).features.groups["label"][2]


def test_compare_judges_columns_by_the_rule_it_is_given():
    from sands.monitoring.drift import DriftRule

    reference = planted_examples(users=200, days=4, seed=0)
    same = planted_examples(users=200, days=2, seed=1)
    scores = np.zeros(reference.num_rows)
    calibrated = compare(reference, same, scores, np.zeros(same.num_rows))
    evidently = compare(
        reference, same, scores, np.zeros(same.num_rows), rule=DriftRule(calibrated=False)
    )
    methods = {c.method for c in calibrated.all_columns()}
    assert methods <= {"wasserstein", "jensenshannon", "empty"}
    assert all(c.threshold >= 0.1 for c in calibrated.all_columns() if c.method != "empty")
    # Evidently's verdicts carry no permutation p-value; calibrated ones always do.
    assert all(np.isnan(c.p_value) for c in evidently.all_columns())
    assert all(0 < c.p_value <= 1 for c in calibrated.all_columns() if c.method != "empty")
    again = compare(reference, same, scores, np.zeros(same.num_rows))
    assert again.markdown() == calibrated.markdown()


def test_the_guard_switches_on_a_lead_and_back_only_on_a_clear_champion_lead():
    objective = Objective(guard_margin=0.01, guard_confidence=0.9)
    users = [f"u{i}" for i in range(60)]

    def verdict(champion: list[float], popularity: list[float]) -> QualityVerdict:
        mine = dict(zip(users, champion, strict=True))
        theirs = dict(zip(users, popularity, strict=True))
        return QualityVerdict(
            "2026-09-14",
            float(np.mean(champion)),
            float(np.mean(popularity)),
            len(users),
            1,
            objective,
            positives=70,
            popularity_gain=paired_gain(theirs, mine, 0.9),
        )

    clearly = verdict([0.05] * 60, [0.20] * 60)
    assert clearly.popularity_should_serve and not clearly.champion_clearly_better
    assert "gain +0.1500" in clearly.guard_reason() and "60 users, 70 positives" in clearly.reason()
    # Ahead on average, but within the margin: the champion keeps serving.
    assert not verdict([0.10] * 60, [0.105] * 60).popularity_should_serve
    # Behind popularity on average by a little, on a few lucky users: popularity is the safe
    # default while it leads, and the champion is not clearly better, so it does not come back.
    lucky = verdict([0.02] * 60, [0.0] * 58 + [1.0, 1.0])
    assert lucky.popularity_should_serve and not lucky.champion_clearly_better
    # The champion clearly ahead again: it serves.
    back = verdict([0.20] * 60, [0.05] * 60)
    assert back.champion_clearly_better and not back.popularity_should_serve
    assert not QualityVerdict("d", 0.1, 0.2, 0, 1, objective).popularity_should_serve


def test_a_clear_lead_on_the_newest_day_alone_moves_the_arm_though_the_window_does_not():
    """Two days before the change the champion led by 0.15; on the newest popularity leads by 0.1
    for 40 users: the pooled window still favours the champion, the newest day decides."""
    objective = Objective(guard_margin=0.0, guard_confidence=0.9)
    old = {f"a{i}": -0.15 for i in range(80)}  # popularity minus champion, per (user, day)
    newest = {f"b{i}": 0.1 + (0.02 if i % 2 else -0.02) for i in range(40)}
    zeros = {key: 0.0 for key in (*old, *newest)}

    def verdict(newest_gain: dict[str, float]) -> QualityVerdict:
        pooled = {**old, **newest_gain}
        return QualityVerdict(
            "2026-10-04",
            0.2,
            0.15,
            len(pooled),
            1,
            objective,
            days=3,
            popularity_gain=paired_gain(pooled, zeros, 0.9),
            newest_gain=paired_gain(newest_gain, zeros, 0.9),
        )

    moved = verdict(newest)
    assert moved.popularity_gain.mean < 0 and moved.popularity_should_serve
    assert "2026-10-04 alone: gain +0.1000" in moved.guard_reason()
    # The same lead on average, but noise as large as it: not beyond chance, nothing moves.
    noisy = verdict({f"b{i}": 0.1 + (0.9 if i % 2 else -0.9) for i in range(40)})
    assert noisy.newest_gain.mean > 0 and not noisy.popularity_should_serve


def test_evidence_days_reach_back_from_the_newest_after_the_cutoff():
    # Positives per day: 09-01: 3, 09-02: 0 (negatives only), 09-03: 1, 09-04: 2 (one user's).
    rows = [(1, 1), (1, 1), (1, 1), (2, 0), (3, 1), (3, 0), (4, 1), (4, 1)]
    examples = pa.table(
        {
            "user_id": ["u1", "u2", "u3", "u1", "u2", "u4", "u5", "u5"],
            "label": pa.array([label for _, label in rows], pa.int8()),
            "label_ts": pa.array(
                [datetime(2026, 9, d, 12, tzinfo=UTC) for d, _ in rows], pa.timestamp("us", "UTC")
            ),
        }
    )
    assert evidence_days(examples, None, 2, 7) == [date(2026, 9, 4)]
    # Days without positives are skipped, not counted.
    assert evidence_days(examples, None, 4, 7) == [
        date(2026, 9, 4),
        date(2026, 9, 3),
        date(2026, 9, 1),
    ]
    cutoff = datetime(2026, 9, 3, tzinfo=UTC)
    assert evidence_days(examples, cutoff, 100, 7) == [date(2026, 9, 4), date(2026, 9, 3)]
    assert evidence_days(examples, cutoff, 100, 1) == [date(2026, 9, 4)]
    # Two positives of 09-04 are one user: two users need 09-03 as well, four reach 09-01.
    assert evidence_days(examples, None, 2, 7, min_users=1) == [date(2026, 9, 4)]
    assert evidence_days(examples, None, 2, 7, min_users=2) == [date(2026, 9, 4), date(2026, 9, 3)]
    assert evidence_days(examples, None, 2, 7, min_users=4)[-1] == date(2026, 9, 1)
