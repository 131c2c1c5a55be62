"""Run the code location's jobs in-process against the instance under `SANDS_HOME/dagster`.

Runs land in the same instance `dagster dev` shows, so CLI work appears in the UI history.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    JobDefinition,
    JsonMetadataValue,
)

from sands.lake.files import atomic_write_text
from sands.settings import SandsPaths

# Pools keep steps that write the DuckDB warehouse from running at the same time across runs.
INSTANCE_YAML = "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
# The daemon (`sands ui`) fails runs that never start; the default launcher cannot resume a run
# or see its worker die, so `sands` commands fail those themselves (`failures.fail_orphaned_runs`).
RUN_MONITORING_YAML = (
    "run_monitoring:\n  enabled: true\n  start_timeout_seconds: 180\n"
    "  max_resume_run_attempts: 0\n  poll_interval_seconds: 60\n"
)
# The event log in Dagster's usual place, with connections kept open (`event_log_storage`).
EVENT_LOG_YAML = (
    "event_log_storage:\n  module: dagster_project.event_log_storage\n"
    "  class: PooledSqliteEventLogStorage\n"
)
# Sections every home's dagster.yaml holds; homes made before one was added gain it.
ADDED_SECTIONS = {"run_monitoring": RUN_MONITORING_YAML, "event_log_storage": EVENT_LOG_YAML}
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# The CLI shows its own progress and one line per failure; Dagster's log, tracebacks included,
# stays in the instance (and in SANDS_HOME/logs/runs/<run id>.log for a failed run).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _not_a_gate_bypass(record: logging.LogRecord) -> bool:
    # Dagster warns that the gate's blocking check "emitted no result" and `deployed_ranker`
    # "will proceed without gating on it" when `ranker` skipped (a young history): then
    # `evaluation_report` and `deployed_ranker` are skipped too, and nothing deploys. A failed
    # `evaluation_report` stops its dependants without this warning.
    return "will proceed without gating on it" not in record.getMessage()


logging.getLogger("dagster._core.execution.plan.active").addFilter(_not_a_gate_bypass)


def instance_config(paths: SandsPaths) -> Path:
    """`SANDS_HOME/dagster/dagster.yaml`, written on first use; homes made before a section of
    `ADDED_SECTIONS` was configured gain it."""
    home = Path(paths.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = config.read_text() if config.exists() else INSTANCE_YAML
    missing = [yaml for key, yaml in ADDED_SECTIONS.items() if f"{key}:" not in text]
    if missing or not config.exists():
        atomic_write_text(config, "".join([text.rstrip("\n") + "\n", *missing]))
    return config


def instance_for(paths: SandsPaths) -> DagsterInstance:
    """The persistent Dagster instance in `SANDS_HOME/dagster` (created on first use)."""
    os.environ["DAGSTER_HOME"] = str(instance_config(paths).parent)
    return DagsterInstance.get()


def require_partitions(defs: Definitions, days: Iterable[str]) -> None:
    """Fail at once, in one line naming `SANDS_PARTITIONS_START`, if a day has no partition
    (rather than with Dagster's `DagsterUnknownPartitionError` halfway through)."""
    from assets.ingestion import covered_range

    partitions = defs.resolve_job_def("daily_ingestion").partitions_def
    if partitions is not None:
        covered_range(partitions).require(date.fromisoformat(d) for d in days)


def ingestion_run_config(job: JobDefinition, max_reject_share: float | None) -> dict:
    """Quiet run config for `job`, with this reject budget for each ingestion asset it runs (the
    assets' own default, `IngestionConfig.max_reject_share`, when None)."""
    if max_reject_share is None:
        return QUIET
    ops = {node.name for node in job.graph.nodes} & {"raw_interactions", *REFERENCE_FEEDS}
    budget = {"config": {"max_reject_share": max_reject_share}}
    return {**QUIET, "ops": dict.fromkeys(sorted(ops), budget)} if ops else QUIET


def run_ingestion(
    days: Iterable[str],
    instance: DagsterInstance,
    on_done: Callable[[str, ExecuteInProcessResult], None] | None = None,
    defs: Definitions | None = None,
    max_reject_share: float | None = None,
) -> list[ExecuteInProcessResult]:
    """Ingest users and artworks, then each landing day: one run per partition, like the sensor."""
    from dagster_project.definitions import build_defs

    days = list(days)
    # Built now, not at import, so resources and partitions follow the SANDS_HOME of this call.
    defs = defs or build_defs()
    require_partitions(defs, days)
    results = []
    jobs = {name: defs.resolve_job_def(name) for name in ("reference_ingestion", "daily_ingestion")}
    reference = jobs["reference_ingestion"].execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=ingestion_run_config(jobs["reference_ingestion"], max_reject_share),
    )
    results.append(reference)
    if on_done:
        on_done("users+artworks", reference)
    daily = jobs["daily_ingestion"]
    for day in days:
        result = daily.execute_in_process(
            partition_key=day,
            instance=instance,
            raise_on_error=False,
            run_config=ingestion_run_config(daily, max_reject_share),
        )
        results.append(result)
        if on_done:
            on_done(day, result)
    return results


