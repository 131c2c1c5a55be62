"""The champion's logged lists judge other policies: target lists as of each served day, the
champion as logged and recomputed, a paired difference, a position bias fitted from exploration."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from sands.evaluation.gate import online_estimate
from sands.evaluation.logged import item_clicks, logged_lists
from sands.evaluation.off_policy import (
    cross_fitted,
    doubly_robust,
    own_click_model,
    paired_dr_difference,
)
from sands.evaluation.offline import EvaluationSetup, EvaluationSpec
from sands.evaluation.policy_value import (
    CHALLENGER,
    CHAMPION,
    CTR,
    EXTRAPOLATED,
    LOGGED_CHAMPION,
    POPULARITY,
    OffPolicyComparison,
    OffPolicySpec,
    champion_lists,
    compare,
    examination_from_log,
    popularity_lead,
)
from sands.evaluation.served_candidates import ServedCandidates
from sands.monitoring.online_quality import AttributionSpec
from sands.serving.prediction_log import Impression, impressions_table
from sands.serving.snapshot import Catalogue, SegmentCache, ServingData
from tests.builders.bronze import label_events

DAY = date(2026, 9, 2)
NOON = datetime(2026, 9, 2, 12, tzinfo=UTC)
EVE = datetime(2026, 9, 1, tzinfo=UTC)
AFTER = NOON + timedelta(hours=3)  # every list's attribution window has closed


class Fixed:
    """Ranks every user's catalogue by fixed artwork scores."""

    def __init__(self, name: str, scores: dict[str, float]) -> None:
        self.name, self.by_artwork = name, scores

    def scores(self, rows: pa.Table) -> np.ndarray:
        return np.array([self.by_artwork[a] for a in rows["artwork_id"].to_pylist()])

    def probabilities(self, rows: pa.Table) -> np.ndarray | None:
        return None

    def grid_scores(self, users: pa.Table, setup: EvaluationSetup) -> np.ndarray:
        row = [self.by_artwork[a] for a in setup.catalogue["artwork_id"].to_pylist()]
        return np.tile(row, (users.num_rows, 1))


def features(key: str, ids: list[str]) -> pa.Table:
    """One feature row per entity, published the evening before the served day."""
    n = len(ids)
    return pa.table(
        {
            key: ids,
            "feature_ts": pa.array([EVE] * n, pa.timestamp("us", tz="UTC")),
            "created_ts": pa.array([EVE] * n, pa.timestamp("us", tz="UTC")),
            "feature_date": pa.array([EVE.date()] * n, pa.date32()),
        }
    )


def served(impression: str, user: str, items: list[str], explored: list[bool]) -> Impression:
    propensities = [0.05 if e else 0.9 for e in explored]
    scores = [1.0] * len(items)
    return Impression(
        impression, user, items, scores, 3, "champion", NOON, "ranked", propensities, explored, "e"
    )


# k = 2; the champion ranks a1, a2, a3 and explored a3 into two lists.
LISTS = [
    served("l1", "u1", ["a1", "a3"], [False, True]),
    served("l2", "u2", ["a1", "a2"], [False, False]),
    served("l3", "u3", ["a1", "a2"], [False, False]),
    served("l4", "u4", ["a3", "a2"], [True, False]),
]
LOG = impressions_table(LISTS)
CLICKS = label_events(
    [
        ("u1", "a3", "click", NOON + timedelta(minutes=5)),
        ("u2", "a1", "purchase", NOON + timedelta(minutes=5)),
        ("u4", "a2", "click", NOON + timedelta(minutes=5)),
    ]
)
# u1 bought a2 before the day: no target may show it to u1 again.
HISTORY = pa.table(
    {
        "user_id": ["u1"],
        "artwork_id": ["a2"],
        "label": [1],
        "label_ts": pa.array([EVE - timedelta(days=1)], pa.timestamp("us", tz="UTC")),
    }
)
RECOMMENDERS = {
    CHAMPION: Fixed("champion", {"a1": 3.0, "a2": 2.0, "a3": 1.0}),
    CHALLENGER: Fixed("challenger", {"a3": 3.0, "a1": 2.0, "a2": 1.0}),
}
SPEC = OffPolicySpec(k=2, min_lists=1)


