"""What every route of the service shares: JSON answers, the one map from errors to HTTP status,
and the per-app state routes reach through the `Service` dependency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from sands.features.online_store import OnlineStore
from sands.models.registry import (
    InvalidSetting,
    NoChallenger,
    NothingToRollBack,
    Registry,
    UnknownVersion,
)
from sands.serving.config import ServiceConfig
from sands.serving.metrics import ServiceMetrics
from sands.serving.prediction_log import PredictionLog
from sands.serving.snapshot import ServingSnapshot
from sands.serving.watcher import SnapshotWatcher

ECHO_CHARS = 64  # of client input quoted back in an error


class BodyTooLarge(ValueError):
    """A request body past the service's `max_body_bytes` (answered 413)."""


class BodyTooSlow(ValueError):
    """A request body not received whole within the service's `body_timeout_seconds` (408)."""


# HTTP status of each typed error a route can meet, in one place (the first match in the
# exception's class hierarchy wins; anything else is the counted 500).
ERROR_STATUS: dict[type[Exception], int] = {
    BodyTooLarge: 413,
    BodyTooSlow: 408,
    NoChallenger: 409,
    NothingToRollBack: 409,
    UnknownVersion: 404,
    InvalidSetting: 400,
    ValueError: 400,
}


@dataclass
class ServiceState:
    """One app's service: its limits, registry, snapshot watcher, metrics, store and log."""

    config: ServiceConfig
    registry: Registry
    watcher: SnapshotWatcher
    metrics: ServiceMetrics
    # Opened by the app's lifespan and closed at its end: no route runs outside it.
    store: OnlineStore = field(init=False, repr=False)
    log: PredictionLog = field(init=False, repr=False)
    # Made by the lifespan, on the loop that serves: a test may run one app on several loops.
    inference_slots: asyncio.Semaphore = field(init=False, repr=False)

    async def body(self, request: Request) -> bytes:
        """The request's body within this service's size and time limits (`bounded_body`)."""
        return await bounded_body(
            request, self.config.max_body_bytes, self.config.body_timeout_seconds
        )


async def service_state(request: Request) -> ServiceState:
    """The state of the app answering `request` (async: FastAPI runs it on the loop, no thread)."""
    return request.app.state.service


Service = Annotated[ServiceState, Depends(service_state)]


def status_for(error: Exception) -> int:
    """The HTTP status `ERROR_STATUS` maps this error to (500 when it maps none)."""
    for kind in type(error).__mro__:
        if kind in ERROR_STATUS:
            return ERROR_STATUS[kind]
    return 500


def json_response(content: object, status: int = 200) -> Response:
    """`content` as a JSON response, with `status`."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    """The one shape of every error body: {"error": message}."""
    return json_response({"error": message}, status)


async def bounded_body(request: Request, limit: int, seconds: float = 30.0) -> bytes:
    """The request's body, or BodyTooLarge as soon as it passes `limit` bytes (a declared
    length is trusted to refuse at once; a streamed body is counted as it arrives), or
    BodyTooSlow when it has not all arrived within `seconds`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body of {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"request body past the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError as error:
        raise BodyTooSlow(f"request body not received whole within {seconds:g} s") from error
    return b"".join(chunks)


def echo(value: object) -> str:
    """`value` as Python writes it, cut to ECHO_CHARS: an error never mirrors a huge input."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def describe(snapshot: ServingSnapshot | None) -> dict[str, object]:
    """The versions a snapshot serves, for the index and the admin answers."""
    if snapshot is None:
        return {"champion": None, "challenger": None, "canary_share": 0.0}
    return {
        "champion": snapshot.champion.version if snapshot.champion else None,
        "challenger": snapshot.challenger.version if snapshot.challenger else None,
        "canary_share": snapshot.canary_share,
        "data_versions": snapshot.data.versions,
    }
