"""Ingestion runs launched outside the sensor: their reject budget, and what counts as a failure."""

from __future__ import annotations

from dagster import DagsterInstance

from dagster_project.definitions import build_defs
from dagster_project.runner import (
    QUIET,
    failed_only_on_reject_budget,
    ingestion_run_config,
    run_ingestion,
)
from tests.conftest import DAY, drop, events_table, ts

# Two good events and one of an unknown type: a third of the drop is rejected.
ROWS = [
    ("e1", "u1", "a1", "view", ts(DAY, 9), None),
    ("e2", "u1", "a1", "click", ts(DAY, 9, 1), None),
]
HOVER = [
    {
        "event_id": "e3",
        "user_id": "u1",
        "artwork_id": "a1",
        "event_type": "hover",
        "event_ts": "2026-09-02T10:00:00Z",
    }
]


def test_the_budget_goes_to_each_ingestion_asset_the_job_runs():
    defs = build_defs()
    daily, reference = (defs.resolve_job_def(n) for n in ("daily_ingestion", "reference_ingestion"))
    budget = {"config": {"max_reject_share": 0.5}}
    assert ingestion_run_config(daily, 0.5)["ops"] == {"raw_interactions": budget}
    assert ingestion_run_config(reference, 0.5)["ops"] == {"artworks": budget, "users": budget}
    assert ingestion_run_config(daily, None) == QUIET


def test_a_drop_over_the_budget_fails_only_on_it_and_a_wider_budget_lets_it_through(paths):
    drop(paths.landing, f"interactions/{DAY}/events.parquet", events_table(ROWS))
    drop(paths.landing, f"interactions/{DAY}/feed.jsonl", HOVER)
    instance = DagsterInstance.ephemeral()
    _, day = run_ingestion([DAY.isoformat()], instance)
    assert not day.success and failed_only_on_reject_budget(day)
    _, day = run_ingestion([DAY.isoformat()], instance, max_reject_share=0.5)
    assert day.success
