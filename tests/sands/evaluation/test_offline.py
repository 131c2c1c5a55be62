"""Temporal split and full-catalogue evaluation on a world small enough to rank by hand."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sands.evaluation import offline
from sands.evaluation.offline import (
    EvaluationSpec,
    PopularityRecommender,
    RankerRecommender,
    best_first,
    day_windows,
    evaluate,
    evaluation_setup,
    evaluation_setups,
    evaluation_split,
    labelled_between,
    rankable_days,
    scored_top_k,
    split_time,
    temporal_split,
    top_k,
)
from sands.models.ranking import RankerParams, train_ranker
from tests.builders.models import (
    ARTWORK_DEFAULTS,
    USER_DEFAULTS,
    artwork_vector,
    planted_examples,
    user_vector,
    vectors_table,
)

SPLIT = datetime(2026, 9, 5, tzinfo=UTC)
LATER = datetime(2026, 9, 6, tzinfo=UTC)


def at(when: datetime) -> dict[str, object]:
    return {"feature_ts": when, "created_ts": when, "feature_date": (when.date())}


USER_LOG = vectors_table(
    [
        user_vector("u1", tenure_days=100.0, country="GB", **at(SPLIT)),
        user_vector("u1", tenure_days=101.0, country="FR", **at(LATER)),  # after the split
        user_vector("u2", tenure_days=2.0, country="JP", **at(SPLIT)),
    ],
    USER_DEFAULTS,
)
ARTWORK_LOG = vectors_table(
    [
        artwork_vector("a1", style="cubism", **at(SPLIT)),
        artwork_vector("a2", style="abstract", **at(SPLIT)),
        artwork_vector("a3", style="pop-art", **at(SPLIT)),
        artwork_vector("a4", style="pop-art", **at(SPLIT)),
        artwork_vector("a5", style="abstract", **at(LATER)),  # listed after the split
    ],
    ARTWORK_DEFAULTS,
)


def example(user: str, artwork: str, label: int, when: datetime) -> dict[str, object]:
    return {
        "user_id": user,
        "artwork_id": artwork,
        "label": label,
        "label_ts": when,
        "artwork_n_view_7d": 1,
    }


EXAMPLES = pa.Table.from_pylist(
    [
        example("u1", "a1", 1, datetime(2026, 9, 4, 9, tzinfo=UTC)),  # known before the split
        example("u2", "a2", 0, datetime(2026, 9, 4, 10, tzinfo=UTC)),
        example("u1", "a2", 1, datetime(2026, 9, 5, 10, tzinfo=UTC)),
        example("u1", "a4", 0, datetime(2026, 9, 5, 11, tzinfo=UTC)),
        example("u1", "a5", 1, datetime(2026, 9, 6, 8, tzinfo=UTC)),
        example("u2", "a3", 1, datetime(2026, 9, 6, 9, tzinfo=UTC)),
        example("u2", "a4", 0, datetime(2026, 9, 6, 12, tzinfo=UTC)),
    ],
    schema=pa.schema(
        [
            ("user_id", pa.string()),
            ("artwork_id", pa.string()),
            ("label", pa.int8()),
            ("label_ts", pa.timestamp("us", tz="UTC")),
            ("artwork_n_view_7d", pa.int64()),
        ]
    ),
)
SCORES = {"a1": 4.0, "a2": 3.0, "a3": 2.0, "a4": 1.0}


@dataclass
class FixedScores:
    """Scores each artwork the same for everyone: a1 > a2 > a3 > a4."""

    name: str = "fixed"

    def scores(self, rows: pa.Table) -> np.ndarray:
        return np.array([SCORES.get(a, 0.0) for a in rows["artwork_id"].to_pylist()])

    def probabilities(self, rows: pa.Table) -> None:
        return None


def setup(k: int = 3):
    return evaluation_setup(EXAMPLES, USER_LOG, ARTWORK_LOG, None, SPLIT, EvaluationSpec(k=k))


def test_the_split_starts_the_last_eval_days_at_midnight():
    assert split_time(EXAMPLES, eval_days=2) == SPLIT
    train, holdout = temporal_split(EXAMPLES, SPLIT)
    assert (train.num_rows, holdout.num_rows) == (2, 5)


def test_a_split_before_any_artwork_had_features_is_a_one_line_error_not_a_crash():
    before = datetime(2026, 9, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match="no artwork has features as of 2026-09-04 00:00 UTC"):
        evaluation_setup(EXAMPLES, USER_LOG, ARTWORK_LOG, None, before, EvaluationSpec())


def _gathered(setup) -> tuple:
    return (
        setup.split,
        setup.catalogue.to_pylist(),
        setup.users.to_pylist(),
        setup.relevant,
        setup.relevant_by_day,
        setup.exclude,
    )


@pytest.mark.parametrize("joined_rows", [offline.JOINED_ROWS, 1])
def test_days_gathered_in_one_join_are_each_day_gathered_alone(monkeypatch, joined_rows):
    # 1: a join per day (the catalogue of 5 artworks is over the cap), the chunked path.
    monkeypatch.setattr(offline, "JOINED_ROWS", joined_rows)
    days = [date(2026, 9, 5), date(2026, 9, 6)]
    spec = EvaluationSpec()
    together = list(
        evaluation_setups(EXAMPLES, USER_LOG, ARTWORK_LOG, None, day_windows(days), spec)
    )
    alone = [
        evaluation_setup(EXAMPLES, USER_LOG, ARTWORK_LOG, None, split, spec, until)
        for split, until in day_windows(days)
    ]
    assert [_gathered(s) for s in together] == [_gathered(s) for s in alone]
    first, second = together
    assert first.catalogue["artwork_id"].to_pylist() == ["a1", "a2", "a3", "a4"]
    assert second.catalogue["artwork_id"].to_pylist() == ["a1", "a2", "a3", "a4", "a5"]
    assert first.relevant == {"u1": {"a2"}} and second.relevant == {"u1": {"a5"}, "u2": {"a3"}}
    # u1 as of each day: the row of 09-05 (GB), then the one of 09-06 (FR).
    assert first.users["user_country"].to_pylist() == ["GB"]
    assert second.users["user_country"].to_pylist() == ["FR", "JP"]
    assert second.exclude == {"u1": {"a1", "a2"}}


def test_only_label_days_after_the_first_artwork_snapshot_can_be_ranked():
    # The log's first snapshot is available at 09-05 00:00: a day from then on is rankable.
    days = [date(2026, 9, 4), date(2026, 9, 5), date(2026, 9, 6)]
    assert rankable_days(days, ARTWORK_LOG) == days[1:]
    assert rankable_days(days, ARTWORK_LOG.slice(0, 0)) == []


def test_a_setup_read_from_a_stored_dataset_is_the_setup_of_the_table(tmp_path):
    # Small row groups, so reading only the holdout's label days can skip some.
    pq.write_table(EXAMPLES, tmp_path / "examples.parquet", row_group_size=2)
    stored = ds.dataset(tmp_path / "examples.parquet")
    until = datetime(2026, 9, 7, tzinfo=UTC)
    for end in (None, until):
        spec = EvaluationSpec()
        table = evaluation_setup(EXAMPLES, USER_LOG, ARTWORK_LOG, None, SPLIT, spec, end)
        read = evaluation_setup(stored, USER_LOG, ARTWORK_LOG, None, SPLIT, spec, end)
        assert read.holdout.equals(table.holdout) and read.exclude == table.exclude
        assert read.relevant_by_day == table.relevant_by_day
    assert labelled_between(stored, SPLIT, None, ["user_id"]).equals(
        labelled_between(EXAMPLES, SPLIT, None, ["user_id"])
    )
    assert labelled_between(EXAMPLES, None, SPLIT).num_rows == 2


def test_the_evaluation_window_grows_until_it_holds_enough_positives():
    # Positives per label day, newest first: 09-06: 2, 09-05: 1, 09-04: 1.
    day = lambda d: datetime(2026, 9, d, tzinfo=UTC)  # noqa: E731
    assert evaluation_split(EXAMPLES, 1, 2, 7) == (day(6), 2)
    # Never more than half the 3 label days: the rest is what the model trains on.
    assert evaluation_split(EXAMPLES, 1, 3, 7) == (day(6), 2)
    assert evaluation_split(EXAMPLES, 1, 100, 7) == (day(6), 2)
    longer = pa.concat_tables(
        [
            EXAMPLES,
            pa.Table.from_pylist(
                [example("u3", "a1", 1, datetime(2026, 9, 3, 9, tzinfo=UTC))],
                schema=EXAMPLES.schema,
            ),
        ]
    )
    # Four label days (09-03 .. 09-06): two may be held out, holding 3 positives.
    assert evaluation_split(longer, 1, 3, 7) == (day(5), 3)
    assert evaluation_split(longer, 1, 100, 1) == (day(6), 2)
    # Two positives of 09-06 are two users: asking for three users holds out 09-05 (u1) too.
    assert evaluation_split(longer, 1, 0, 7, min_users=2) == (day(6), 2)
    assert evaluation_split(longer, 1, 0, 7, min_users=3) == (day(5), 3)


def test_users_and_catalogue_are_taken_as_of_the_split():
    s = setup()
    assert s.users["user_country"].to_pylist() == ["GB", "JP"]
    assert s.catalogue["artwork_id"].to_pylist() == ["a1", "a2", "a3", "a4"]
    assert s.relevant == {"u1": {"a2", "a5"}, "u2": {"a3"}}
    assert s.exclude == {"u1": {"a1"}}


def test_full_catalogue_ranking_metrics_match_the_hand_computation():
    result = evaluate(FixedScores(), setup(k=3))
    # u1 cannot be shown a1 (already converted): ranks a2, a3, a4 -> hit at 1 of {a2, a5}.
    # u2 ranks a1, a2, a3 -> hit at 3 of {a3}.
    assert result.recommendations == {"u1": ["a2", "a3", "a4"], "u2": ["a1", "a2", "a3"]}
    u1_ndcg, u2_ndcg = 1 / (1 + 1 / np.log2(3)), 1 / np.log2(4)
    assert result.overall["ndcg_at_3"] == pytest.approx((u1_ndcg + u2_ndcg) / 2)
    assert result.overall["recall_at_3"] == pytest.approx((0.5 + 1.0) / 2)
    assert result.overall["map_at_3"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert result.overall["hit_rate_at_3"] == 1.0
    assert result.overall["catalogue_coverage"] == 1.0
    # Holdout positives score 3 (a2), 0 (a5, unknown) and 2 (a3); negatives 1 and 1: 4 of 6.
    assert result.pointwise == {"auc": pytest.approx(4 / 6)}


def test_metrics_by_day_and_by_slice():
    result = evaluate(FixedScores(), setup(k=3))
    assert result.by_day == [
        (date(2026, 9, 5), 1, pytest.approx(1.0)),
        (date(2026, 9, 6), 2, pytest.approx((0.0 + 0.5) / 2)),
    ]
    slices = {(s.dimension, s.value): (s.users, round(s.ndcg, 4)) for s in result.slices}
    assert slices[("user_type", "returning")] == (1, round(1 / (1 + 1 / np.log2(3)), 4))
    assert slices[("user_type", "new")] == (1, 0.5)
    assert slices[("country", "JP")] == (1, 0.5)
    # Relevant artworks by style: a2 abstract (u1, rank 1), a3 pop-art (u2, rank 3), a5 unlisted.
    assert slices[("artwork_style", "abstract")] == (1, 1.0)
    assert slices[("artwork_style", "pop-art")] == (1, 0.5)
    assert slices[("artwork_style", "unlisted")] == (1, 0.0)


def test_the_pair_budget_never_samples_fewer_users_than_a_verdict_needs():
    spec = EvaluationSpec(max_scored_pairs=10_000_000, min_sampled_users=300)
    assert spec.user_limit(4_000) == 2_500  # the budget is the limit on a small catalogue
    # 10M pairs of a Retailrocket-sized catalogue are 42 users: too few to pass any gate.
    assert spec.user_limit(235_061) == 300
    assert EvaluationSpec(max_scored_pairs=None).user_limit(235_061) is None


def test_a_batch_holds_fewer_users_the_larger_the_catalogue():
    spec = EvaluationSpec(user_batch=256, batch_pairs=4_000_000)
    assert spec.batch_users(4_000) == 256
    assert spec.batch_users(235_061) == 17
    assert spec.batch_users(10_000_000) == 1


def test_sampled_users_are_a_stable_subset_only_past_the_limit():
    from sands.evaluation.offline import sampled_users

    relevant = {f"u{i}": {f"a{i}"} for i in range(10)}
    assert sampled_users(relevant, None) == relevant
    assert sampled_users(relevant, 10) == relevant
    four = sampled_users(relevant, 4)
    assert len(four) == 4 and all(relevant[u] == items for u, items in four.items())
    assert sampled_users(dict(reversed(list(relevant.items()))), 4) == four  # order-free


@dataclass
class CrossedOnly:
    """A ranker seen only through `scores`: evaluation must cross every (user, artwork) row."""

    ranker: RankerRecommender | PopularityRecommender
    name: str = "crossed"

    def scores(self, rows: pa.Table) -> np.ndarray:
        return self.ranker.scores(rows)

    def probabilities(self, rows: pa.Table) -> np.ndarray | None:
        return self.ranker.probabilities(rows)


def test_grid_scoring_ranks_exactly_as_crossed_rows_do():
    model = train_ranker(planted_examples(), None, RankerParams(trees=20, threads=1))
    s = setup(k=3)
    for recommender in (RankerRecommender("ranker", model), PopularityRecommender()):
        grid, crossed = top_k(recommender, s), top_k(CrossedOnly(recommender), s)
        assert grid == crossed and set(grid) == {"u1", "u2"}


def test_a_ranker_scores_the_same_rows_once_and_new_rows_afresh():
    model = train_ranker(planted_examples(), None, RankerParams(trees=20, threads=1))
    first, second = planted_examples(seed=1), planted_examples(seed=2)
    ranker = RankerRecommender("ranker", model)
    scored = ranker.scores(first)
    scored[:] = 0.0  # a caller's edits never reach the next caller
    assert np.array_equal(ranker.probabilities(first), model.probabilities(first))
    assert np.array_equal(ranker.scores(second), model.scores(second))
    assert np.array_equal(ranker.probabilities(second), model.probabilities(second))
    assert not np.array_equal(model.scores(first)[:50], model.scores(second)[:50])


@dataclass
class Bounded:
    """Scores from a table (rows in the setup's user order) under given bounds, noting which
    artworks it was asked to score."""

    table: np.ndarray
    bounds: np.ndarray
    name: str = "bounded"
    asked: list[int] = field(default_factory=list)

    def scores(self, rows: pa.Table) -> np.ndarray:
        raise AssertionError("the grid is enough")

    def probabilities(self, rows: pa.Table) -> None:
        return None

    def _rows(self, users: pa.Table, setup) -> np.ndarray:
        order = setup.users["user_id"].to_pylist()
        return self.table[[order.index(u) for u in users["user_id"].to_pylist()]]

    def grid_scores(self, users: pa.Table, setup) -> np.ndarray:
        return self._rows(users, setup)

    def grid_scores_at(self, users: pa.Table, setup, columns: np.ndarray) -> np.ndarray:
        self.asked.extend(columns.tolist())
        return self._rows(users, setup)[:, columns]

    def grid_bounds(self, users: pa.Table, setup) -> np.ndarray:
        return self.bounds


def test_artworks_whose_bound_is_below_the_kth_score_are_never_scored(monkeypatch):
    monkeypatch.setattr(offline, "GRID_KERNEL_PAIRS", 0)
    # a1..a4; u1 has converted on a1 (excluded). Top 1 of each, the two best bounds first.
    table = np.array([[9.0, 5.0, 5.0, 1.0], [2.0, 6.0, 5.0, 1.0]])
    bounded = Bounded(table, bounds=np.array([9.0, 6.0, 5.0, 1.0]))
    ranked, scores = scored_top_k(bounded, setup(k=1), wanted={"u2": {"a4"}})
    # u1: a2 and a3 tie at 5 (the lower index wins) and a4's bound (1) is below 5; u2: a2.
    assert ranked == {"u1": ["a2"], "u2": ["a2"]}
    assert sorted(set(bounded.asked)) == [0, 1, 2, 3]  # a4 only because u2 asked for it
    assert scores["u2"] == {"a2": 6.0, "a4": 1.0}
    plain = Bounded(table, bounds=np.array([9.0, 6.0, 5.0, 1.0]))
    assert scored_top_k(plain, setup(k=1))[0] == ranked and 3 not in plain.asked


def test_an_unscored_artwork_whose_bound_ties_the_kth_score_is_scored_for_the_tie():
    # u2's two best bounds (a3, a4) give a k-th score of 6; a2 may still reach 6, and does:
    # as in a sort of every score, the tie goes to the lower index.
    table = np.array([[0.0, 2.0, 3.0, 1.0], [0.0, 6.0, 6.0, 1.0]])
    bounded = Bounded(table, bounds=np.array([0.0, 6.0, 9.0, 8.0]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(offline, "GRID_KERNEL_PAIRS", 0)
        ranked = top_k(bounded, setup(k=1))
    assert ranked == {"u1": ["a3"], "u2": ["a2"]} == top_k(Bounded(table, None), setup(k=1))


def test_a_ranker_spared_most_of_the_catalogue_by_its_bounds_ranks_as_scoring_all(monkeypatch):
    model = train_ranker(planted_examples(), None, RankerParams(trees=20, threads=1))
    asked = {"u1": {"a1", "a4"}, "u2": {"a2"}}
    allowed = {"u1": {"a2", "a4", "a1"}, "u2": {"a1", "a3"}}
    everything = {
        (k, a is None): scored_top_k(RankerRecommender("r", model), setup(k=k), a, asked)
        for k in (1, 2, 4)
        for a in (None, allowed)
    }
    monkeypatch.setattr(offline, "GRID_KERNEL_PAIRS", 0)
    calls = []
    at = RankerRecommender.grid_scores_at
    monkeypatch.setattr(RankerRecommender, "grid_scores_at", lambda *a: calls.append(1) or at(*a))
    for (k, whole), expected in everything.items():
        pruned = scored_top_k(
            RankerRecommender("r", model), setup(k=k), None if whole else allowed, asked
        )
        assert pruned == expected
    assert calls  # the bounds were used
    # A model without bounds (the ablation's bag of seeds) scores everything, as before.
    bag = RankerRecommender("bag", Unbounded(model))
    assert top_k(bag, setup(k=2)) == everything[(2, True)][0]
    assert top_k(RankerRecommender("r", model), setup(k=0)) == {"u1": [], "u2": []}


@dataclass
class Unbounded:
    """A ranker's scores without its bounds."""

    model: object

    def grid_scores(self, users, items, engaged=None) -> np.ndarray:
        return self.model.grid_scores(users, items, engaged)


@pytest.mark.parametrize("blank", [None, -np.inf, np.nan])
def test_best_first_is_the_head_of_a_stable_sort_ties_in_column_order(blank):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, (40, 30)).astype(np.float64)  # many ties, at the k-th too
    if blank is not None:
        scores[rng.random(scores.shape) < 0.3] = blank
    expected = np.argsort(-scores, axis=1, kind="stable")
    for k in (1, 10, 30, 31):
        assert np.array_equal(best_first(scores, k), expected[:, :k])
    assert best_first(np.array([[1.0, 3.0, 3.0, 2.0]]), 2).tolist() == [[1, 2]]


def test_scored_top_k_keeps_the_scores_of_each_list_and_of_what_was_asked_for():
    model = train_ranker(planted_examples(), None, RankerParams(trees=20, threads=1))
    s = setup(k=2)
    recommender = RankerRecommender("ranker", model)
    items = s.catalogue["artwork_id"].to_pylist()
    grid = recommender.grid_scores(s.users, s)
    # u1 converted on a1 before the split: never listed, but its score is still asked for.
    asked = {"u1": {"a1", "a4", "not-in-the-catalogue"}}
    ranked, scores = scored_top_k(recommender, s, wanted=asked)
    assert ranked == top_k(recommender, s) and "a1" not in ranked["u1"]
    for row, user in enumerate(s.users["user_id"].to_pylist()):
        expected = {*ranked[user], *asked.get(user, ())} - {"not-in-the-catalogue"}
        assert scores[user] == {a: float(grid[row, items.index(a)]) for a in expected}
    assert scored_top_k(recommender, s)[1] == {}