def judged(
    spec: OffPolicySpec = SPEC,
    evaluation: EvaluationSpec = EvaluationSpec(k=2),
    log: pa.Table = LOG,
    recommenders: dict[str, Fixed] = RECOMMENDERS,
    served: ServedCandidates | None = None,
    artworks: tuple[str, ...] = ("a1", "a2", "a3"),
) -> OffPolicyComparison:
    return compare(
        log,
        CLICKS,
        NOON + timedelta(hours=3),
        recommenders,
        features("user_id", ["u1", "u2", "u3", "u4"]),
        features("artwork_id", list(artworks)),
        HISTORY,
        spec,
        evaluation,
        served,
    )


def test_each_policy_is_estimated_by_hand_on_the_logged_lists():
    result = judged()
    # Too few explored clicks to fit: theta = (1, 1/2). Exposures: greedy 0.9 x theta_j,
    # explored 0.05 x 1.5 = 0.075.
    assert result.examination == pytest.approx([1.0, 0.5])
    assert result.logged[CTR] == pytest.approx(3 / 4)
    # Champion (a1, a2; a1, a3 for u1, who bought a2): l1's click on a3 at 2 (0.5/0.075), l2's
    # on a1 at 1 (1/0.9), l4's on a2 at 2 (0.5/0.45).
    champion = result.estimates[CHAMPION][CTR]
    assert champion.value == pytest.approx((0.5 / 0.075 + 1 / 0.9 + 0.5 / 0.45) / 4)
    # Challenger (a3, a1): l1's a3 at 1 (1/0.075), l2's a1 at 2 (0.5/0.9), l4's a2 nowhere.
    challenger = result.estimates[CHALLENGER][CTR]
    assert challenger.value == pytest.approx((1 / 0.075 + 0.5 / 0.9) / 4)
    # Paired per list: (13.33 - 6.67) + (0.56 - 1.11) + 0 + (0 - 1.11), over 4 lists.
    assert result.difference.value == pytest.approx(challenger.value - champion.value)
    assert result.difference.lists == 4
    # The purchase is a conversion too: only l2's, at the champion's own slot.
    assert result.estimates[CHAMPION]["conversions per list"].value == pytest.approx(1 / 0.9 / 4)


def test_doubly_robust_reads_each_model_s_own_scores_of_what_was_shown_and_of_its_list():
    result = judged()
    theta = np.array([1.0, 0.5])
    log = logged_lists(item_clicks(LOG, CLICKS, AttributionSpec(), AFTER), 2, theta)
    # Logged: l1 a1 a3, l2 a1 a2, l3 a1 a2, l4 a3 a2. Lists: the champion a1 a2 (a1 a3 for u1,
    # who bought a2), the challenger a3 a1.
    champion = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 2.0], [1.0, 2.0]])
    challenger = np.array([[2.0, 3.0], [2.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    lists = {
        CHAMPION: (champion, np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 2.0], [3.0, 2.0]])),
        CHALLENGER: (challenger, np.array([[3.0, 2.0]] * 4)),
    }
    where = {
        CHAMPION: np.array([[1, 2], [1, 2], [1, 2], [0, 2]]),
        CHALLENGER: np.array([[2, 1], [2, 0], [2, 0], [1, 0]]),
    }
    models = {name: own_click_model(log.lists, *lists[name], theta) for name in lists}
    for name, model in models.items():
        expected = doubly_robust(log.lists, where[name], theta, model.shown, model.listed)
        assert result.dr[name] == expected
    mine, theirs = ((where[n], models[n]) for n in (CHALLENGER, CHAMPION))
    assert result.dr_difference == paired_dr_difference(log.lists, mine, theirs, theta)
    # Conversions the same way, on the same scores: only l2's purchase of a1 converted.
    bought = AttributionSpec(clicks=AttributionSpec().conversions)
    sold = logged_lists(item_clicks(LOG, CLICKS, bought, AFTER), 2, theta)
    assert sold.lists.clicks.tolist() == [[0, 0], [1, 0], [0, 0], [0, 0]]
    for name in lists:
        model = own_click_model(sold.lists, *lists[name], theta)
        expected = doubly_robust(sold.lists, where[name], theta, model.shown, model.listed)
        assert result.dr_conversions[name] == expected
    cells = [result.dr[CHALLENGER].interval(), result.dr_conversions[CHALLENGER].interval()]
    assert result.dr_cells(CHALLENGER) == cells and result.dr_cells("popularity") == ["-", "-"]
    assert "| conversions per list, dr |" in result.markdown()
    # The gate reads it: the challenger's and the champion's doubly robust clicks per list.
    assert result.judged_by == "dr"
    gate = (result.dr[CHALLENGER], result.dr[CHAMPION], result.dr_difference)
    assert result.gate_estimates() == gate and "The gate reads dr." in result.markdown()
    assert judged(replace(SPEC, gate_estimator="pbm")).judged_by == "pbm"
    # The gate reads dr or the estimator the comparison reports, nothing it did not compute.
    with pytest.raises(ValueError, match="'ips': dr or the reported estimator"):
        replace(SPEC, gate_estimator="ips")


