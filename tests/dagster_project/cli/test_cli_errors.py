"""The CLI's exit-code contract: a bad argument is one line and exit 2; a failed run, blocking
check or unusable SANDS_HOME is one line each and exit 1; `sands --debug` shows the traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from typer.testing import CliRunner

from dagster_project.cli import app
from dagster_project.runner import instance_for
from sands.settings import SandsPaths, SettingError
from tests.builders.bronze import write_events
from tests.dagster_project.test_failures import run, started_run

runner = CliRunner()
NOON = datetime(2026, 9, 1, 12, tzinfo=UTC)
TINY = ["--events-per-day", "20", "--initial-users", "5", "--initial-artworks", "5"]


def lines(result) -> list[str]:
    return result.output.strip().splitlines()


@pytest.mark.parametrize(
    ("args", "told"),
    [
        (["ingest", "--day", "2026-13-45"], "--day '2026-13-45' is not a day: expected YYYY-MM-DD"),
        (["simulate", "--start", "2026-13-45"], "--start '2026-13-45' is not a day: expected"),
        (["features", "--start", "2026-13-45"], "--start '2026-13-45' is not a day: expected"),
        (["features", "--start", "2026-09-05", "--end", "2026-09-01"], "is after --end 2026-09-01"),
        (["simulate", "--scenario-day", "-5"], "--scenario-day -5: Input should be greater than"),
        (["simulate", "--days", "3", "--scenario-day", "3"], "--scenario-day 3 is past the last"),
        (["simulate", "--days", "0"], "--days 0: Input should be greater than or equal to 1"),
        (["simulate", "--events-per-day", "-1"], "--events-per-day -1: Input should be greater"),
        (["simulate", "--seed", "-1"], "--seed -1: Input should be greater than or equal to 0"),
        (["demo", "--shift-day", "-5"], "--shift-day -5: Input should be greater than or equal"),
        (["demo", "--days", "4", "--shift-day", "4"], "--shift-day 4 is past the last day index"),
        (["demo", "--scenario", "apocalypse"], "unknown scenario 'apocalypse': use steady"),
        (["train", "--trees", "0"], "--trees 0: Input should be greater than or equal to 1"),
        (["replay", "--landing", "elsewhere", "--start", "03/01/2019"], "--start '03/01/2019'"),
        (["replay", "--landing", "nowhere/at/all"], "--landing nowhere/at/all: no such folder"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it_and_exits_2(paths, args, told):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(lines(result)) == 1 and told in lines(result)[0], result.output


def test_a_history_without_reference_feeds_is_one_line_before_anything_runs(paths, tmp_path):
    day = tmp_path / "history" / "interactions" / "1998-03-01"
    day.mkdir(parents=True)
    (day / "ratings.csv").write_text("event_id,user_id,artwork_id,event_type,event_ts\n")
    (tmp_path / "history" / "users").mkdir()
    (tmp_path / "history" / "users" / "users.csv").write_text("user_id\n")
    result = runner.invoke(app, ["replay", "--landing", str(tmp_path / "history")])
    assert result.exit_code == 2 and len(lines(result)) == 1, result.output
    assert (
        "no artworks/ files; the loop reads every event against its user and artwork"
        in (lines(result)[0])
    )
    assert not Path(paths.lake, "bronze").exists()  # nothing ran


def test_replaying_days_this_home_already_landed_is_one_line_before_anything_runs(paths, tmp_path):
    history = tmp_path / "history"
    for day in ("1998-03-01", "1998-03-02", "1998-03-03"):
        for root in (history, Path(paths.landing)):
            if root == history or day != "1998-03-03":  # the home holds the first two days
                (root / "interactions" / day).mkdir(parents=True)
                (root / "interactions" / day / "ratings.csv").write_text("event_id\n")
    for feed in ("users", "artworks"):
        (history / feed).mkdir()
        (history / feed / f"{feed}.csv").write_text(f"{feed[:-1]}_id\n")
    result = runner.invoke(app, ["replay", "--landing", str(history), "--start", "1998-03-02"])
    assert result.exit_code == 2 and len(lines(result)) == 1, result.output
    assert (
        "1998-03-02 already landed in this SANDS_HOME: the loop would have nothing new to do on "
        "it; replay into an empty SANDS_HOME, or go on from --start 1998-03-03"
    ) in lines(result)[0]
    assert not Path(paths.lake, "bronze").exists()  # nothing ran


def test_a_day_over_the_reject_budget_is_one_failed_row_and_one_line_naming_its_rules(paths):
    day = Path(paths.landing, "interactions", "2026-09-02")
    day.mkdir(parents=True)
    (day / "events.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts\n"
        "e1,u1,a1,view,2026-09-02T10:00:00Z\n"
        "e2,u1,a1,hover,2026-09-02T10:01:00Z\n"
    )
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1, result.output
    rows = [line for line in lines(result) if line.startswith("│ 2026-09-02")]
    assert len(rows) == 1 and "failed" in rows[0]
    (error,) = [line for line in lines(result) if line.startswith("error: ")]
    assert "1 of 2 rows rejected (50.0%, budget 5.0%): event_type:isin 1" in error


def test_a_feed_folder_that_cannot_be_listed_fails_ingest_after_the_rest_lands(paths):
    day = Path(paths.landing, "interactions", "2026-09-02")
    day.mkdir(parents=True)
    (day / "events.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts\ne1,u1,a1,view,2026-09-02T10:00:00Z\n"
    )
    Path(paths.landing, "users").write_text("a file where the feed's folder should be")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1, result.output
    (row,) = [line for line in lines(result) if line.startswith("│ 2026-09-02")]
    assert "ok" in row  # the day landed; only the unlisted feed failed the command
    (error,) = [line for line in lines(result) if line.startswith("error: ")]
    assert error.startswith("error: users: cannot be listed (NotADirectoryError")
    assert error.endswith("; its files are not ingested")
    assert Path(paths.lake, "bronze", "interactions").exists()


def test_a_file_quarantined_whole_fails_ingest_after_the_rest_of_its_day_lands(paths):
    day = Path(paths.landing, "interactions", "2026-09-02")
    day.mkdir(parents=True)
    (day / "good.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts\ne1,u1,a1,view,2026-09-02T10:00:00Z\n"
    )
    (day / "bad.csv").write_text(
        "event_id,user_id,artwork_id,event_type,event_ts\ne2,u1,a1,view,2026-09-02T10:00:00Z,x\n"
    )
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1, result.output
    (row,) = [line for line in lines(result) if line.startswith("│ 2026-09-02")]
    assert "1 file unread" in row and "│ 1 " in row  # e1 landed
    (error,) = [line for line in lines(result) if line.startswith("error: ")]
    assert "bad.csv" in error and "file:unreadable" in error


def test_a_reference_row_sent_twice_is_told_so_the_ingest_table_adds_up(paths):
    users = Path(paths.landing, "users")
    users.mkdir(parents=True)
    row = "u1,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z\n"
    (users / "users.csv").write_text("user_id,signup_ts,updated_ts\n" + row + row)
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    (table_row,) = [line for line in lines(result) if line.startswith("│ users")]
    assert [cell.strip() for cell in table_row.split("│")[2:5]] == ["ok", "2", "1"]
    assert (
        "users: 1 of 2 rows repeated an earlier row in every column (the same fact sent "
        "again): kept once, not rejected" in lines(result)
    )


def test_a_day_without_landing_files_or_an_empty_window_is_one_line(paths):
    assert runner.invoke(app, ["simulate", "--days", "2", *TINY]).exit_code == 0
    missing = runner.invoke(app, ["ingest", "--day", "2030-01-01"])
    assert missing.exit_code == 2 and len(lines(missing)) == 1
    assert lines(missing)[0].endswith(
        f"ingest: --day 2030-01-01 has no landing files in {paths.landing}: its days are "
        "2026-09-01..2026-09-02"
    )
    late = runner.invoke(app, ["features", "--start", "2026-09-05"])
    assert late.exit_code == 2 and "empty window 2026-09-05..2026-09-02" in late.output


def test_features_for_days_without_events_say_so_in_one_line(paths):
    assert runner.invoke(app, ["simulate", "--days", "1", *TINY]).exit_code == 0
    window = ["--start", "2026-09-01", "--end", "2026-09-01"]
    early = runner.invoke(app, ["features", *window])
    assert early.exit_code == 1 and lines(early) == [
        f"error: no bronze interactions at {paths.lake}/bronze/interactions: `sands ingest` "
        "lands the landing zone first"
    ]
    assert runner.invoke(app, ["ingest"]).exit_code == 0
    told = "no feature rows for {0}..{0}: no events landed on those days"
    landed = runner.invoke(app, ["features", *window])
    assert landed.exit_code == 0 and told.format("2026-09-01") not in lines(landed)
    empty = runner.invoke(app, ["features", "--start", "2026-09-02", "--end", "2026-09-02"])
    assert empty.exit_code == 0, empty.output
    assert told.format("2026-09-02") in lines(empty)


def test_features_with_nothing_landed_is_one_line(paths):
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 1
    assert lines(result) == [
        f"error: no landing days in {paths.landing}: `sands simulate` writes some"
    ]


@pytest.mark.parametrize("command", [["status"], ["ingest"], ["simulate", "--days", "1"]])
@pytest.mark.parametrize("kind", ["a file", "a read-only folder"])
def test_an_unusable_sands_home_is_one_line_and_exits_1(tmp_path, monkeypatch, command, kind):
    home = tmp_path / "home" if kind == "a file" else Path("/proc")  # root may write elsewhere
    if kind == "a file":
        home.write_text("not a folder")
    monkeypatch.setenv("SANDS_HOME", str(home))
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and len(lines(result)) == 1, result.output
    assert lines(result)[0].startswith(f"error: SANDS_HOME={home} is ")
    assert "expected a folder" in lines(result)[0]


def test_status_of_a_home_that_does_not_exist_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDS_HOME", str(tmp_path / "typo"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "typo").exists()


def test_debug_shows_the_traceback_instead_of_the_line(tmp_path, monkeypatch):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("SANDS_HOME", str(tmp_path / "home"))
    assert isinstance(runner.invoke(app, ["--debug", "status"]).exception, SettingError)
    assert isinstance(runner.invoke(app, ["status"]).exception, SystemExit)


def test_an_unexpected_error_is_one_line_with_its_type(paths, monkeypatch):
    def broken(_):
        raise RuntimeError("disk on fire\nthe rest of the story")

    monkeypatch.setattr("dagster_project.cli.data._landing_days", broken)
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 1
    assert lines(result) == [
        "error: RuntimeError: disk on fire (`sands --debug features` shows where)"
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandsPaths]:
    """One SANDS_HOME for the tests that run small jobs: its Dagster instance takes seconds to
    make, and each command tells only the runs it launched."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDS_HOME", str(tmp_path_factory.mktemp("cli") / "home"))
        patch.setenv("DAGSTER_HOME", "unset")  # instance_for sets it; restored after
        for var in ("SANDS_LANDING_URI", "SANDS_LAKE_URI", "SANDS_ENV", "SANDS_PARTITIONS_START"):
            patch.delenv(var, raising=False)
        yield SandsPaths.from_env()


