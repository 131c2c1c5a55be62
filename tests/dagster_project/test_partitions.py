"""Daily partitions follow the landing zone: any history, 2019 included, with no setting; a bad
or too-late `SANDS_PARTITIONS_START` and rejected reference rows are told in one line."""

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, SensorResult, build_sensor_context
from deltalake import DeltaTable
from typer.testing import CliRunner

from dagster_project.cli import app
from dagster_project.definitions import build_defs
from dagster_project.runner import instance_for
from resources.storage import LandingZoneResource
from sands.ingest import landing
from sands.ingest.partitions import home_partition_range
from sands.sim.marketplace import Marketplace, SimulationConfig, write_drop
from tests.builders.runs import assert_made_by_automation

START = date(2019, 3, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]
runner = CliRunner()


def simulate(root: str, days: int = 3) -> None:
    """A small marketplace whose history lies in March 2019."""
    config = SimulationConfig(
        seed=11,
        start=START,
        days=days,
        events_per_day=1_500,
        initial_users=150,
        initial_artworks=60,
        new_users_per_day=4,
        new_artworks_per_day=2,
    )
    for drop in Marketplace(config).days():
        write_drop(drop, root, None, "parquet")


def bad_users(root: str, count: int = 12) -> None:
    """`count` copies of real user rows without their user_id, dated on the first day: one rule
    (user_id may not be null) rejects them, over the 5% reject budget."""
    fs, base = landing.filesystem(root)
    good = pq.read_table(f"{base}/users/users-{START}.parquet").slice(0, count).to_pylist()
    rows = [{**row, "user_id": None} for row in good]
    landing.write_records(fs, f"{base}/users/users-{START}-broken.jsonl", rows)


def daily_keys(defs, asset: str = "raw_interactions") -> list[str]:
    return defs.resolve_assets_def(AssetKey(asset)).partitions_def.get_partition_keys()


@pytest.fixture(autouse=True)
def no_pinned_start(monkeypatch):
    monkeypatch.delenv("SANDS_PARTITIONS_START", raising=False)


def test_a_fresh_home_partitions_start_at_its_first_landing_day(paths):
    simulate(paths.landing, days=2)
    defs = build_defs()
    for asset in ("raw_interactions", "stg_interactions", "user_features", "artwork_features"):
        keys = daily_keys(defs, asset)
        assert keys[:2] == ["2019-03-01", "2019-03-02"], asset
    assert defs.resolve_job_def("daily_pipeline").partitions_def.get_partition_keys()[0] == (
        "2019-03-01"
    )
    # A recorded history, closed on its last day: nothing but its own days.
    closed = build_defs(partitions=home_partition_range(paths, closed=True))
    assert daily_keys(closed) == ["2019-03-01", "2019-03-02"]
    # The landing sensor of that code location asks for the 2019 days.
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            definitions=closed,
            resources={"landing": LandingZoneResource(root=paths.landing)},
        )
        result = closed.resolve_sensor_def("landing_zone_sensor")(context)
    assert isinstance(result, SensorResult)
    days = sorted(r.partition_key for r in result.run_requests if r.partition_key)
    assert days == ["2019-03-01", "2019-03-02"]


def test_a_malformed_setting_stops_ingest_in_one_line(paths, monkeypatch):
    simulate(paths.landing, days=1)
    monkeypatch.setenv("SANDS_PARTITIONS_START", "1/3/2019")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "SANDS_PARTITIONS_START='1/3/2019'" in lines[0] and "YYYY-MM-DD" in lines[0]


def test_a_landing_day_before_the_pinned_start_stops_ingest_in_one_line(paths, monkeypatch):
    simulate(paths.landing, days=2)
    monkeypatch.setenv("SANDS_PARTITIONS_START", "2019-03-02")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "2019-03-01" in lines[0] and "SANDS_PARTITIONS_START=2019-03-02" in lines[0]
    assert "DagsterUnknownPartitionError" not in result.output


