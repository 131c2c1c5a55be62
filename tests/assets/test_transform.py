"""dbt feature models through the real Dagster job, checked against hand-computed values.

Two landing days, two users, two artworks. Day 2 also carries a late favourite from day 1, which
the day-1 features must not see (it had not landed) and the day-2 features must.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from deltalake import DeltaTable

from assets.transform import day_windows
from dagster_project.definitions import build_defs
from dagster_project.runner import DBT_FAILED_ROWS, run_feature_build
from sands.features.offline import ARTWORK_FEATURES, USER_FEATURES
from sands.features.warehouse import model_rows
from sands.settings import SandsPaths
from tests.builders.bronze import write_artworks, write_events, write_users

DAY1, DAY2 = date(2026, 9, 1), date(2026, 9, 2)


def at(day: int, hour: int = 0) -> datetime:
    return (
        datetime(2026, 9, day, hour, tzinfo=UTC) if day > 0 else datetime(2026, 8, -day, tzinfo=UTC)
    )


def write_marketplace(lake_root: str) -> None:
    write_users(
        lake_root,
        [
            {
                "user_id": "u1",
                "signup_ts": datetime(2026, 8, 1, tzinfo=UTC),
                "age": 40,
                # "art" is no style; street-art is first listed on day 2 (a3). Typed by a
                # person: case and surrounding spaces do not matter.
                "interests": ["art", " Street-Art", "POP-ART"],
            },
            {"user_id": "u2", "signup_ts": at(2, 10)},
        ],
    )
    a1 = {
        "artwork_id": "a1",
        "created_ts": datetime(2026, 8, 15, tzinfo=UTC),
        "style": "cubism",
        "medium": "oil",
        "colours": ["red", "blue"],
        "tags": ["night"],
        "price": 100.0,
    }
    a2 = {
        "artwork_id": "a2",
        "created_ts": at(1, 12),
        "style": "pop-art",
        "medium": "digital",
        "colours": ["pink"],
        "tags": ["urban"],
        "price": 50.0,
    }
    a3 = {
        "artwork_id": "a3",
        "created_ts": at(2, 15),
        "style": "street-art",
        "medium": "digital",
        "colours": [],
        "tags": [],
        "price": 20.0,
    }
    write_artworks(lake_root, [a1, a2, a3])
    # a1 is repriced on day 2: day 1's snapshot must keep the old price (no leak from the future).
    a1_repriced = {**a1, "price": 80.0, "updated_ts": at(2, 12)}
    write_artworks(lake_root, [a1_repriced])
    write_events(
        lake_root,
        DAY1,
        [
            ("e1", "u1", "a1", "view", at(1, 8), None),
            ("e2", "u1", "a1", "click", at(1, 9), None),
            ("e3", "u1", "a1", "purchase", at(1, 10), 100.0),
            ("e4", "u1", "a2", "view", at(1, 13), None),
        ],
    )
    write_events(
        lake_root,
        DAY2,
        [
            ("e5", "u1", "a2", "view", at(2, 7), None),
            ("e6", "u1", "a2", "favourite", at(1, 23), None),  # late: landed on day 2
            ("e7", "u2", "a1", "view", at(2, 11), None),
        ],
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The marketplace built for both days in one run (a backfill is one run), one dbt call per
    day, so the late event also crosses a dbt-call boundary."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDS_HOME", str(tmp_path_factory.mktemp("home")))
        for var in ("SANDS_LANDING_URI", "SANDS_LAKE_URI", "SANDS_ENV", "SANDS_REDIS_URL"):
            patch.delenv(var, raising=False)
        paths = SandsPaths.from_env()
        paths.ensure_local_dirs()
        write_marketplace(paths.lake)
        result = run_feature_build(
            DAY1.isoformat(), DAY2.isoformat(), DagsterInstance.ephemeral(), max_days_per_dbt_call=1
        )
        yield paths, result


def rows(paths: SandsPaths, table, key: str) -> dict[tuple[str, date], dict]:
    data = DeltaTable(table.uri(paths.lake)).to_pyarrow_table().to_pylist()
    return {(r[key], r["feature_date"]): r for r in data}


def test_the_backfill_runs_as_one_successful_run_with_every_dbt_test_passing(built):
    _, result = built
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 30
    assert [e.check_name for e in evaluations if not e.passed] == []


def test_user_activity_counts_recency_spend_and_tenure(built):
    paths, _ = built
    users = rows(paths, USER_FEATURES, "user_id")
    u1 = users[("u1", DAY1)]
    assert u1["feature_ts"] == at(2)
    assert (u1["n_view_1d"], u1["n_click_1d"], u1["n_purchase_1d"], u1["n_favourite_7d"]) == (
        2,
        1,
        1,
        0,
    )
    assert u1["spend_28d"] == 100.0
    assert u1["days_since_view"] == pytest.approx(11 / 24)
    assert u1["days_since_purchase"] == pytest.approx(14 / 24)
    assert u1["days_since_favourite"] is None
    assert (u1["active_days_28d"], u1["n_interests"], u1["age"]) == (1, 3, 40)
    assert u1["tenure_days"] == pytest.approx(32.0)


def test_the_declared_style_is_the_first_interest_the_catalogue_knows_as_a_style_by_then(built):
    paths, _ = built
    users = rows(paths, USER_FEATURES, "user_id")
    # In the catalogue's spelling, which the ranker matches against each artwork's style.
    assert users[("u1", DAY1)]["declared_style"] == "pop-art"  # street-art is not listed yet
    assert users[("u1", DAY2)]["declared_style"] == "street-art"
    assert users[("u2", DAY2)]["declared_style"] is None  # declared nothing


def test_late_events_count_from_the_day_they_landed(built):
    paths, _ = built
    u1 = rows(paths, USER_FEATURES, "user_id")[("u1", DAY2)]
    assert (u1["n_view_1d"], u1["n_view_7d"]) == (1, 3)
    # The late favourite happened on day 1, so it sits outside day 2's 1-day window.
    assert (u1["n_favourite_1d"], u1["n_favourite_7d"]) == (0, 1)
    assert u1["days_since_favourite"] == pytest.approx(25 / 24)


def test_users_appear_from_the_day_they_signed_up_with_zero_counts_when_idle(built):
    paths, _ = built
    users = rows(paths, USER_FEATURES, "user_id")
    assert ("u2", DAY1) not in users
    u2 = users[("u2", DAY2)]
    assert (u2["n_view_1d"], u2["n_purchase_28d"], u2["spend_28d"]) == (1, 0, 0.0)
    assert u2["tenure_days"] == pytest.approx(14 / 24)


def test_taste_affinities_weight_events_by_type(built):
    paths, _ = built
    users = rows(paths, USER_FEATURES, "user_id")
    day1, day2 = users[("u1", DAY1)], users[("u1", DAY2)]
    # Day 1: a1 (cubism) got view+click+purchase = 1+2+8 = 11, a2 (pop-art) one view = 1.
    assert (day1["top_style"], day1["top_style_share"]) == ("cubism", pytest.approx(11 / 12))
    # Colours: red and blue 11 each, pink 1; ties go to the first value alphabetically.
    assert (day1["top_colour"], day1["top_colour_share"]) == ("blue", pytest.approx(11 / 23))
    # Day 2 adds a2 view (1) and the late favourite (4): pop-art 6 against cubism 11.
    assert day2["top_style_share"] == pytest.approx(11 / 17)


def test_the_affinity_mart_keeps_each_user_s_top_value_per_attribute(built):
    paths, _ = built
    mart = model_rows(paths.warehouse_db, "user_affinity", DAY1, DAY1).to_pylist()
    top = {(r["user_id"], r["attribute"]): (r["value"], r["weight"], r["share"]) for r in mart}
    assert len(top) == len(mart)  # one row per user and attribute
    # u1 on day 1: a1 weighs 11 (cubism, oil, red+blue, night), a2 1 (pop-art, digital, pink,
    # urban); red and blue tie at 11, the first alphabetically wins. u2 had no activity yet.
    assert top == {
        ("u1", "style"): ("cubism", 11, pytest.approx(11 / 12)),
        ("u1", "medium"): ("oil", 11, pytest.approx(11 / 12)),
        ("u1", "colour"): ("blue", 11, pytest.approx(11 / 23)),
        ("u1", "tag"): ("night", 11, pytest.approx(11 / 12)),
    }


def test_a_build_of_many_dates_holds_the_same_marts_as_one_date_at_a_time(built, tmp_path):
    """Running sums (a window of dates in one call) against the direct sum (one date a call)."""
    paths, _ = built
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDS_HOME", str(tmp_path))
        together = SandsPaths.from_env()
        together.ensure_local_dirs()
        write_marketplace(together.lake)
        result = run_feature_build(DAY1.isoformat(), DAY2.isoformat(), DagsterInstance.ephemeral())
    assert result.success
    for model in ("user_affinity", "user_feature_snapshots"):
        one_call = model_rows(together.warehouse_db, model, DAY1, DAY2)
        assert one_call.num_rows > 0
        assert one_call.equals(model_rows(paths.warehouse_db, model, DAY1, DAY2)), model


def test_artwork_popularity_conversion_and_content(built):
    paths, _ = built
    works = rows(paths, ARTWORK_FEATURES, "artwork_id")
    a1, a2 = works[("a1", DAY1)], works[("a2", DAY1)]
    assert (a1["n_view_1d"], a1["n_click_1d"], a1["n_purchase_1d"]) == (1, 1, 1)
    assert (a1["click_rate_7d"], a1["purchase_rate_7d"], a1["revenue_28d"]) == (1.0, 1.0, 100.0)
    assert a1["age_days"] == pytest.approx(18.0)
    assert (a1["style"], a1["medium"], a1["n_colours"], a1["price"]) == ("cubism", "oil", 2, 100.0)
    assert (a2["n_view_1d"], a2["age_days"]) == (1, pytest.approx(0.5))
    a1_2, a2_2 = works[("a1", DAY2)], works[("a2", DAY2)]
    assert (a1_2["n_view_7d"], a1_2["click_rate_7d"], a1_2["price"]) == (2, 0.5, 80.0)
    assert (a2_2["n_view_7d"], a2_2["n_favourite_7d"], a2_2["favourite_rate_7d"]) == (2, 1, 0.5)


def test_style_and_medium_shares_of_the_marketplace_conversions(built):
    paths, _ = built
    works = rows(paths, ARTWORK_FEATURES, "artwork_id")
    a1, a2 = works[("a1", DAY1)], works[("a2", DAY1)]
    # Day 1's one conversion was a1's purchase: cubism (and oil) took all of it, pop-art none.
    assert (a1["style_conversion_share_1d"], a1["medium_conversion_share_1d"]) == (1.0, 1.0)
    assert (a2["style_conversion_share_1d"], a2["style_conversion_share_7d"]) == (0.0, 0.0)
    # Day 2: no conversion that day (the late favourite counts on day 1's date); over the week
    # a1's purchase and a2's favourite split it evenly.
    a1_2, a2_2 = works[("a1", DAY2)], works[("a2", DAY2)]
    assert (a1_2["style_conversion_share_1d"], a1_2["style_conversion_share_7d"]) == (0.0, 0.5)
    assert a2_2["style_conversion_share_7d"] == 0.5


def test_feature_materializations_record_version_rows_and_schema_hash(built):
    _, result = built
    events = {e.asset_key: e.materialization for e in result.get_asset_materialization_events()}
    published = events[AssetKey("user_features")]
    meta = {k: v.value for k, v in published.metadata.items()}
    assert meta["delta_version"] == 1
    assert meta["dagster/row_count"] == 3  # u1 on both days, u2 on day 2
    assert len(meta["schema_hash"]) == 16
    assert published.tags["dagster/data_version"] == f"v1-{meta['schema_hash']}"


def test_the_next_window_reuses_dbt_s_partial_parse(built):
    paths, _ = built
    log = (Path(paths.warehouse) / "dbt-target" / "dbt.log").read_text()
    invocations = log.split("Running with dbt=")[1:]
    assert len(invocations) == 2  # one dbt call per day
    # The window reaches dbt at execution only; a re-parse costs seconds on every daily run.
    assert "Unable to do partial parsing" not in invocations[1]


def test_dbt_tests_are_asset_checks_and_error_severity_blocks():
    graph = build_defs().resolve_asset_graph()

    def spec(asset: str, name: str):
        return graph.get_check_spec(AssetCheckKey(AssetKey(asset), name))

    assert spec("stg_interactions", "unique_stg_interactions_event_id").blocking
    assert spec("user_feature_snapshots", "window_counts_nested_user_feature_snapshots_").blocking
    relationship = "relationships_stg_interactions_user_id__user_id__ref_stg_users_"
    assert not spec("stg_interactions", relationship).blocking  # severity: warn


def test_a_failing_dbt_test_stops_the_day_before_its_features_are_published(paths):
    write_marketplace(paths.lake)
    # Planted: bronze with a duplicated event id (ingestion would have rejected it).
    write_events(
        paths.lake,
        DAY1,
        [("e1", "u1", "a1", "view", at(1, 8), None), ("e1", "u1", "a1", "view", at(1, 9), None)],
    )
    result = run_feature_build(DAY1.isoformat(), DAY1.isoformat(), DagsterInstance.ephemeral())
    assert not result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert "unique_stg_interactions_event_id" in failed
    assert DeltaTable.is_deltatable(USER_FEATURES.uri(paths.lake)) is False
    # The step's error (under Dagster's wrapper) names the failed node on one line.
    failure = next(e for e in result.all_events if e.is_step_failure)
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "DbtBuildError"
    assert cause.message.startswith("resources.dbt_in_process.DbtBuildError: dbt build failed: ")
    assert "test.sands.unique_stg_interactions_event_id." in cause.message.splitlines()[0]


def test_events_without_reference_feeds_stop_with_one_line_naming_what_to_land(paths):
    write_events(paths.lake, DAY1, [("e1", "u1", "a1", "view", at(1, 8), None)])
    write_users(paths.lake, [{"user_id": "u1", "signup_ts": at(1)}])
    result = run_feature_build(DAY1.isoformat(), DAY1.isoformat(), DagsterInstance.ephemeral())
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert message.startswith("dagster._core.definitions.events.Failure: no artworks have been")
    assert "land the reference feeds (landing/users/, landing/artworks/" in message


def test_long_windows_are_cut_into_consecutive_dbt_calls_oldest_first():
    assert day_windows(date(2026, 9, 1), date(2026, 9, 5), 2) == [
        (date(2026, 9, 1), date(2026, 9, 2)),
        (date(2026, 9, 3), date(2026, 9, 4)),
        (date(2026, 9, 5), date(2026, 9, 5)),
    ]
    assert day_windows(date(2026, 9, 1), date(2026, 9, 1), 15) == [(DAY1, DAY1)]


LATE1, LATE2 = date(2026, 9, 29), date(2026, 9, 30)
EXPORTED = datetime(2026, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def later(later_build):
    return later_build[1]


@pytest.fixture(scope="module")
def later_build(built):
    """Four weeks on, two more landing days built in one dbt call: day 1's events (and the late
    favourite, which happened on day 1) have left the 28-day window on 09-29, day 2's on 09-30."""
    paths, _ = built
    # A second spelling of street-art (first listed on day 2 as a3's) and a user who types it so.
    write_artworks(paths.lake, [{"artwork_id": "a4", "created_ts": at(28), "style": "Street-Art"}])
    write_users(paths.lake, [{"user_id": "u3", "signup_ts": at(28), "interests": ["STREET-ART"]}])
    # A profile and a listing stamped with a later export date, as converted histories have.
    write_users(paths.lake, [{"user_id": "u4", "signup_ts": EXPORTED}])
    write_artworks(paths.lake, [{"artwork_id": "a5", "created_ts": EXPORTED, "style": "cubism"}])
    # A signup kept more finely than its first event: half a second after it.
    write_users(paths.lake, [{"user_id": "u5", "signup_ts": at(30, 9) + timedelta(seconds=0.5)}])
    write_events(
        paths.lake,
        LATE1,
        [
            ("e8", "u1", "a1", "click", at(29, 8), None),
            ("e11", "u4", "a5", "view", at(29, 10), None),
        ],
    )
    write_events(
        paths.lake,
        LATE2,
        [
            ("e9", "u2", "a2", "click", at(30, 9), None),
            # Landed after its day had left the window: counts for no feature date.
            ("e10", "u2", "a1", "purchase", at(1, 20), 100.0),
            ("e12", "u5", "a2", "view", at(30, 9), None),
        ],
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDS_HOME", paths.home)
        result = run_feature_build(
            LATE1.isoformat(), LATE2.isoformat(), DagsterInstance.ephemeral()
        )
    assert result.success
    return result, rows(paths, USER_FEATURES, "user_id")


def test_engagement_leaves_the_affinities_when_its_day_leaves_the_window(later):
    # 09-29: day 2's a2 view (pop-art, 1) is still in, the new a1 click (cubism, 2) joins it.
    assert (later[("u1", LATE1)]["top_style"], later[("u1", LATE1)]["top_style_share"]) == (
        "cubism",
        pytest.approx(2 / 3),
    )
    assert (later[("u2", LATE1)]["top_style"], later[("u2", LATE1)]["top_style_share"]) == (
        "cubism",
        1.0,
    )
    # 09-30, in the same dbt call: day 2 has left; the 29-day-late purchase never counted.
    assert later[("u1", LATE2)]["top_style_share"] == 1.0
    assert (later[("u2", LATE2)]["top_style"], later[("u2", LATE2)]["top_style_share"]) == (
        "pop-art",
        1.0,
    )


def test_a_style_spelt_two_ways_is_declared_in_the_spelling_the_catalogue_had_first(later):
    # Its artworks carry that spelling, and the ranker compares the declared style exactly.
    assert later[("u3", LATE1)]["declared_style"] == "street-art"


def test_a_user_and_an_artwork_stamped_after_their_first_event_are_known_from_that_event(
    built, later
):
    # Without it, nobody in such a history ever has features, and every day's models fail.
    paths, _ = built
    assert ("u4", date(2026, 9, 28)) not in later
    assert later[("u4", LATE1)]["tenure_days"] == pytest.approx(14 / 24)
    artworks = rows(paths, ARTWORK_FEATURES, "artwork_id")
    assert ("a5", date(2026, 9, 28)) not in artworks
    assert artworks[("a5", LATE1)]["n_view_1d"] == 1


def test_an_event_a_moment_before_its_declared_signup_is_precision_not_a_warning(later_build):
    result, _ = later_build
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    signed_up = checks["events_before_their_user_signed_up"]
    # u4's view, 14 hours before its export date, and u2's late purchase, 14 hours before its
    # signup; not u5's view, half a second before.
    assert not signed_up.passed and signed_up.metadata[DBT_FAILED_ROWS].value == 2
