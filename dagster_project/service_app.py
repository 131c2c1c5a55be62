"""The recommendation service over the code location's resources: what `sands serve` runs."""

from __future__ import annotations

import os

from fastapi import FastAPI

from resources import build_resources
from sands.serving.app import create_app
from sands.serving.config import ServiceConfig
from sands.serving.exploration import Exploration

# For uvicorn's `--factory` and `sands.serving.process.serve_app`: each worker builds its own app.
APP_FACTORY = "dagster_project.service_app:app_from_env"


def app_from_env() -> FastAPI:
    """The service for the environment's resources (embedded or production, as the code location
    picks them); `uvicorn --factory dagster_project.service_app:app_from_env`."""
    resources = build_resources()
    lake, online, registry = resources["lake"], resources["online"], resources["registry"]
    config = ServiceConfig(
        poll_seconds=float(os.environ.get("SANDS_SERVE_POLL_SECONDS", ServiceConfig.poll_seconds)),
        log_flush_seconds=float(
            os.environ.get("SANDS_SERVE_LOG_FLUSH_SECONDS", ServiceConfig.log_flush_seconds)
        ),
        simulated_clock=os.environ.get("SANDS_SERVE_SIMULATED_CLOCK") == "1",
        exploration=Exploration(
            rate=float(os.environ.get("SANDS_SERVE_EXPLORATION_RATE", Exploration.rate)),
            pool=int(os.environ.get("SANDS_SERVE_EXPLORATION_POOL", Exploration.pool)),
            popular=int(os.environ.get("SANDS_SERVE_EXPLORATION_POPULAR", Exploration.popular)),
        ),
    )
    return create_app(registry.open(), online.open, lake.root, lake.storage_options, config)