def test_rejected_reference_rows_and_unread_landing_entries_are_told(paths):
    simulate(paths.landing, days=1)
    bad_users(paths.landing)
    # Read as 2019-03-01 by Python, but not the layout: named, not silently left out.
    Path(paths.landing, "interactions", "20190301").mkdir()
    Path(paths.landing, "interactions", "20190301", "events.csv").write_text("x")
    Path(paths.landing, "users", "users.xlsx").write_text("x")
    (day,) = [p for p in Path(paths.landing, "interactions").iterdir() if "-" in p.name]
    (day / "late.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts\nx1,u1,a1,hover,2019-03-01T10:00:00Z\n"
        # The evening of the folder's day in New York: the next day in UTC.
        f"x2,u1,a1,view,{day.name}T21:15:00-05:00\n"
    )
    result = runner.invoke(app, ["ingest"])
    (interactions,) = [line for line in result.output.splitlines() if "raw_interactions" in line]
    assert interactions.startswith(f"raw_interactions {day.name}: 2 of ")
    assert "by the contract (event_ts:after_landing_day 1, event_type:isin 1)" in interactions
    assert "up to 2.2 h past their folder's day (its end is midnight UTC)" in interactions
    unread = [line for line in result.output.splitlines() if "; not ingested" in line]
    assert unread == [
        "interactions/20190301: not a YYYY-MM-DD day folder from 1678-01-01 to 2261-12-31; not "
        "ingested",
        "users/users.xlsx: not .parquet, .csv, .jsonl or .json (or one of them .gz); not ingested",
    ]
    told = [line for line in result.output.splitlines() if line.startswith("users: ")]
    assert len(told) == 1, result.output
    # The blocking budget check failed its run: the command fails, saying which run and check.
    assert result.exit_code == 1
    (failed,) = [line for line in result.output.splitlines() if line.startswith("error: run ")]
    assert "check users:reject_rate_within_budget failed: " in failed and "(full log: " in failed
    assert told[0].startswith("users: 12 of 162 rows rejected by the contract (user_id:")
    assert " 12), quarantined in " in told[0] and "quarantine/users" in told[0]
    assert "over the reject budget" in told[0]
    assert "artworks" not in " ".join(told)
    # The users check failed the run; artworks, written in the same run, are not marked failed.
    rows = {line.split()[1]: line for line in result.output.splitlines() if line[:1] == "│"}
    assert "failed" in rows["users"] and "ok" in rows["artworks"]
    assert "failed" not in rows["artworks"]