def test_the_champion_as_logged_keeps_only_its_greedy_slots_and_is_reproduced():
    result = judged()
    # The greedy slots: l1's a1, l2 and l3 whole, l4's a2 (l1's a3 and l4's slot 1 explored).
    logged = result.estimates[LOGGED_CHAMPION][CTR]
    assert logged.value == pytest.approx((1 / 0.9 + 0.5 / 0.45) / 4)
    assert result.champion_agreement == 1.0
    assert result.explored_share == pytest.approx(2 / 8)


def test_a_log_too_small_to_judge_says_so():
    result = judged(OffPolicySpec(k=2, min_lists=5))
    assert (result.lists, result.difference, result.estimates) == (4, None, {})


def test_the_comparison_survives_a_registry_tag():
    result = judged()
    assert OffPolicyComparison.from_json(result.to_json()) == result
    assert "| challenger |" in result.markdown()
    # A tag written before the doubly robust difference existed: the gate reads pbm from it.
    raw = json.loads(result.to_json())
    for key in ("dr", "dr_difference", "gate_estimator", "dr_conversions"):
        del raw[key]
    older = OffPolicyComparison.from_json(json.dumps(raw))
    assert older.judged_by == "pbm" and older.gate_estimates()[2] == result.difference
    assert older.dr_cells(CHALLENGER) == ["-", "-"]
    empty = json.loads(result.to_json()) | {"dr_conversions": None}
    assert OffPolicyComparison.from_json(json.dumps(empty)).dr_conversions == {}
    # One from a newer release, with a field this one does not know: read, the field dropped.
    newer = json.loads(result.to_json()) | {"cross_fitted": True}
    assert OffPolicyComparison.from_json(json.dumps(newer)) == result


def test_only_the_champion_arm_s_lists_of_the_champion_since_the_cut_off_count():
    other = Impression("x", "u9", ["a1"], [1.0], 4, "challenger", NOON, "ranked")
    older = Impression("y", "u9", ["a1"], [1.0], 3, "champion", NOON - timedelta(days=2))
    log = impressions_table([*[served(f"l{i}", "u", ["a1"], [False]) for i in (1,)], other, older])
    kept = champion_lists(log, 3, NOON - timedelta(days=1))
    assert kept["impression_id"].to_pylist() == ["l1"]


def test_position_bias_is_fitted_from_explored_clicks_once_there_are_enough():
    # Explored artworks at slot 1 clicked 1 time in 4, at slot 2 1 in 8: (1/position)^1.
    shown = [("e1", 1, 4, 1), ("e2", 2, 8, 1)]
    impressions, events = [], []
    for name, position, times, clicks in shown:
        for i in range(times * 20):
            user = f"{name}-{i}"
            items = ["g", "g2"]
            items[position - 1] = f"x{i}"
            explored = [slot == position - 1 for slot in range(2)]
            impressions.append(served(user, user, items, explored))
            if i % times < clicks:
                events.append((user, f"x{i}", "click", NOON + timedelta(minutes=1)))
    rows = item_clicks(
        impressions_table(impressions), label_events(events), AttributionSpec(), NOON + timedelta(2)
    )
    theta, source = examination_from_log(rows, 2, prior=0.0, min_clicks=20)
    assert theta == pytest.approx([1.0, 0.5]) and source.startswith("fitted (1/position)^1.00")
    theta, source = examination_from_log(rows, 2, prior=0.0, min_clicks=1000)
    assert theta.tolist() == [1.0, 1.0] and source.startswith("prior")


