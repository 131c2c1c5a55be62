"""Prometheus metrics of the recommendation service: traffic, latency, models, canary, fallbacks."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sands.aliases import CHALLENGER, CHAMPION
from sands.prediction_log import RANKED, PredictionLog
from sands.serving import ServingSnapshot

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
        self._served = 0
        self._fallbacks = 0

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
        self.canary_share.set(snapshot.canary_share)

    def log_state(self, log: PredictionLog) -> None:
        self.logged.set(log.committed)
        self.dropped.set(log.dropped)
