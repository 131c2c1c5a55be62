"""What one service process is told: its limits, polling, prediction logging and admin token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sands.serving.exploration import Exploration

ADMIN_TOKEN_ENV = "SANDS_ADMIN_TOKEN"


@dataclass
class ServiceConfig:
    """Limits, polling and logging of one service process."""

    max_k: int = 100
    # A request body past this is refused (413) before it is read whole: 16 MiB of JSON is some
    # 40,000 feature rows to score at once, more than any one list needs.
    max_body_bytes: int = 16 * 2**20
    # Bodies read and scored at once: each may take 16 MiB and more parsed, so 64 uploads at once
    # took a pod past 1.9 GB; the rest wait their turn. Scoring runs off the event loop.
    max_concurrent_inference: int = 4
    # A body not received whole within this is refused (408): a slow uploader holds a slot.
    body_timeout_seconds: float = 30.0
    candidates: int = 200
    poll_seconds: float = 5.0
    # One Delta commit per batch: bigger batches cost the request path less; a crash loses at
    # most the impressions of the last flush_seconds.
    log_batch_rows: int = 10_000
    log_flush_seconds: float = 5.0
    admin_token: str | None = field(default_factory=lambda: os.environ.get(ADMIN_TOKEN_ENV))
    # Simulations only: take the serving time from the `X-Sands-Served-At` header, so simulated
    # users' later clicks fall in the attribution window of what they were served.
    simulated_clock: bool = False
    # How ranked lists explore (off by default): what lets the log judge other policies offline.
    exploration: Exploration = field(default_factory=Exploration)