def test_a_2019_history_replays_through_the_loop_with_no_setting_and_no_manual_step(
    paths, tmp_path, monkeypatch
):
    """`sands replay` on a recorded landing zone of 2019: the day before --start in bulk, then the
    chosen days one by one through the sensor and automation, the summary under reports/."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    history = str(tmp_path / "history")
    simulate(history, days=4)
    bad_users(history)
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", "2019-03-02", "--days", "2"]
    )
    # The history's users ran over the reject budget: the replay goes on, then fails, saying so.
    assert result.exit_code == 1, result.output
    assert "check users:reject_rate_within_budget failed" in result.output
    # Over budget in the bulk-loaded history: told in one line, and the replay went on.
    assert "users: 12 of " in result.output and "rows rejected by the contract" in result.output
    # 03-01 came in bulk as history, then the chosen days one by one; 03-04 was never staged.
    staged = sorted(p.name for p in Path(paths.landing, "interactions").iterdir())
    assert staged == ["2019-03-01", "2019-03-02", "2019-03-03"]
    assert "2019-03-03" in result.output and "retrain requests" in result.output
    assert "2019-03-04" not in result.output
    instance = instance_for(paths)
    ingested = instance.get_materialized_partitions(AssetKey("raw_interactions"))
    assert ingested == {"2019-03-01", "2019-03-02", "2019-03-03"}
    # The summary as CSV, JSON and an HTML page under reports/, found from the Dagster UI.
    reports = sorted(p.suffix for p in Path(paths.reports).glob("replay-*"))
    assert reports == [".csv", ".html", ".json"] and "Reports:" in result.output
    assert instance.get_latest_materialization_event(AssetKey("backtest_report"))
    assert_made_by_automation(
        paths, "training_examples", "feature_drift", "champion_performance", "ranker"
    )


def test_a_replay_from_the_very_first_day_scores_only_days_with_labels_and_tells_bad_files(
    paths, tmp_path, monkeypatch
):
    """No history before --start, and a last day of views only: neither day has labels of its
    own, so neither is scored (an earlier day's labels scored again would count twice), and the
    summary counts them. A landing file that is not Parquet is quarantined, told in one line, and
    the day goes on."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    history = str(tmp_path / "history")
    simulate(history, days=3)
    for drop in Path(history, "interactions", "2019-03-03").iterdir():
        events = pq.read_table(drop)
        pq.write_table(events.filter(pc.equal(events["event_type"], "view")), drop)
    (day_two,) = Path(history, "interactions", "2019-03-02").iterdir()
    # A user the users feed does not hold, as converted histories often have: told, not fatal.
    ghost = pq.read_table(day_two).slice(0, 1).to_pylist()[0]
    ghost.update(event_id="ghost-1", user_id="ghost", event_type="view", price=None)
    pq.write_table(
        pa.Table.from_pylist([ghost], pq.read_schema(day_two)), day_two.parent / "g.parquet"
    )
    broken = Path(history, "interactions", "2019-03-02", "broken.parquet")
    broken.write_bytes(b"user_id,artwork_id\n\x00 not parquet")
    Path(history, "interactions", "2019-03-02", "events.txt").write_text("x")
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", "2019-03-01", "--days", "3"]
    )
    warned = [line for line in result.output.splitlines() if "dbt test relationships_" in line]
    assert warned and all("user_id" in line and "warned on 1 rows" in line for line in warned)
    assert result.exit_code == 0, result.output
    assert "materialize it first" not in result.output
    told = [line for line in result.output.splitlines() if "could not be read" in line]
    assert len(told) == 1 and "broken.parquet" in told[0] and "file:unreadable" in told[0]
    unread = [line for line in result.output.splitlines() if "; not replayed" in line]
    assert len(unread) == 1 and unread[0].startswith("interactions/2019-03-02/events.txt: not ")
    (report,) = Path(paths.reports).glob("replay-*.json")
    days = {row["day"]: row for row in json.loads(report.read_text())["days"]}
    scored = [day for day, row in days.items() if row["popularity_ndcg"] is not None]
    assert sorted(days) == ["2019-03-01", "2019-03-02", "2019-03-03"]
    assert scored == ["2019-03-02"], result.output
    evidence = days["2019-03-02"]
    assert 0 < evidence["judged_users"] <= evidence["positives"]
    assert days["2019-03-01"]["judged_users"] is None  # not scored: no evidence claimed


def test_a_replay_across_days_when_nothing_landed_scores_the_day_after_on_the_last_snapshot(
    paths, tmp_path, monkeypatch
):
    """Real histories pause: three days without a landing, then a day lands. Its labels and its
    evaluation read the features of the last day that landed (serving still holds them), so the
    day after the pause is judged on a whole catalogue, not on none."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    history = str(tmp_path / "history")
    simulate(history, days=6)
    for day in ("2019-03-02", "2019-03-03", "2019-03-04"):
        for drop in Path(history, "interactions", day).iterdir():
            drop.unlink()
        Path(history, "interactions", day).rmdir()
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", "2019-03-01", "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "no interactions landed on 2019-03-02..2019-03-04" in result.output
    (report,) = Path(paths.reports).glob("replay-*.json")
    after = {row["day"]: row for row in json.loads(report.read_text())["days"]}["2019-03-05"]
    assert after["judged_users"] > 0
    # Popularity ranks a whole catalogue: with none (features past their TTL) it scored 0.
    assert after["popularity_ndcg"] > 0, result.output

    # The same replay again would do nothing on days this home holds: told, and where to go on.
    again = runner.invoke(
        app, ["replay", "--landing", history, "--start", "2019-03-01", "--days", "2"]
    )
    assert again.exit_code == 2 and "go on from --start 2019-03-06" in again.output
    # Going on from there: the loop picks up this home and the new day is run and scored.
    result = runner.invoke(app, ["replay", "--landing", history, "--start", "2019-03-06"])
    assert result.exit_code == 0, result.output
    (report,) = set(Path(paths.reports).glob("replay-*.json")) - {report}
    (going_on,) = json.loads(report.read_text())["days"]
    assert going_on["day"] == "2019-03-06" and going_on["popularity_ndcg"] is not None


def test_a_click_log_replays_labelled_on_its_clicks_with_no_setting(paths, tmp_path, monkeypatch):
    """A history without a favourite or purchase (a click log) has nothing the default labels
    count: the replay labels clicks, says so in one line, and scores its days; the setting is
    the replay's own and does not outlive it."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    monkeypatch.delenv("SANDS_POSITIVE_EVENTS", raising=False)
    history = str(tmp_path / "history")
    simulate(history, days=3)
    for drop in Path(history, "interactions").glob("*/*.parquet"):
        events = pq.read_table(drop)
        pq.write_table(
            events.filter(pc.is_in(events["event_type"], pa.array(["view", "click"]))), drop
        )
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", "2019-03-02", "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    told = [line for line in result.output.splitlines() if "no favourite or purchase" in line]
    assert len(told) == 1 and "SANDS_POSITIVE_EVENTS=click,favourite,purchase" in told[0]
    (report,) = Path(paths.reports).glob("replay-*.json")
    days = json.loads(report.read_text())["days"]
    assert all(day["judged_users"] and day["popularity_ndcg"] is not None for day in days)
    instance = instance_for(paths)
    latest = instance.get_latest_materialization_event(AssetKey("training_examples"))
    assert latest.asset_materialization.metadata["positive_events"].value == (
        "click, favourite, purchase"
    )
    assert "SANDS_POSITIVE_EVENTS" not in os.environ


