import functools
from collections import Counter
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sands.ingest import landing
from sands.ingest.bronze import ingest_day
from sands.ingest.contract import INTERACTIONS
from sands.monitoring.online_quality import (
    AttributionSpec,
    attributed_impressions,
    two_proportion_z,
)
from sands.serving.prediction_log import Impression, impressions_table
from sands.sim.marketplace import (
    EVENTS_PER_VIEW,
    MEAN_VIEWS_PER_SESSION,
    SHIFT_COUNTRY,
    TREND_STYLE,
    Marketplace,
    Scenario,
    SimulationConfig,
    examination,
    write_drop,
)

SMALL = {
    "events_per_day": 3_000,
    "initial_users": 300,
    "initial_artworks": 150,
    "days": 6,
    "scenario_day": 3,
}


def run(**overrides) -> list:
    return list(Marketplace(SimulationConfig(**{**SMALL, **overrides})).days())


def test_the_same_seed_writes_byte_identical_files_and_another_seed_does_not(tmp_path):
    def files(root, seed):
        for drop in Marketplace(SimulationConfig(**{**SMALL, "days": 2, "seed": seed})).days():
            write_drop(drop, str(root))
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}

    first, second, other = (
        files(tmp_path / "a", 1),
        files(tmp_path / "b", 1),
        files(tmp_path / "c", 2),
    )
    assert first == second
    assert first != other


def test_events_follow_the_funnel_and_stay_inside_their_day():
    for drop in run(days=2):
        events = drop.interactions
        counts = Counter(events.column("event_type").to_pylist())
        assert counts["view"] > counts["click"] > counts["favourite"] > 0 and counts["purchase"] > 0
        assert 0.7 * SMALL["events_per_day"] < drop.counts["events"] < 1.3 * SMALL["events_per_day"]
        days = set(pc.cast(events.column("event_ts"), "date32").to_pylist())
        assert days == {drop.day}
        prices = events.filter(pc.equal(events.column("event_type"), "purchase")).column("price")
        assert prices.null_count == 0
        assert events.filter(pc.not_equal(events.column("event_type"), "purchase")).column(
            "price"
        ).null_count == len(events) - len(prices)


def test_no_event_comes_before_its_user_signed_up_or_its_artwork_was_listed():
    # Newcomers appear at any second of their first day; sessions are drawn over the whole day.
    drops = run(days=3, new_users_per_day=60, new_artworks_per_day=40)
    born = {}
    for drop in drops:
        for table, key, column in (
            (drop.users, "user_id", "signup_ts"),
            (drop.artworks, "artwork_id", "created_ts"),
        ):
            born.update(zip(table[key].to_pylist(), table[column].to_pylist(), strict=True))
    early = newcomers = 0
    for drop in drops[1:]:
        events = pa.concat_tables([drop.interactions, drop.late_interactions])
        for user, artwork, at in zip(
            *(events[c].to_pylist() for c in ("user_id", "artwork_id", "event_ts")), strict=True
        ):
            early += born[user] > at or born[artwork] > at
            newcomers += born[user].date() == at.date() or born[artwork].date() == at.date()
    assert newcomers > 100 and early == 0


def test_a_purchase_is_charged_the_bought_artworks_price():
    # More artworks than events on a day: a price looked up by the wrong index shows at once.
    drop = run(days=1, events_per_day=400, initial_artworks=2_000)[0]
    catalogue = dict(
        zip(
            drop.artworks.column("artwork_id").to_pylist(),
            drop.artworks.column("price").to_pylist(),
            strict=True,
        )
    )
    events = drop.interactions
    bought = events.filter(pc.equal(events.column("event_type"), "purchase"))
    assert bought.num_rows > 0
    for artwork, price in zip(
        bought.column("artwork_id").to_pylist(), bought.column("price").to_pylist(), strict=True
    ):
        assert price == catalogue[artwork], artwork


def test_late_events_arrive_the_next_day_with_their_own_timestamp():
    drops = run(days=3, late_share=0.05)
    late = drops[1].late_interactions
    assert late.num_rows > 0
    assert set(pc.cast(late.column("event_ts"), "date32").to_pylist()) == {drops[0].day}


