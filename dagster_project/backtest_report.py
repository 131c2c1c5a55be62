"""A play's summary report, written under `reports/` and recorded in the Dagster instance.

Plays (`sands demo --scenario`, `sands replay`) run many in-process runs; their summary is
written once at the end (`sands.evaluation.backtest.write_report`) and then made findable in the UI:

- a materialization of the `backtest_report` asset (declared below as an external asset spec),
  reported without a run, whose metadata links the HTML page (path and file:// URL), the CSV
  and JSON, carries the summary as a markdown table and the means as numbers (so the asset page
  plots them play after play), and links the play's first and last run;
- every run of the play tagged `sands/play` (filter the Runs page by it) and `sands/report`
  (the HTML page), so a run's tags lead to the report of the play it belonged to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import AssetKey, AssetMaterialization, AssetSpec, DagsterInstance, MetadataValue

from dagster_project.runner import instance_for
from sands.evaluation.backtest import ReportFiles, markdown, write_report
from sands.settings import SandsPaths

BACKTEST_REPORT = AssetKey("backtest_report")
PLAY_TAG = "sands/play"
REPORT_TAG = "sands/report"

backtest_report = AssetSpec(
    BACKTEST_REPORT,
    group_name="backtests",
    kinds={"html"},
    description="The summary of a day-by-day play (`sands demo --scenario`, `sands replay`): per "
    "day the served policy, champion, NDCG@10 of served / frozen / popularity, triggers and gate "
    "verdicts, as CSV, JSON and an HTML page with the NDCG-over-days plot under "
    "`SANDS_HOME/reports/`. Reported without a run at the end of each play.",
)


def _number(value: Any) -> MetadataValue:
    return MetadataValue.float(value) if value is not None else MetadataValue.null()


def materialization(files: ReportFiles, run_ids: Sequence[str] = ()) -> AssetMaterialization:
    """The `backtest_report` event for one play's files."""
    summary = files.summary
    means = summary.get("after_change") or summary["all_days"]
    metadata: dict[str, Any] = {
        "report": MetadataValue.path(str(files.html)),
        "report_url": MetadataValue.url(files.html.resolve().as_uri()),
        "csv": MetadataValue.path(str(files.csv)),
        "json": MetadataValue.path(str(files.json)),
        "summary": MetadataValue.md(markdown(summary)),
        "kind": MetadataValue.text(str(summary.get("kind"))),
        "days": MetadataValue.int(summary["days"]),
        "labelled_days": MetadataValue.int(means["labelled_days"]),
        "days_without_labels": MetadataValue.int(means["days_without_labels"]),
        "ndcg_served": _number(means["served"]),
        "ndcg_frozen": _number(means["frozen"]),
        "ndcg_popularity": _number(means["popularity"]),
        "retrain_requests": MetadataValue.int(summary["retrain_requests"]),
    }
    if run_ids:
        metadata["first_run"] = MetadataValue.dagster_run(run_ids[0])
        metadata["last_run"] = MetadataValue.dagster_run(run_ids[-1])
    return AssetMaterialization(
        asset_key=BACKTEST_REPORT,
        description=means["line"],
        metadata=metadata,
        tags={PLAY_TAG: files.label},
    )


def record(instance: DagsterInstance, files: ReportFiles, run_ids: Sequence[str] = ()) -> None:
    """Report the play's `backtest_report` materialization and tag its runs."""
    instance.report_runless_asset_event(materialization(files, run_ids))
    tags = {PLAY_TAG: files.label, REPORT_TAG: str(files.html)}
    for run_id in run_ids:
        if instance.get_run_by_id(run_id) is not None:
            instance.add_run_tags(run_id, tags)


def report(
    paths: SandsPaths,
    records: Sequence[Any],
    kind: str,
    shift: int | None = None,
    verdicts: Sequence[tuple[str, bool]] = (),
    **context: Any,
) -> ReportFiles:
    """Write the play's CSV, JSON and HTML under `SANDS_HOME/reports` and record them in the
    instance under `SANDS_HOME/dagster`."""
    files = write_report(paths.reports, records, kind, shift, verdicts, **context)
    run_ids = [run_id for r in records for run_id in getattr(r, "run_ids", None) or []]
    record(instance_for(paths), files, run_ids)
    return files