def test_a_large_log_is_judged_on_a_stable_sample_of_its_users():
    # 3 artworks: 6 scored pairs allow 2 users' lists, the same 2 every time.
    capped = EvaluationSpec(k=2, max_scored_pairs=6, min_sampled_users=1)
    first, again = judged(evaluation=capped), judged(evaluation=capped)
    assert first.lists == 2 and first == again


# A snapshot listing a1 and a2 only (popularity a2, a1); u1 bought a2 the day before.
SNAPSHOT = ServingData(
    catalogue=Catalogue(["a1", "a2"], {"a1": 0, "a2": 1}, {}),
    neighbours={},
    popular=["a2", "a1"],
    popular_scores=[2.0, 1.0],
    segments=SegmentCache(None),
    segment_top={},
    known_users=frozenset(),
)
BOUGHT = label_events([("u1", "a2", "purchase", EVE - timedelta(hours=1))])
SOURCED = impressions_table([replace(i, sources="popularity=5,users=2") for i in LISTS])


def test_lists_logged_with_their_snapshot_are_recomputed_on_its_candidates():
    # a3 is no candidate, so the challenger serves what the champion does.
    loaded = []
    served_candidates = ServedCandidates(lambda v: loaded.append(v) or SNAPSHOT, BOUGHT)
    log = SOURCED
    recommenders = {
        **RECOMMENDERS,
        POPULARITY: Fixed("popularity", {"a3": 9.0, "a1": 1.0, "a2": 0.5}),
    }
    result = judged(log=log, recommenders=recommenders, served=served_candidates)
    assert loaded == [{"popularity": 5, "users": 2}]
    estimates = {name: e[CTR].value for name, e in result.estimates.items()}
    assert estimates[CHALLENGER] == estimates[CHAMPION]
    assert result.difference.value == 0.0 and result.champion_agreement == 1.0
    # Popularity as serving falls back to it: u1 [a1], the others [a2, a1]. l2's click on a1 at
    # 2 (0.5/0.9), l4's on a2 at 1 (1/0.45); l1's on a3 is not in u1's list.
    assert estimates[POPULARITY] == pytest.approx((0.5 / 0.9 + 1 / 0.45) / 4)
    assert result.replayed == 4
    # Without the snapshot's sources the same log ranks the full catalogue (a3 first).
    full = judged(log=log, recommenders=recommenders)
    assert full.estimates[POPULARITY][CTR].value > 1 and full.replayed == 0


def test_a_snapshot_that_cannot_be_read_back_leaves_its_lists_to_the_full_catalogue():
    def vacuumed(versions: object) -> ServingData:
        raise FileNotFoundError("version 5 of popularity was vacuumed")

    garbled = impressions_table([replace(i, sources="popularity=five") for i in LISTS])
    for log, load in ((SOURCED, vacuumed), (garbled, lambda v: SNAPSHOT)):
        served_candidates = ServedCandidates(load, BOUGHT)
        result = judged(log=log, served=served_candidates)
        assert result.replayed == 0 and result.estimates == judged().estimates
        (why,) = served_candidates.unreadable.values()
        assert "vacuumed" in why or "not name=version" in why
        assert popularity_lead(log, CLICKS, AFTER, served_candidates, SPEC) is None


ELSEWHERE = {
    CHAMPION: Fixed("champion", {"a1": 3.0, "a2": 2.0, "a3": 1.0, "a4": 0.0}),
    # It puts a4, never shown, first and a1 second.
    CHALLENGER: Fixed("challenger", {"a4": 5.0, "a1": 4.0, "a2": 3.0, "a3": 0.0}),
}


