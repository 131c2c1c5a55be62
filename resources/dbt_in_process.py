"""`dbt build` through dbt's Python API inside the step's process, with dagster-dbt's events.

A `dbt` subprocess imports dbt (and pyarrow's dataset layer) on every call, several seconds of a
small day; a process that builds again (the loop, a sliced backfill, the tests) pays it once
here. dagster-dbt still chooses the selection and turns dbt's structured events into Dagster's,
exactly as for its subprocess, which prints the same events as JSON lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetExecutionContext
from dagster_dbt.asset_utils import (
    DBT_INDIRECT_SELECTION_ENV,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.dagster_dbt_translator import DagsterDbtTranslator

from sands.settings import environment

if TYPE_CHECKING:
    from dagster_dbt import DbtCliResource


class DbtBuildError(RuntimeError):
    """A `dbt build` run in process failed; the message names the failed nodes on one line."""


def _close_duckdb() -> None:
    """Close dbt-duckdb's database: it keeps it open for the next call, and this process (or
    another) must open the warehouse file afterwards, read-only."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as Manager

    with Manager._LOCK:
        if Manager._ENV is not None:
            Manager._ENV.close()
            Manager._ENV = None


def _run(args: list[str]) -> tuple[list[dict[str, Any]], Any]:
    """Invoke dbt; its structured events as the dicts its JSON log lines hold, and its result."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    events: list[dict[str, Any]] = []
    try:
        result = dbtRunner(callbacks=[lambda msg: events.append(msg_to_dict(msg))]).invoke(args)
    finally:
        _close_duckdb()
    return events, result


def _failures(events: list[dict[str, Any]]) -> list[str]:
    """Each failed node with its status; the first also with dbt's message, on one line."""
    failed = []
    for event in events:
        if event["info"]["name"] != "NodeFinished":
            continue
        result = event["data"].get("run_result", {})
        status = result.get("status")
        if status not in ("error", "fail", "runtime error"):
            continue
        why = " ".join(line.strip() for line in (result.get("message") or "").splitlines())
        detail = f"{status}: {why[:200]}" if why and not failed else status
        failed.append(f"{event['data']['node_info']['unique_id']} ({detail})")
    return failed


def build_in_process(
    resource: DbtCliResource, context: AssetExecutionContext, target_path: Path
) -> Iterator[object]:
    """The Dagster events of `dbt build` for the context's selection, run in this process;
    raises `DbtBuildError` after the events when any node failed."""
    # The context's selection (a partial materialization) becomes dbt's --select, as for the CLI.
    params = get_updated_cli_invocation_params_for_context(
        context=context, manifest={}, dagster_dbt_translator=DagsterDbtTranslator()
    )
    project_dir = Path(
        params.dbt_project.project_dir if params.dbt_project else resource.project_dir
    )
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": os.fspath(target_path)}
    if params.indirect_selection:
        env[DBT_INDIRECT_SELECTION_ENV] = params.indirect_selection
    flags = ["--project-dir", str(project_dir), "--target-path", os.fspath(target_path)]
    if resource.profiles_dir:
        flags += ["--profiles-dir", resource.profiles_dir]
    with environment(env):
        events, result = _run(["build", *flags, *params.selection_args])
    for raw in events:
        message = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
        yield from message.to_default_asset_events(
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            context=context,
            target_path=target_path,
            project=params.dbt_project,
        )
    if result.exception is not None:
        raise DbtBuildError(f"dbt build failed: {result.exception}") from result.exception
    failed = _failures(events)
    if failed or not result.success:
        raise DbtBuildError(f"dbt build failed: {', '.join(failed) or 'see the dbt log'}")
