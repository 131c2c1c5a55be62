from collections import Counter
from datetime import timedelta

import pyarrow.compute as pc
import pytest

from sands import landing
from sands.contract import INTERACTIONS
from sands.ingest import ingest_day
from sands.simulator import (
    EVENTS_PER_VIEW,
    MEAN_VIEWS_PER_SESSION,
    SHIFT_COUNTRY,
    TREND_STYLE,
    Marketplace,
    Scenario,
    SimulationConfig,
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