def test_a_challenger_whose_lists_the_log_cannot_reach_is_not_judged_when_told_not_to():
    # Only a1's examination (0.5 of 1.5) is reachable, seen greedily (0.9) in l1-l3:
    # (3 x 0.5 / 0.9 / 4) / 1.5.
    spec = replace(SPEC, extrapolate=False)
    result = judged(spec, recommenders=ELSEWHERE, artworks=("a1", "a2", "a3", "a4"))
    assert result.support[CHALLENGER] == pytest.approx(3 * 0.5 / 0.9 / 4 / 1.5)
    assert result.champion_agreement == 1.0
    assert result.unjudged_reason.startswith("the log reaches only 28% of the challenger's")
    assert result.extrapolated_difference is None
    assert judged().unjudged_reason is None


def test_a_challenger_the_log_cannot_reach_is_read_by_the_champion_s_click_model():
    result = judged(recommenders=ELSEWHERE, artworks=("a1", "a2", "a3", "a4"))
    assert result.unjudged_reason is None and result.judged_by == EXTRAPOLATED
    theta = np.array([1.0, 0.5])
    log = logged_lists(item_clicks(LOG, CLICKS, AttributionSpec(), AFTER), 2, theta)
    # The champion's scores of the logged artworks (l1 a1 a3, l2 and l3 a1 a2, l4 a3 a2), of its
    # own lists (a1 a3 for u1, who bought a2; a1 a2 for the others) and of the challenger's
    # (a4 a1 for everyone).
    shown = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 2.0], [1.0, 2.0]])
    own = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 2.0], [3.0, 2.0]])
    at_challenger = np.array([[0.0, 3.0]] * 4)
    champion = own_click_model(log.lists, shown, own, theta)
    by_champion = cross_fitted(log.lists, shown, at_challenger, theta)
    where = np.array([[2, 0], [2, 0], [2, 0], [0, 0]])  # the challenger's a1 at 2
    there = np.array([[1, 2], [1, 2], [1, 2], [0, 2]])
    expected = paired_dr_difference(log.lists, (where, by_champion), (there, champion), theta)
    difference = result.extrapolated_difference
    assert (difference.value, difference.low, difference.high) == (
        expected.value,
        expected.low,
        expected.high,
    )
    assert result.gate_estimates() == (
        result.extrapolated,
        result.dr[CHAMPION],
        result.extrapolated_difference,
    )
    assert "the gate reads its list by the champion's click model" in result.markdown()
    criterion = online_estimate(result)
    assert "dr, champion's click model" in criterion.detail
    assert "the log reaching 28% of its lists" in criterion.detail
    # A comparison tagged before extrapolation existed reads as not judged, as it did then.
    old = OffPolicyComparison.from_json(
        result.to_json().replace('"extrapolated_difference"', '"dropped"')
    )
    assert old.unjudged_reason.startswith("the log reaches only 28%")


def test_popularity_is_judged_against_the_champion_as_it_served_without_any_model():
    served_candidates = ServedCandidates(lambda v: SNAPSHOT, BOUGHT)
    lead = popularity_lead(SOURCED, CLICKS, NOON + timedelta(hours=3), served_candidates, SPEC)
    # Popularity's lists: u1 [a1], the others [a2, a1]; the champion's greedy slots as logged.
    # Per list, popularity - champion: l1 0 - 0; l2 a1 at 2 vs 1: 0.5/0.9 - 1/0.9; l3 0;
    # l4 a2 at 1 vs its logged slot 2: 1/0.45 - 0.5/0.45.
    assert lead.difference.value == pytest.approx((0.5 / 0.45 - 0.5 / 0.9) / 4)
    assert lead.difference.lists == 4 and lead.days == ["2026-09-02"]
    # Reach: greedy items 0.9. l1 a1 at 1; l2, l3 a2 at 1 and a1 at 2; l4 a2 at 1; of 1.5.
    assert lead.support == pytest.approx((1 + 1.5 + 1.5 + 1) / 0.9 / 4 / 1.5)
    assert not lead.popularity_clearly_better  # four lists: the interval spans zero
    # Lists logged without their snapshot cannot say what popularity would have shown.
    assert popularity_lead(LOG, CLICKS, NOON + timedelta(hours=3), served_candidates, SPEC) is None
