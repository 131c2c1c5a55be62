"""The recommendation service over the code location's resources: what `sands serve` runs."""

from __future__ import annotations

import os
from typing import Any

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
        poll_seconds=env_number("SANDS_SERVE_POLL_SECONDS", ServiceConfig.poll_seconds),
        log_flush_seconds=env_number(
            "SANDS_SERVE_LOG_FLUSH_SECONDS", ServiceConfig.log_flush_seconds
        ),
        simulated_clock=os.environ.get("SANDS_SERVE_SIMULATED_CLOCK") == "1",
        exploration=Exploration(
            rate=env_number("SANDS_SERVE_EXPLORATION_RATE", Exploration.rate),
            pool=env_number("SANDS_SERVE_EXPLORATION_POOL", Exploration.pool, int),
            popular=env_number("SANDS_SERVE_EXPLORATION_POPULAR", Exploration.popular, int),
        ),
    )
    return create_app(registry.open(), online.open, lake.root, lake.storage_options, config)


def env_number(name: str, default: float, kind: type = float) -> Any:
    """A number from the environment, or a one-line error naming the variable."""
    text = os.environ.get(name)
    if text is None:
        return kind(default)
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name}={text[:40]!r} is not {what}") from None