def test_new_trend_brings_a_new_style_that_takes_off():
    drops = run(scenario=Scenario.new_trend)
    trend = [
        sum(1 for s in d.artworks.column("style").to_pylist() if s == TREND_STYLE) for d in drops
    ]
    assert trend[:3] == [0, 0, 0] and all(n > 0 for n in trend[3:])


def test_demographic_shift_brings_users_from_a_new_country():
    drops = run(scenario=Scenario.demographic_shift)
    countries = [Counter(d.users.column("country").to_pylist()) for d in drops]
    assert all(c[SHIFT_COUNTRY] == 0 for c in countries[:3])
    assert all(c[SHIFT_COUNTRY] > 0 for c in countries[3:])


def test_taste_shift_moves_which_styles_get_viewed():
    def style_views(scenario):
        market = Marketplace(SimulationConfig(**{**SMALL, "scenario": scenario}))
        drops = list(market.days())
        ids = [int(a[1:]) for a in drops[-1].interactions.column("artwork_id").to_pylist()]
        counts = Counter(market.artworks.style[ids].tolist())
        total = sum(counts.values())
        return {s: counts[s] / total for s in range(10)}

    steady, shifted = style_views(Scenario.steady), style_views(Scenario.taste_shift)
    assert sum(abs(steady[s] - shifted[s]) for s in steady) > 0.2


@pytest.mark.parametrize("fraction", [0.0, 0.02])
def test_bad_rows_are_injected_at_the_requested_rate_and_all_get_caught(paths, fraction):
    drops = list(Marketplace(SimulationConfig(**{**SMALL, "days": 2, "bad_rows": fraction})).days())
    for drop in drops:
        write_drop(drop, paths.landing)
    report = ingest_day(paths.landing, paths.lake, drops[1].day)
    expected_bad = drops[1].counts["bad_events"]
    assert expected_bad == round(fraction * drops[1].interactions.num_rows)
    assert report.rows_rejected == expected_bad
    assert report.rows_accepted == drops[1].counts["events"]


def test_drops_land_in_the_contract_layout(paths):
    for drop in run(days=2, bad_rows=0.01):
        write_drop(drop, paths.landing, file_format="csv")
    fs, root = landing.filesystem(paths.landing)
    files = landing.list_files(fs, root, INTERACTIONS)
    assert {f.day for f in files} == {
        SimulationConfig().start,
        SimulationConfig().start + timedelta(days=1),
    }
    assert {f.path.rsplit(".", 1)[-1] for f in files} == {"csv", "jsonl"}


def test_users_browse_what_a_recommender_serves_by_their_tastes():
    config = SimulationConfig(**{**SMALL, "days": 2})
    calls = []

    def recommender(user_id, at):
        calls.append((user_id, at))
        return [f"a{n:07d}" for n in range(10)]  # the same ten artworks for everyone

    plain = list(Marketplace(config).days())
    served = list(Marketplace(config, recommender).days())
    # Without a recommender nothing changes: the served stream draws from its own generator.
    assert plain[0].interactions.equals(run(days=2)[0].interactions)
    sessions = set(served[1].interactions["session_id"].to_pylist())
    assert len(sessions) > len(set(plain[1].interactions["session_id"].to_pylist()))
    sessions_per_day = int(int(3_000 / EVENTS_PER_VIEW) / MEAN_VIEWS_PER_SESSION)
    assert len(calls) == 2 * int(sessions_per_day * 0.3)  # 30 % of sessions open on a list
    assert {at.date() for _, at in calls} == {served[0].day, served[1].day}
    views = served[1].interactions.filter(pc.equal(served[1].interactions["event_type"], "view"))
    top = Counter(views["artwork_id"].to_pylist())
    # Position 1 is seen most: every served list shows a0000000 first.
    shown = [f"a{n:07d}" for n in range(10)]
    assert top["a0000000"] > top["a0000009"]
    assert top["a0000000"] > Counter(plain[1].interactions["artwork_id"].to_pylist())["a0000000"]
    assert set(shown) <= set(top)