def run_feature_build(
    first_day: str,
    last_day: str,
    instance: DagsterInstance,
    max_days_per_dbt_call: int | None = None,
    defs: Definitions | None = None,
) -> ExecuteInProcessResult:
    """dbt build and feature publishing for every day in [first_day, last_day], as one run."""
    from dagster_project.definitions import build_defs

    run_config: dict = dict(QUIET)
    if max_days_per_dbt_call is not None:
        slicing = {"max_days_per_dbt_call": max_days_per_dbt_call}
        run_config["ops"] = {"transform_models": {"config": slicing}}
    defs = defs or build_defs()
    require_partitions(defs, [first_day, last_day])
    job = defs.resolve_job_def("feature_build")
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=run_config,
        tags={RANGE_START: first_day, RANGE_END: last_day},
    )


def run_training_data(instance: DagsterInstance) -> ExecuteInProcessResult:
    """Refresh the online store and rebuild the training set."""
    from dagster_project.definitions import build_defs

    job = build_defs().resolve_job_def("training_data")
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)


def run_model_training(
    instance: DagsterInstance,
    ops_config: dict[str, dict] | None = None,
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """Segments, similarity, popularity, ranker, evaluation and (gated) promotion, as one run."""
    from dagster_project.definitions import build_defs

    # A rejected challenger fails the run by design (blocking gate); the CLI reports it instead.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if ops_config:
        run_config["ops"] = {name: {"config": c} for name, c in ops_config.items()}
    job = build_defs().resolve_job_def("model_training")
    return job.execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, tags=tags
    )


def _run_with_online_config(
    job_name: str, instance: DagsterInstance, online_config: dict[str, object] | None
) -> ExecuteInProcessResult:
    from dagster_project.definitions import build_defs

    run_config: dict = dict(QUIET)
    if online_config:
        run_config["ops"] = {"online_performance": {"config": online_config}}
    job = build_defs().resolve_job_def(job_name)
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)


def run_online_quality(
    instance: DagsterInstance, config: dict[str, object] | None = None
) -> ExecuteInProcessResult:
    """Online CTR and conversion per arm and version from the prediction log."""
    return _run_with_online_config("online_quality", instance, config)


def run_champion_monitoring(
    instance: DagsterInstance, online_config: dict[str, object] | None = None
) -> ExecuteInProcessResult:
    """Drift, offline and online quality of the serving champion on the newest day."""
    return _run_with_online_config("champion_monitoring", instance, online_config)


REFERENCE_FEEDS = ("users", "artworks")
_NONE = JsonMetadataValue(None)