def fake(job: str):
    """A stand-in for a runner function: runs a small job of `test_failures` on its instance."""

    def _run(*args, **kwargs):
        instance = next(a for a in (*args, *kwargs.values()) if isinstance(a, DagsterInstance))
        result = run(instance, job)
        on_done = next((a for a in args if callable(a)), None)
        if on_done:  # run_ingestion tells each run as it ends
            on_done("users+artworks", result)
        return [result] if on_done else result

    return _run


@pytest.mark.parametrize(
    ("command", "function", "job", "told"),
    [
        (["ingest"], "run_ingestion", "budget", "check reject_rate_within_budget:reject_"),
        (
            ["features", "--start", "2026-09-01", "--end", "2026-09-02"],
            "run_feature_build",
            "crash",
            "step boom failed",
        ),
        (["training-data"], "run_training_data", "crash", "step boom failed"),
        (["train"], "run_model_training", "crash", "step boom failed: RuntimeError: disk on fire"),
        (["retrain"], "run_model_training", "budget", "check reject_rate_within_budget"),
    ],
)
def test_a_failed_run_fails_the_command_one_line_per_failure(
    home, monkeypatch, command, function, job, told
):
    monkeypatch.setattr(f"dagster_project.runner.{function}", fake(job))
    if command[0] == "features":  # it refuses a lake without events before any run
        write_events(home.lake, date(2026, 9, 1), [("e1", "u1", "a1", "view", NOON, None)])
    result = runner.invoke(app, command)
    assert result.exit_code == 1, result.output
    (line,) = [line for line in lines(result) if line.startswith("error: run ")]
    assert told in line
    log = Path(line.split("(full log: ")[1].removesuffix(")"))
    assert log.is_file() and log.is_relative_to(home.home)


def test_a_rejected_challenger_is_a_verdict_not_a_failure(home, monkeypatch):
    monkeypatch.setattr("dagster_project.runner.run_model_training", fake("gate"))
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 0, result.output
    assert "Gate rejected the challenger" in result.output and "error:" not in result.output


def test_a_run_a_killed_sands_left_started_is_failed_by_the_next_command(home, monkeypatch):
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = started_run(instance_for(home), gone.pid)
    monkeypatch.setattr("dagster_project.runner.run_training_data", fake("calm"))
    result = runner.invoke(app, ["training-data"])
    assert result.exit_code == 0, result.output
    assert f"run {orphan} (crash) was left STARTED: its process (pid {gone.pid}) is gone" in (
        result.output.replace("\n", "")
    )
    assert instance_for(home).get_run_by_id(orphan).status == DagsterRunStatus.FAILURE
