"""The self-running loop, in process: the landing sensor and the automation conditions ticked
against the instance under SANDS_HOME, every request executed, nothing materialized by hand.

It is what `dagster dev`'s daemon does, made synchronous so a simulated day can be played, its
consequences awaited, and a timeline recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    build_sensor_context,
    evaluate_automation_conditions,
)
from dagster._core.definitions.sensor_definition import SensorExecutionData

from assets.automation import DEGRADED, DRIFTED, NEW_DATA, SCHEDULED, UNHEALTHY
from dagster_project.runner import (
    failed_only_on_reject_budget,
    ingestion_notes,
    ingestion_run_config,
    run_feature_build,
    run_ingestion,
    warned_dbt_tests,
)

RANKER = AssetKey("ranker")
TRIGGERS = (SCHEDULED, NEW_DATA, UNHEALTHY, DRIFTED, DEGRADED)
# Gate rejections fail runs by design; the timeline reports them instead.
SILENT = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


# Past this many days without a landing, history is built as separate feature runs: nothing
# windowed reaches across (the longest feature window is 28 days), and one run over a stray
# day decades early would plan every partition in between (15,000 for a 1956 timestamp).
MAX_BUILD_GAP_DAYS = 28


def spans(days: list[str], max_gap_days: int = MAX_BUILD_GAP_DAYS) -> list[tuple[str, str]]:
    """The landed days (ISO dates) as (first, last) runs, split where more than `max_gap_days`
    days in a row landed nothing."""
    ordered = sorted({date.fromisoformat(d) for d in days})
    runs: list[list[date]] = []
    for day in ordered:
        if runs and (day - runs[-1][-1]).days <= max_gap_days + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [(r[0].isoformat(), r[-1].isoformat()) for r in runs]


class HistoryLoadError(RuntimeError):
    """The bulk-loaded history did not load; the message is one line."""


@dataclass
class TickOutcome:
    """What one automation tick requested, why the ranker was in it, and the runs' results."""

    requested: list[str]
    ranker_triggers: list[str]
    results: list[ExecuteInProcessResult] = field(default_factory=list)


def _true_labels(result, wanted: tuple[str, ...]) -> list[str]:
    found: list[str] = []

    def walk(node) -> None:
        label = node.condition.get_label()
        if label in wanted and node.true_subset.size > 0:
            found.append(label)
        for child in node.child_results:
            walk(child)

    walk(result)
    return found


class Loop:
    """Sensor and automation ticks with a clock the caller moves (simulated or real time)."""

    def __init__(
        self,
        defs: Definitions,
        instance: DagsterInstance,
        resources: dict[str, object],
        notify: Callable[[str], None] | None = None,
        max_reject_share: float | None = None,
    ) -> None:
        self.defs = defs
        # The ingestion runs' reject budget (None: the assets' default).
        self.max_reject_share = max_reject_share
        self.resources = resources
        self.instance = instance
        # Told, one line each, which reference rows the contract rejected and by which rule.
        self.notify = notify or (lambda line: None)
        self.sensor_cursor: str | None = None
        self.automation_cursor = None

    def landing_tick(self) -> list[ExecuteInProcessResult]:
        """Evaluate the landing-zone sensor and run what it requests, in order."""
        data = self._landing_sensor_tick()
        results = []
        for request in data.run_requests or []:
            job = self.defs.resolve_job_def(request.job_name)
            result = job.execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                tags=dict(request.tags),
                run_config=ingestion_run_config(job, self.max_reject_share),
                raise_on_error=False,
            )
            self._tell_rejections(result)
            results.append(result)
        return results

    def _tell_rejections(self, result: ExecuteInProcessResult) -> None:
        for line in [*ingestion_notes(result), *warned_dbt_tests(result)]:
            self.notify(line)

    def preload(self, days: list[str]) -> None:
        """Ingest landed history in bulk (one feature build for all of it), then let the sensor
        take note of those files without asking for runs: as if it had watched them land."""
        if not days:
            return
        ingested = run_ingestion(
            days,
            self.instance,
            lambda _, r: self._tell_rejections(r),
            defs=self.defs,
            max_reject_share=self.max_reject_share,
        )
        # Drops over the reject budget fail their run, yet the accepted rows are in bronze (and
        # the rejected ones in quarantine, both told above): the history goes on with them.
        failed = [
            r.run_id for r in ingested if not r.success and not failed_only_on_reject_budget(r)
        ]
        builds = [
            run_feature_build(first, last, self.instance, defs=self.defs)
            for first, last in spans(days)
        ]
        failed += [b.run_id for b in builds if not b.success]
        if failed:
            raise HistoryLoadError(
                f"loading the history failed: run(s) {', '.join(failed)} failed (see the "
                "Dagster UI)"
            )
        self.resume(date.fromisoformat(max(days)))

    def resume(self, last: date) -> None:
        """Take over a landing zone whose days up to `last` are in: the sensor takes note of
        their files (its run requests are for what is already loaded), and a first automation
        evaluation sets baselines now, not on the first day that lands next."""
        self._landing_sensor_tick()
        self.settle(datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC))

    def _landing_sensor_tick(self) -> SensorExecutionData:
        sensor = self.defs.resolve_sensor_def("landing_zone_sensor")
        # Opened as a context: some resources (the MLflow tracking) are generators.
        with build_sensor_context(
            instance=self.instance,
            cursor=self.sensor_cursor,
            definitions=self.defs,
            resources=self.resources,
        ) as context:
            data = sensor.evaluate_tick(context)
        self.sensor_cursor = data.cursor
        return data

    def automation_tick(self, now: datetime) -> TickOutcome:
        """Evaluate every automation condition at `now` and run what is requested, as one run."""
        result = evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.automation_cursor,
            evaluation_time=now,
        )
        self.automation_cursor = result.cursor
        keys = [r.key for r in result.results if isinstance(r.key, AssetKey) and r.true_subset.size]
        triggers = [
            label
            for r in result.results
            if r.key == RANKER and r.true_subset.size
            for label in _true_labels(r, TRIGGERS)
        ]
        outcome = TickOutcome(
            requested=sorted(k.to_user_string() for k in keys), ranker_triggers=triggers
        )
        if keys:
            job = self.defs.get_repository_def().get_implicit_job_def_for_assets(keys)
            outcome.results.append(
                job.execute_in_process(
                    instance=self.instance,
                    asset_selection=keys,
                    tags={"sands/trigger": ", ".join(triggers)} if triggers else None,
                    run_config=SILENT,
                    raise_on_error=False,
                )
            )
        return outcome

    def settle(
        self,
        start: datetime,
        step: timedelta = timedelta(minutes=10),
        max_ticks: int = 8,
        on_tick: Callable[[TickOutcome], None] | None = None,
    ) -> list[TickOutcome]:
        """Tick automation until a tick requests nothing (the loop is at rest)."""
        outcomes, now = [], start
        for _ in range(max_ticks):
            outcome = self.automation_tick(now)
            if not outcome.requested:
                break
            outcomes.append(outcome)
            if on_tick:
                on_tick(outcome)
            now += step
        return outcomes