def rejected_rows(result: ExecuteInProcessResult) -> list[str]:
    """One line per feed (and landing day) whose rows the contract rejected: how many, by which
    rule (reason code), where they went, and whether the reject budget failed the run."""
    from assets.ingestion import REJECT_BUDGET

    over = {
        e.asset_key.to_user_string()
        for e in result.get_asset_check_evaluations()
        if e.check_name == REJECT_BUDGET and not e.passed
    }
    lines = []
    for event in result.get_asset_materialization_events():
        feed = event.materialization.asset_key.to_user_string()
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        budget_failed = feed in over
        if repeated := meta.get("rows_repeated"):
            # read = accepted + rejected + repeated: the table's columns leave these out.
            lines.append(
                f"{feed}: {repeated:,} of {meta['rows_read']:,} rows repeated an earlier row in "
                "every column (the same fact sent again): kept once, not rejected"
            )
        if event.materialization.partition:
            feed = f"{feed} {event.materialization.partition}"
        if not meta.get("rows_rejected") or "reason_counts" not in meta:
            # A hint with nothing rejected (a day none of whose files could be read) stands alone.
            lines.extend(f"{feed}: {hint}" for hint in meta.get("hints") or [])
            continue
        rules = sorted((meta.get("reason_counts") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        line = (
            f"{feed}: {meta['rows_rejected']:,} of {meta['rows_read']:,} rows rejected by the "
            f"contract ({', '.join(f'{code} {n:,}' for code, n in rules)}), quarantined in "
            f"{meta['quarantine_uri']}"
        )
        line += "".join(f"; {hint}" for hint in meta.get("hints") or [])
        if budget_failed:
            accepted = meta["rows_accepted"]
            rows = "row is" if accepted == 1 else "rows are"
            line += "; over the reject budget, so the run failed its check and stopped what "
            line += (
                f"depends on it (its {accepted:,} accepted {rows} in bronze, for later runs)"
                if accepted
                else "depends on it (no row was accepted)"
            )
        lines.append(line)
    return lines


# dagster-dbt's count of the rows a dbt test found.
DBT_FAILED_ROWS = "dagster_dbt/failed_row_count"


def warned_dbt_tests(result: ExecuteInProcessResult) -> list[str]:
    """One line per dbt test that warned: e.g. interactions naming users or artworks the
    reference feeds do not hold (a converted history often lacks some), which then train and
    serve with no features."""
    return [
        f"{e.asset_key.to_user_string()}: dbt test {e.check_name} warned on "
        f"{e.metadata[DBT_FAILED_ROWS].value:,} rows"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.WARN and DBT_FAILED_ROWS in e.metadata
    ]


def rejected_files(result: ExecuteInProcessResult) -> list[str]:
    """One line per landing file an ingestion run could not read (quarantined whole)."""
    from sands.ingest.quarantine import rejected_file_line

    return [
        rejected_file_line(details)
        for event in result.get_asset_materialization_events()
        for details in event.materialization.metadata.get("rejected_files", _NONE).value or []
    ]


# A file of thousands of stray columns still gets one readable line.
NAMED_COLUMNS = 10


def dropped_columns(result: ExecuteInProcessResult) -> list[str]:
    """One line per feed (and landing day) whose files held columns the contract does not know:
    bronze drops them, so a renamed or mangled header would otherwise go unnoticed."""
    lines = []
    for event in result.get_asset_materialization_events():
        columns = event.materialization.metadata.get("unexpected_columns", _NONE).value or []
        if not columns:
            continue
        feed = event.materialization.asset_key.to_user_string()
        if event.materialization.partition:
            feed = f"{feed} {event.materialization.partition}"
        named = ", ".join(map(_unexpected, columns[:NAMED_COLUMNS]))
        if len(columns) > NAMED_COLUMNS:
            named += f" and {len(columns) - NAMED_COLUMNS:,} more"
        lines.append(
            f"{feed}: columns not in the contract were not written to bronze: {named} "
            "(the contract: docs/data-contract.md)"
        )
    return lines


def _unexpected(column: str) -> str:
    """A column the contract does not know, cut to a readable length, and the contract's
    column it differs from only in case or spaces (a header written `Price`), if any."""
    from sands.ingest.contract import ENTITIES  # imported on use, as the CLI's other imports

    shown = repr(column if len(column) <= 60 else column[:60] + "...")
    known = {name for entity in ENTITIES.values() for name in entity.arrow_schema().names}
    like = column.strip().lower()
    return f"{shown} (the contract's {like!r}?)" if like in known and like != column else shown


def ingestion_notes(result: ExecuteInProcessResult) -> list[str]:
    """Every one-line note an ingestion run leaves for its caller: rejected rows and files, and
    columns bronze dropped."""
    return [*rejected_rows(result), *rejected_files(result), *dropped_columns(result)]


def failed_only_on_reference_budget(result: ExecuteInProcessResult) -> bool:
    """A reference run whose only failure is the reject budget: its accepted rows were MERGEd."""
    return failed_only_on_reject_budget(result) and _written(result) >= set(REFERENCE_FEEDS)


def failed_only_on_reject_budget(result: ExecuteInProcessResult) -> bool:
    """An ingestion run whose only failures are reject budgets, each on an asset it wrote: the
    accepted rows are in bronze and the rejected ones in quarantine."""
    from assets.ingestion import REJECT_BUDGET

    if result.success:
        return False
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    return (
        bool(failed)
        and all(e.check_name == REJECT_BUDGET for e in failed)
        and {e.asset_key.to_user_string() for e in failed} <= _written(result)
    )


def _written(result: ExecuteInProcessResult) -> set[str]:
    return {
        e.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }
