"""Failed runs told one line per step or blocking check; runs a killed process left STARTED."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    Failure,
    MaterializeResult,
    asset,
    define_asset_job,
    job,
    op,
)
from dagster._core.events import EngineEventData
from dagster._core.instance.config import dagster_instance_config

from dagster_project.failures import (
    LaunchedRuns,
    fail_orphaned_runs,
    process_alive,
    worker_pid,
)
from dagster_project.runner import INSTANCE_YAML, QUIET, RUN_MONITORING_YAML, instance_config
from sands.settings import SandsPaths


def _checked(name: str, metadata: dict[str, object]):
    """An asset whose blocking check `name` fails with `metadata`."""

    @asset(name=name, check_specs=[AssetCheckSpec(name, asset=name, blocking=True)])
    def _asset() -> MaterializeResult:
        result = AssetCheckResult(check_name=name, passed=False, metadata=metadata)
        return MaterializeResult(check_results=[result])

    return _asset


BUDGET = {"reject_share": 0.2, "max_reject_share": 0.05, "reasons": "| a |\n| b |"}
reject_rate_within_budget = _checked("reject_rate_within_budget", BUDGET)
promotion_gate = _checked("promotion_gate", {"criteria": "| rule | held |\n|---|---|"})


@op
def boom() -> None:
    raise RuntimeError("disk on fire\nsecond line")


@op
def refuse() -> None:
    raise Failure("no purchase events in the last 7 landing days: nothing to label")


@op
def undecodable() -> None:
    import json

    json.loads("{")


@op
def fine() -> None:
    """Succeeds."""


@job
def crash() -> None:
    boom()


@job
def calm() -> None:
    fine()


@job
def refused() -> None:
    refuse()
    undecodable()


DEFS = Definitions(
    assets=[reject_rate_within_budget, promotion_gate],
    jobs=[
        crash,
        calm,
        refused,
        define_asset_job("budget", ["reject_rate_within_budget"]),
        define_asset_job("gate", ["promotion_gate"]),
    ],
)


@pytest.fixture(scope="module")
def instance():
    """An in-memory instance: the failures read its event log, like SANDS_HOME's on disk."""
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def run(instance: DagsterInstance, name: str):
    """Execute one of the jobs above in process, as the CLI does."""
    return DEFS.resolve_job_def(name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET
    )


def test_a_crash_and_a_blocking_check_are_told_in_one_line_each_a_gate_verdict_is_not(
    instance, tmp_path
):
    before = run(instance, "crash")
    launched = LaunchedRuns(instance)
    crashed, over, rejected = (run(instance, name) for name in ("crash", "budget", "gate"))
    assert worker_pid(instance, crashed.run_id) == os.getpid()
    failures = launched.failures(tmp_path)
    assert [(f.run_id, f.what) for f in failures] == [
        (crashed.run_id, "step boom"),
        (over.run_id, "check reject_rate_within_budget:reject_rate_within_budget"),
    ]
    assert before.run_id not in {f.run_id for f in failures} and not rejected.success
    crash_line, budget_line = (f.line() for f in failures)
    assert f"run {crashed.run_id}: step boom failed: RuntimeError: disk on fire" in crash_line
    assert "reject_share=0.2" in budget_line and "max_reject_share=0.05" in budget_line
    assert "\n" not in crash_line + budget_line
    # The full log is the run's events as text, the failure's stack included.
    log = Path(failures[0].log).read_text()
    assert "STEP_FAILURE" in log and "second line" in log and "Stack Trace" in log


def test_a_deliberate_failure_is_its_message_and_other_errors_keep_only_their_class_name(
    instance, tmp_path
):
    launched = LaunchedRuns(instance)
    run(instance, "refused")
    lines = {f.what: f.line() for f in launched.failures(tmp_path)}
    assert (
        "step refuse failed: no purchase events in the last 7 landing days" in lines["step refuse"]
    )
    assert "step undecodable failed: JSONDecodeError: Expecting" in lines["step undecodable"]
    assert (
        "dagster._core" not in "".join(lines.values())
        and "json.decoder" not in lines["step undecodable"]
    )


def started_run(instance: DagsterInstance, pid: int) -> str:
    """A run that says STARTED, executed (its engine event says) by process `pid`."""
    started = instance.create_run_for_job(job_def=crash, status=DagsterRunStatus.STARTED)
    message = f"Executing steps in process (pid: {pid})"
    instance.report_engine_event(message, started, EngineEventData.in_process(pid))
    return started.run_id


def test_runs_a_killed_process_left_started_are_failed_and_live_ones_kept(instance):
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan, live = started_run(instance, gone.pid), started_run(instance, os.getpid())
    told = fail_orphaned_runs(instance)
    assert len(told) == 1 and orphan in told[0] and f"pid {gone.pid}" in told[0]
    assert instance.get_run_by_id(orphan).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert fail_orphaned_runs(instance) == []


def test_a_pid_reused_by_a_newer_process_is_not_the_run_worker():
    assert process_alive(os.getpid(), since=1e10)
    assert not process_alive(os.getpid(), since=0.0)


def test_the_instance_monitors_runs_and_older_homes_gain_it(tmp_path):
    fresh = SandsPaths.from_env({"SANDS_HOME": str(tmp_path / "fresh")})
    oldest = SandsPaths.from_env({"SANDS_HOME": str(tmp_path / "oldest")})
    old = SandsPaths.from_env({"SANDS_HOME": str(tmp_path / "old")})
    for home, text in ((oldest, INSTANCE_YAML), (old, INSTANCE_YAML + RUN_MONITORING_YAML)):
        Path(home.dagster_home).mkdir(parents=True)
        Path(home.dagster_home, "dagster.yaml").write_text(text)
    for home in (fresh, oldest, old):
        config, _ = dagster_instance_config(str(instance_config(home).parent))
        assert config["event_log_storage"]["class"] == "PooledSqliteEventLogStorage"
        assert config["run_monitoring"] == {
            "enabled": True,
            "start_timeout_seconds": 180,
            "max_resume_run_attempts": 0,  # the default launcher cannot resume a run
            "poll_interval_seconds": 60,
        }
        assert config["concurrency"]["pools"]["default_limit"] == 1
