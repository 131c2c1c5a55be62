"""The recommendation service (`sands serve`): FastAPI on uvicorn.

Requests read one immutable `ServingSnapshot`; a watcher thread polls the registry (aliases and
canary share) and the lake (catalogue, neighbours, segments, popularity), builds a new snapshot
off the request path and swaps the reference, so no request fails or waits during a swap.
The routes live in `sands.serving.routes`, one module per concern.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sands.features.online_store import OnlineStore
from sands.models.registry import Registry
from sands.serving.config import ServiceConfig
from sands.serving.metrics import ServiceMetrics
from sands.serving.prediction_log import PredictionLog, impressions_uri
from sands.serving.routes import admin, health, oip, recommendations
from sands.serving.routes.common import ServiceState, echo, error_response
from sands.serving.watcher import SnapshotWatcher

log = logging.getLogger(__name__)
CLIENT_CLOSED = 499  # nginx's status for a request its client closed before the answer


class _Accounted:
    """ASGI middleware: every response is counted by endpoint (route name) and status, errors
    included, and a fault no handler caught becomes a counted JSON 500 (traceback in the log)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            # The client left mid-request: no one to answer, and no fault of the service (a 5xx
            # would page someone); counted as nginx counts it.
            status = status or CLIENT_CLOSED
        except Exception:
            if status:  # the headers are out: nothing else can be answered
                raise
            log.exception("unhandled error on %s %s", scope["method"], echo(scope["path"]))
            fault = error_response(500, "internal server error: the service log has the details")
            await fault(scope, receive, sending)
        finally:
            if status:
                endpoint = getattr(scope.get("route"), "name", None) or "unmatched"
                self.metrics.answered(endpoint, status, started)


async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
    # The router's own 404 and 405 too: every error body is {"error": ...}.
    message = f"{error.detail}: {request.method} {echo(request.url.path)}"
    answer = error_response(error.status_code, message)
    answer.headers.update(error.headers or {})  # e.g. a 405's Allow
    return answer


async def _invalid(_: Request, error: RequestValidationError) -> Response:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return error_response(422, f"invalid request: {problems}")


def _lifespan(
    open_store: Callable[[], OnlineStore], open_log: Callable[[], PredictionLog]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's life: store and prediction log open and the watcher polling while it serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service: ServiceState = app.state.service
        service.store = open_store()
        service.log = open_log()
        service.inference_slots = asyncio.Semaphore(service.config.max_concurrent_inference)
        service.watcher.start()
        service.metrics.watched(service.watcher)
        yield
        service.watcher.stop()
        if lost := service.log.close():  # commits what is queued, unless the lake fails
            log.error(
                "prediction log: %d impressions could not be committed before shutdown (%s)",
                lost,
                service.log.last_error,
            )
        service.store.close()

    return lifespan


def create_app(
    registry: Registry,
    open_store: Callable[[], OnlineStore],
    lake_root: str,
    storage_options: dict[str, str] | None = None,
    config: ServiceConfig | None = None,
) -> FastAPI:
    """The service for one registered ranker, its online store and its lake."""
    config = config or ServiceConfig()
    options = storage_options or {}
    watcher = SnapshotWatcher(registry, lake_root, options, config.poll_seconds)
    service = ServiceState(config, registry, watcher, ServiceMetrics(CollectorRegistry()))
    open_log = partial(
        PredictionLog,
        impressions_uri(lake_root),
        options,
        config.log_batch_rows,
        config.log_flush_seconds,
    )
    app = FastAPI(title="Shifting Sands recommendations", lifespan=_lifespan(open_store, open_log))
    # Per app, not per module: a process (the tests) may hold several apps.
    app.state.service, app.state.watcher = service, watcher
    app.add_middleware(_Accounted, metrics=service.metrics)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    for routes in (recommendations, health, oip, admin):
        app.include_router(routes.router)
    return app