def test_a_history_whose_events_all_predate_its_feature_log_replays_without_scores(
    paths, tmp_path, monkeypatch
):
    """Every event dated on the first day, landing on later days too (late events): no label day
    has an artwork snapshot before it, so nothing can be ranked and no day is scored. The replay
    says so and finishes; before, scoring the first such day ended it with a ValueError."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    history = str(tmp_path / "history")
    simulate(history, days=3)
    first_noon = datetime(START.year, START.month, START.day, 12, tzinfo=UTC)
    for drop in Path(history, "interactions").glob("*/*.parquet"):
        events = pq.read_table(drop)
        stamps = pa.array([first_noon] * events.num_rows, events["event_ts"].type)
        events = events.set_column(events.schema.get_field_index("event_ts"), "event_ts", stamps)
        pq.write_table(events, drop)
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", str(DAYS[1]), "--days", "5"]
    )
    assert result.exit_code == 0, result.output
    assert f"--days 5: the landing zone holds 2 from {DAYS[1]} on" in result.output
    # Said why (the first day may also have no training set yet, as the automation's ticks
    # fall); the terminal wraps the line anywhere, inside words too.
    said = (
        "What served, every day: no labelled day to score (no positive dated this day (the "
        f"newest, {START}: no artwork had features before the day's labels)"
    )
    assert "".join(said.split()) in "".join(result.output.split())
    assert "emitted no result" not in result.output
    (report,) = Path(paths.reports).glob("replay-*.json")
    days = json.loads(report.read_text())["days"]
    assert [row["popularity_ndcg"] for row in days] == [None, None]


def test_a_challenger_whose_holdout_predates_every_artwork_snapshot_is_rejected_unjudged(
    paths, tmp_path, monkeypatch
):
    """Events dated two and one days before the history's first landing day: the ranker has
    two label days to train and hold out, but no artwork had features by its holdout, so the
    gate cannot rank anything. It rejects the challenger with that reason; nothing deploys."""
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    history = str(tmp_path / "history")
    simulate(history, days=3)
    for back, folder in ((2, DAYS[0]), (1, DAYS[1]), (1, DAYS[2])):
        noon = datetime(START.year, START.month, START.day, 12, tzinfo=UTC) - timedelta(back)
        for drop in Path(history, "interactions", str(folder)).glob("*.parquet"):
            events = pq.read_table(drop)
            stamps = pa.array([noon] * events.num_rows, events["event_ts"].type)
            index = events.schema.get_field_index("event_ts")
            pq.write_table(events.set_column(index, "event_ts", stamps), drop)
    result = runner.invoke(
        app, ["replay", "--landing", history, "--start", str(DAYS[1]), "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    (report,) = Path(paths.reports).glob("replay-*.json")
    days = json.loads(report.read_text())["days"]
    assert [row["champion"] for row in days] == [None, None]
    history = DeltaTable(str(Path(paths.lake, "registry", "champion_history")))
    history = history.to_pyarrow_table().to_pylist()
    rejected = [c["reason"] for c in history if c["action"] == "gate_reject"]
    assert rejected and all(r.startswith("not judged: no artwork has features") for r in rejected)
