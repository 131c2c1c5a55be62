"""A play's report is findable in the Dagster UI: a `backtest_report` materialization with
the page's path and the summary, and the play's runs tagged with it."""

import math

from dagster import AssetKey, DagsterInstance, job, op

from dagster_project.backtest_report import (
    BACKTEST_REPORT,
    PLAY_TAG,
    REPORT_TAG,
    record,
    report,
)
from dagster_project.runner import instance_for
from dagster_project.scenario import DayRecord
from sands.evaluation.backtest import write_report


@op
def nothing() -> None:
    """A step that does nothing: the play's runs only need to exist to be tagged."""


@job
def a_day() -> None:
    nothing()


def _records(run_ids: list[str]) -> list[DayRecord]:
    return [
        DayRecord(day="2026-09-01", runs=len(run_ids), run_ids=run_ids, triggers=["scheduled"]),
        DayRecord(
            day="2026-09-02",
            serving=1,
            frozen=1,
            champion=2,
            champion_ndcg=0.2,
            frozen_ndcg=0.1,
            popularity_ndcg=0.05,
            gate=True,
        ),
        DayRecord(day="2026-09-03", serving=2, frozen=1, champion=2, champion_ndcg=math.nan),
    ]


def test_the_report_is_a_runless_materialization_and_tags_the_plays_runs(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        run_id = a_day.execute_in_process(instance=instance).run_id
        records = _records([run_id, "a-run-of-another-instance"])
        files = write_report(tmp_path, records, "replay", landing="/history")
        record(instance, files, [run_id, "a-run-of-another-instance"])

        event = instance.get_latest_materialization_event(BACKTEST_REPORT)
        assert event is not None and event.run_id == ""  # reported without a run
        materialization = event.asset_materialization
        metadata = materialization.metadata
        assert metadata["report"].value == str(files.html)
        assert metadata["report_url"].value == files.html.resolve().as_uri()
        assert metadata["csv"].value == str(files.csv)
        assert metadata["labelled_days"].value == 1
        assert metadata["days_without_labels"].value == 2  # the first day's too
        assert metadata["ndcg_served"].value == 0.2
        assert "| every played day | 3 | 1 | 1 | 0.2000 | 0.1000 | 0.0500 |" in (
            metadata["summary"].value
        )
        assert metadata["first_run"].value == run_id
        assert materialization.description == (
            "mean of 1 labelled day (1 without labels skipped): served 0.2000, frozen 0.1000, "
            "popularity 0.0500"
        )
        tags = instance.get_run_by_id(run_id).tags
        assert tags[PLAY_TAG] == files.label and tags[REPORT_TAG] == str(files.html)


def test_report_writes_under_sands_home_and_records_in_its_instance(paths, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", paths.dagster_home)
    files = report(paths, _records([]), "scenario-taste-shift", shift=1, scenario="taste-shift")
    assert files.html.parent.as_posix() == paths.reports
    assert files.html.name.startswith("scenario-taste-shift-")
    assert files.summary["shift_date"] == "2026-09-02"
    event = instance_for(paths).get_latest_materialization_event(AssetKey("backtest_report"))
    assert event.asset_materialization.metadata["report"].value == str(files.html)
    # From the change on: 2 days, one labelled.
    assert event.asset_materialization.metadata["days"].value == 3
    assert event.asset_materialization.metadata["labelled_days"].value == 1