# -- how users respond to served lists -------------------------------------------------------
SERVED = {"days": 2, "events_per_day": 20_000, "served_share": 1.0}


@functools.cache
def _serve(policy: str, seed: int = 7) -> tuple[Marketplace, list, list[Impression]]:
    """Play SERVED days with `policy` serving every session's list; the drops and impressions."""
    config = SimulationConfig(**{**SERVED, "seed": seed})
    market = Marketplace(config)
    rng = np.random.default_rng(0)
    served: list[Impression] = []

    def recommender(user_id, at):
        art = market.artworks
        if policy == "good":  # the user's favourite style today, most popular first
            taste = market._taste_today((at.date() - config.start).days)[int(user_id[1:])]
            rank = np.lexsort((-art.popularity, -taste[art.style]))
        elif policy == "popularity":
            rank = np.argsort(-art.popularity)
        else:
            rank = rng.permutation(art.size)
        items = [f"a{a:07d}" for a in rank[:10]]
        served.append(Impression(f"i{len(served)}", user_id, items, [0.0] * 10, 1, "champion", at))
        return items

    market.recommender = recommender
    return market, list(market.days()), served


def _list_ctr(drops: list, served: list[Impression], only_lists: bool) -> tuple[int, int]:
    """(clicked lists, lists) by the platform's attribution with the demo's 1 h window; with
    `only_lists`, counting only actions in sessions that opened on a served list."""
    events = pa.concat_tables([t for d in drops for t in (d.late_interactions, d.interactions)])
    if only_lists:
        organic = int(int(SERVED["events_per_day"] / EVENTS_PER_VIEW) / MEAN_VIEWS_PER_SESSION)
        number = pc.cast(pc.utf8_slice_codeunits(events["session_id"], 10), pa.int64())
        events = events.filter(pc.greater_equal(number, organic))
    attributed = attributed_impressions(
        impressions_table(served),
        events,
        AttributionSpec(window_hours=1.0),
        pc.max(events["event_ts"]).as_py(),
    )
    return pc.sum(attributed["clicked"]).as_py(), attributed.num_rows


def test_users_examine_the_top_of_a_list_most_and_click_what_matches_their_taste():
    assert examination(4, 1.0).tolist() == [1.0, 0.5, 1 / 3, 0.25]
    rates = {}
    for policy in ("good", "popularity", "random"):
        _, drops, served = _serve(policy)
        assert len(served) > 4_000
        rates[policy] = _list_ctr(drops, served, only_lists=True)
    (good, n_good), (rand, n_rand) = rates["good"], rates["random"]
    # Hand-checked on seed 7: 7.7 % of 4,684 good lists got a click, 2.0 % of random ones
    # (z about 13), 2.4 % of popularity lists.
    assert 0.04 < good / n_good < 0.09 and 0.015 < rand / n_rand < 0.035
    assert two_proportion_z(rand, n_rand, good, n_good) > 5
    popular, n_popular = rates["popularity"]
    assert two_proportion_z(popular, n_popular, good, n_good) > 5


def test_online_ctr_of_served_lists_lands_in_a_realistic_range():
    # The platform's metric also credits a list with organic clicks on its artworks in the
    # window; with the demo's 1 h window a good and a popularity list still land in 2-20 %.
    for policy in ("good", "popularity"):
        _, drops, served = _serve(policy)
        clicked, lists = _list_ctr(drops, served, only_lists=False)
        assert 0.02 < clicked / lists < 0.20, (policy, clicked / lists)
    events = pa.concat_tables([d.interactions for d in drops])
    counts = Counter(events["event_type"].to_pylist())
    assert counts["view"] > counts["click"] > counts["favourite"] > 0


def test_served_lists_play_out_the_same_for_a_seed():
    first, second, other = _serve("random"), _serve("random"), _serve("random", seed=8)
    for a, b in zip(first[1], second[1], strict=True):
        assert a.interactions.equals(b.interactions)
    assert not first[1][1].interactions.equals(other[1][1].interactions)
