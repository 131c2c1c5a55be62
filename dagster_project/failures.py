"""What went wrong in the runs a command launched, one line per failure, and runs a killed
process left STARTED, marked failed.

A failure is a step that failed, or a blocking check (ERROR severity) that did not pass. The
promotion gate is a verdict, not a failure: a rejected challenger fails its run by design.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.events.log import EventLogEntry
from dagster_shared.error import SerializableErrorInfo

VERDICTS = frozenset({"promotion_gate"})
# A blocking check that fails raises this in its step: the check's own line says more.
CHECK_FAILED = "DagsterAssetCheckFailedError"
# Runs whose process may have died: STARTED by an in-process or multiprocess executor.
LIVE_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class RunFailure:
    """One failed step or blocking check of one run, and the file holding the run's full log."""

    run_id: str
    what: str
    why: str
    log: str

    def line(self) -> str:
        return f"run {self.run_id}: {self.what} failed: {self.why} (full log: {self.log})"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _root_cause(error: SerializableErrorInfo) -> str:
    """The innermost cause's first line: the user's exception, not Dagster's wrapper, named by
    its class (`ValueError: ...`); a `Failure` raised on purpose is its message alone."""
    while error.cause is not None:
        error = error.cause
    line = _first_line(error.message)
    # The message starts with the class's dotted path (`json.decoder.JSONDecodeError: ...`).
    qualified = f"{error.cls_name}: "
    if qualified in line:
        cause = line.split(qualified, 1)[1]
        return cause if error.cls_name == "Failure" else qualified + cause
    return line


def _check_reason(metadata: dict) -> str:
    """A check's own reason when it gives one, else its one-line metadata (`k=v, ...`)."""
    values = {key: getattr(value, "value", value) for key, value in metadata.items()}
    for key in ("reason", "error"):
        if values.get(key):
            return _first_line(str(values[key]))
    simple = [
        f"{key}={value}"
        for key, value in values.items()
        if isinstance(value, int | float | str) and "\n" not in str(value)
    ]
    return ", ".join(simple[:4]) or "did not pass"


def _failures_in(entries: list[EventLogEntry]) -> list[tuple[str, str]]:
    """(what, why) per failed step and blocking check; the run itself if it failed otherwise."""
    found: list[tuple[str, str]] = []
    steps_failed = False
    run_error = ""
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            blocking = check.blocking and check.severity == AssetCheckSeverity.ERROR
            if not check.passed and blocking and check.check_name not in VERDICTS:
                name = f"check {check.asset_key.to_user_string()}:{check.check_name}"
                found.append((name, _check_reason(check.metadata)))
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            steps_failed = True
            error = event.step_failure_data.error
            if error is not None and error.cls_name != CHECK_FAILED:
                found.append((f"step {event.step_key}", _root_cause(error)))
        elif event.event_type == DagsterEventType.RUN_FAILURE:
            data = event.job_failure_data
            run_error = _root_cause(data.error) if data and data.error else event.message or ""
    if not steps_failed and run_error:
        found.append(("the run", run_error))
    return found


def _render(entries: list[EventLogEntry]) -> str:
    """The run's event log as text: one line per event, each error with its full stack."""
    lines = []
    for entry in entries:
        stamp = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        event = entry.dagster_event
        kind = event.event_type_value if event else "LOG"
        lines.append(f"{stamp} {entry.step_key or '-'} {kind}: {entry.message}")
        data = event.event_specific_data if event else None
        error = getattr(data, "error", None)
        if isinstance(error, SerializableErrorInfo):
            lines.append(error.to_string())
    return "\n".join(lines) + "\n"


def describe_run(instance: DagsterInstance, run_id: str, log_dir: Path) -> list[RunFailure]:
    """The failures of a run; when there are some, its full log is written to `log_dir`."""
    entries = list(instance.all_logs(run_id))
    found = _failures_in(entries)
    if not found:
        return []
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{run_id}.log"
    log.write_text(_render(entries))
    return [RunFailure(run_id, what, why, str(log)) for what, why in found]


def worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing the run's steps (its executor's first engine event)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value)
    return None


class LaunchedRuns:
    """The runs this process launches from now on: in-process runs carry its pid."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.since = datetime.now(UTC)

    def failed_run_ids(self) -> list[str]:
        """Failed runs created since, oldest first, executed here (or failed before saying
        where): a daemon's runs on the same instance are its own business."""
        wanted = RunsFilter(created_after=self.since, statuses=[DagsterRunStatus.FAILURE])
        records = sorted(self.instance.get_run_records(wanted), key=lambda r: r.create_timestamp)
        ids = [r.dagster_run.run_id for r in records]
        return [i for i in ids if worker_pid(self.instance, i) in (os.getpid(), None)]

    def failures(self, log_dir: Path) -> list[RunFailure]:
        ids = self.failed_run_ids()
        return [f for run_id in ids for f in describe_run(self.instance, run_id, log_dir)]


def _started_at(pid: int) -> float | None:
    """When a process started (Unix time), from /proc on Linux; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/stat").read_text().split("btime", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: start time after boot
    return float(boot) + ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float) -> bool:
    """True when `pid` runs a process started by `since` (a later one reuses a dead pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    started = _started_at(pid)
    return started is None or started <= since + 1


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the runs whose process is gone (kill -9, out of memory) yet which still say
    STARTED, and free the pool slots they held: without a daemon nothing else would. Pids are
    this machine's; one line per run marked."""
    told = []
    for record in instance.get_run_records(RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        pid = worker_pid(instance, run.run_id)
        if pid is None or process_alive(pid, record.create_timestamp.timestamp()):
            continue
        why = f"its process (pid {pid}) is gone: killed or out of memory"
        failure = JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION)
        instance.report_run_failed(run, why, failure)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        told.append(
            f"run {run.run_id} ({run.job_name}) was left {run.status.value}: {why}; marked failed"
        )
    return told
