"""Prometheus metrics of the recommendation service: traffic, latency, models, canary, fallbacks,
hot swaps, freshness, the prediction log's queue, and the online quality figures it publishes.

The Helm chart's dashboard and alerts (helm/sands/dashboards, templates/prometheusrule.yaml) query
these names; tests/helm/test_monitoring.py fails when they use one this module does not export.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sands.models.aliases import CHALLENGER, CHAMPION
from sands.serving.prediction_log import RANKED, PredictionLog
from sands.serving.snapshot import ServingSnapshot
from sands.serving.watcher import SnapshotWatcher

# Sub-millisecond buckets: the service answers in about a millisecond, so the defaults (from 5 ms)
# would hide everything that matters.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    """The service's metric families in one Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "sands_requests",
            "Responses, every status included, by endpoint (route name, or unmatched).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "sands_request_latency_seconds",
            "Time to answer, in the app (routing, handler and sending the response).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.recommendations = Counter(
            "sands_recommendations",
            "Lists served, by arm and by how they were made (ranked or a fallback).",
            ["arm", "strategy"],
            registry=registry,
        )
        self.model_version = Gauge(
            "sands_model_version",
            "Registered version serving each arm.",
            ["arm"],
            registry=registry,
        )
        self.canary_share = Gauge(
            "sands_canary_share", "Share of users routed to the challenger.", registry=registry
        )
        self.fallback_ratio = Gauge(
            "sands_fallback_ratio",
            "Share of lists served by a fallback since the process started.",
            registry=registry,
        )
        self.logged = Gauge(
            "sands_impressions_committed", "Impressions committed to the log.", registry=registry
        )
        self.dropped = Gauge(
            "sands_impressions_dropped", "Impressions dropped (log queue full).", registry=registry
        )
        self.log_failing = Gauge(
            "sands_prediction_log_failing",
            "1 while the log's latest commit failed (impressions wait in memory, retried).",
            registry=registry,
        )
        self.log_failures = Gauge(
            "sands_prediction_log_commit_failures",
            "Failed commit attempts of the prediction log since the process started.",
            registry=registry,
        )
        self.queued = Gauge(
            "sands_prediction_log_queue_depth",
            "Impressions queued for the log's writer (at 100,000 new ones are dropped).",
            registry=registry,
        )
        self.swaps = Counter(
            "sands_snapshot_swaps",
            "Serving snapshots swapped in (models, canary share, policy or serving data moved).",
            registry=registry,
        )
        self.checked = Gauge(
            "sands_snapshot_checked_timestamp_seconds",
            "When the registry and the lake were last read successfully (unix time).",
            registry=registry,
        )
        self.registered = Gauge(
            "sands_model_registered_timestamp_seconds",
            "When the version serving each arm was registered (unix time).",
            ["arm"],
            registry=registry,
        )
        self.features_as_of = Gauge(
            "sands_features_timestamp_seconds",
            "Newest feature_ts of the artwork feature vectors serving (unix time).",
            registry=registry,
        )
        self.online_ctr = Gauge(
            "sands_online_ctr",
            "Click-through rate of ranked lists by arm and serving version, as online_performance "
            "last measured it on mature impressions.",
            ["arm", "version"],
            registry=registry,
        )
        self.online_conversion = Gauge(
            "sands_online_conversion_rate",
            "Conversion rate of ranked lists by arm and serving version (online_performance).",
            ["arm", "version"],
            registry=registry,
        )
        self.online_impressions = Gauge(
            "sands_online_impressions",
            "Mature impressions behind the online figures, by arm and serving version.",
            ["arm", "version"],
            registry=registry,
        )
        self.online_as_of = Gauge(
            "sands_online_as_of_timestamp_seconds",
            "Newest interaction the online figures saw (unix time).",
            registry=registry,
        )
        self._served = 0
        self._fallbacks = 0
        self._swaps_seen = 0
        self._figures: pa.Table | None = None

    def answered(self, endpoint: str, status: int, started: float) -> None:
        """Count a response and the time since `started` (a `time.perf_counter()`)."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - started)

    def served(self, arm: str, strategy: str) -> None:
        self.recommendations.labels(arm, strategy).inc()
        self._served += 1
        self._fallbacks += strategy != RANKED
        self.fallback_ratio.set(self._fallbacks / self._served)

    def snapshot(self, snapshot: ServingSnapshot | None) -> None:
        """Publish what the snapshot serves."""
        if snapshot is None:
            return
        for arm, model in ((CHAMPION, snapshot.champion), (CHALLENGER, snapshot.challenger)):
            self.model_version.labels(arm).set(model.version if model else 0)
            if model is not None and model.registered_at is not None:
                self.registered.labels(arm).set(model.registered_at.timestamp())
            else:
                with contextlib.suppress(KeyError):  # no such arm any more
                    self.registered.remove(arm)
        self.canary_share.set(snapshot.canary_share)
        if snapshot.data.features_as_of is not None:
            self.features_as_of.set(_unix(snapshot.data.features_as_of))

    def watched(self, watcher: SnapshotWatcher) -> None:
        """Publish the watcher's snapshot, swaps, last successful check and online figures."""
        self.snapshot(watcher.snapshot)
        swaps = watcher.swaps
        if swaps > self._swaps_seen:
            self.swaps.inc(swaps - self._swaps_seen)
            self._swaps_seen = swaps
        if watcher.checked_at is not None:
            self.checked.set(watcher.checked_at)
        figures = watcher.figures
        if figures is not None and figures is not self._figures:
            self._publish_figures(figures)
            self._figures = figures

    def _publish_figures(self, figures: pa.Table) -> None:
        for gauge in (self.online_ctr, self.online_conversion, self.online_impressions):
            gauge.clear()  # versions no longer serving go away
        for row in figures.to_pylist():
            labels = (row["arm"], str(row["model_version"]))
            self.online_impressions.labels(*labels).set(row["impressions"])
            if row["ctr"] is not None:
                self.online_ctr.labels(*labels).set(row["ctr"])
            if row["conversion_rate"] is not None:
                self.online_conversion.labels(*labels).set(row["conversion_rate"])
            if row["as_of"] is not None:
                self.online_as_of.set(_unix(row["as_of"]))

    def log_state(self, log: PredictionLog) -> None:
        self.logged.set(log.committed)
        self.dropped.set(log.dropped)
        self.queued.set(log.queued)
        self.log_failing.set(1 if log.failing else 0)
        self.log_failures.set(log.failed_commits)


def _unix(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC (as the lake stores it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
