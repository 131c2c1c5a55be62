"""The recommendation service (`sands serve`): FastAPI on uvicorn.

Requests read one immutable `ServingSnapshot`; a watcher thread polls the registry (aliases and
canary share) and the lake (catalogue, neighbours, segments, popularity), builds a new snapshot
off the request path and swaps the reference, so no request fails or waits during a swap.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import orjson
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sands.features.offline import USER_FEATURES
from sands.features.online_store import OnlineStore
from sands.models.candidates import USER_HISTORY
from sands.models.ranking import platt_probabilities
from sands.models.registry import (
    InvalidSetting,
    NoChallenger,
    NothingToRollBack,
    Registry,
    RegistryError,
    UnknownVersion,
)
from sands.serving.metrics import ServiceMetrics
from sands.serving.prediction_log import RANKED, Impression, PredictionLog, impressions_uri
from sands.serving.snapshot import (
    ArmModel,
    ServingSnapshot,
    recommend,
)
from sands.serving.watcher import SnapshotWatcher

ADMIN_TOKEN_ENV = "SANDS_ADMIN_TOKEN"
SIMULATED_CLOCK_HEADER = "X-Sands-Served-At"
ECHO_CHARS = 64  # of client input quoted back in an error
log = logging.getLogger(__name__)


@dataclass
class ServiceConfig:
    """Limits, polling and logging of one service process."""

    max_k: int = 100
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


def _json(content: object, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


# HTTP status of each typed error a route can meet, in one place (the first match in the
# exception's class hierarchy wins; anything else is the counted 500).
ERROR_STATUS: dict[type[Exception], int] = {
    NoChallenger: 409,
    NothingToRollBack: 409,
    UnknownVersion: 404,
    InvalidSetting: 400,
    ValueError: 400,
}


def status_for(error: Exception) -> int:
    """The HTTP status `ERROR_STATUS` maps this error to (500 when it maps none)."""
    for kind in type(error).__mro__:
        if kind in ERROR_STATUS:
            return ERROR_STATUS[kind]
    return 500


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _echo(value: object) -> str:
    """`value` as Python writes it, cut to ECHO_CHARS: an error never mirrors a huge input."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def _oip_matrix(body: object, features: int) -> np.ndarray:
    """The FP32/FP64 input tensor of an Open Inference Protocol request, or ValueError."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ValueError("body must be an object with a non-empty 'inputs' list")
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict):
        raise ValueError("each input must be an object with name, shape, datatype and data")
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if datatype not in ("FP32", "FP64"):
        raise ValueError(f"datatype must be FP32 or FP64, not {_echo(datatype)}")
    # `type(s) is int`: a bool is an int to Python, and [true, 35] is no shape.
    if not isinstance(shape, list) or len(shape) != 2 or any(type(s) is not int for s in shape):
        raise ValueError("shape must be [rows, features]: two integers")
    if shape[1] != features:
        raise ValueError(f"the model takes {features} features per row, not {shape[1]}")
    values = _tensor_values(tensor.get("data"))
    if shape[0] < 0 or values.size != shape[0] * shape[1]:
        raise ValueError(f"data holds {values.size} values; shape {shape} needs rows x {features}")
    return values.reshape(shape)


def _tensor_values(data: object) -> np.ndarray:
    """The tensor's values, flat or as rows: finite JSON numbers that fit FP32, or ValueError."""
    if not isinstance(data, list):
        raise ValueError("data must be a list of numbers")
    if data and all(type(row) is list for row in data):
        data = [value for row in data for value in row]
    # numpy would read true as 1, null as NaN and "1.5" as 1.5: only JSON numbers are features.
    if not set(map(type, data)) <= {int, float}:
        raise ValueError("data must hold only numbers (not booleans, nulls, strings or lists)")
    with np.errstate(over="ignore"):
        values = np.asarray(data, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError("data must be numbers within FP32 range")
    return values


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
        except Exception:
            if status:  # the headers are out: nothing else can be answered
                raise
            log.exception("unhandled error on %s %s", scope["method"], _echo(scope["path"]))
            fault = _error(500, "internal server error: the service log has the details")
            await fault(scope, receive, sending)
        finally:
            if status:
                endpoint = getattr(scope.get("route"), "name", None) or "unmatched"
                self.metrics.answered(endpoint, status, started)


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
    metrics = ServiceMetrics(CollectorRegistry())
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["store"] = open_store()
        state["log"] = PredictionLog(
            impressions_uri(lake_root), options, config.log_batch_rows, config.log_flush_seconds
        )
        watcher.start()
        metrics.watched(watcher)
        yield
        watcher.stop()
        state["log"].close()  # commits what is queued
        state["store"].close()

    app = FastAPI(title="Shifting Sands recommendations", lifespan=lifespan)
    app.state.watcher = watcher
    app.add_middleware(_Accounted, metrics=metrics)

    def _authorised(authorization: str | None) -> Response | None:
        if not config.admin_token:
            return _error(403, f"admin endpoints are disabled: set {ADMIN_TOKEN_ENV}")
        scheme, _, token = (authorization or "").partition(" ")
        # Bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), config.admin_token.encode()
        ):
            return _error(401, "a valid 'Authorization: Bearer <token>' header is required")
        return None

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        # The router's own 404 and 405 too: every error body is {"error": ...}.
        message = f"{error.detail}: {request.method} {_echo(request.url.path)}"
        answer = _error(error.status_code, message)
        answer.headers.update(error.headers or {})  # e.g. a 405's Allow
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return _error(422, f"invalid request: {problems}")

    @app.get("/recommendations/{user_id}")
    async def recommendations(
        user_id: str,
        k: int = Query(10),
        served_at: str | None = Header(None, alias=SIMULATED_CLOCK_HEADER),
    ) -> Response:
        snapshot = watcher.snapshot
        if not 1 <= k <= config.max_k:
            return _error(422, f"k must be between 1 and {config.max_k}, not {_echo(k)}")
        if snapshot is None:
            return _error(503, f"nothing to serve yet: {watcher.last_error}")
        store: OnlineStore = state["store"]
        if user_id not in snapshot.data.known_users:
            return _error(404, f"unknown user {_echo(user_id)}")
        vector, history = (
            store.get(USER_FEATURES.name, [user_id])[0],
            store.get(USER_HISTORY, [user_id])[0],
        )
        served = recommend(snapshot, user_id, vector, history, k, config.candidates)
        impression_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        if served_at and config.simulated_clock:
            try:
                now = datetime.fromisoformat(served_at).astimezone(UTC)
            except (ValueError, OverflowError):  # e.g. year 1 at +14:00
                return _error(400, f"bad {SIMULATED_CLOCK_HEADER}")
        state["log"].record(
            Impression(
                impression_id,
                user_id,
                served.artwork_ids,
                served.scores,
                served.model_version,
                served.arm,
                now,
                served.strategy,
            )
        )
        metrics.served(served.arm, served.strategy)
        body = {
            "user_id": user_id,
            "impression_id": impression_id,
            "model_version": served.model_version,
            "arm": served.arm,
            "strategy": served.strategy,
            "fallback": served.strategy != RANKED,
            "items": [
                {"artwork_id": a, "score": s, "position": p}
                for p, (a, s) in enumerate(zip(served.artwork_ids, served.scores, strict=True), 1)
            ],
        }
        return _json(body)

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        snapshot = watcher.snapshot
        ok = snapshot is not None and snapshot.champion is not None
        return _json({"ready": ok}, 200 if ok else 503)

    def _served_model(name: str) -> tuple[ServingSnapshot, ArmModel] | Response:
        if name != registry.model_name:
            return _error(
                404, f"unknown model {_echo(name)}; this server serves {registry.model_name!r}"
            )
        snapshot = watcher.snapshot
        if snapshot is None or snapshot.champion is None:
            return _error(503, f"model {name!r} has no champion loaded yet")
        return snapshot, snapshot.champion

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        found = _served_model(name)
        if isinstance(found, Response):
            return found
        snapshot, champion = found
        versions = [str(m.version) for m in (snapshot.champion, snapshot.challenger) if m]
        return _json(
            {
                "name": name,
                "versions": sorted(set(versions), key=int),
                "platform": "xgboost",
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "FP32",
                        "shape": [-1, len(champion.ranker.spec.features)],
                    }
                ],
                "outputs": [
                    {"name": "score", "datatype": "FP32", "shape": [-1]},
                    {"name": "probability", "datatype": "FP32", "shape": [-1]},
                ],
                "parameters": {"feature_names": champion.ranker.spec.features},
            }
        )

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        found = _served_model(name)
        return found if isinstance(found, Response) else _json({"name": name, "ready": True})

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        found = _served_model(name)
        if isinstance(found, Response):
            return found
        _, champion = found
        try:
            body = orjson.loads(await request.body())
            matrix = _oip_matrix(body, len(champion.ranker.spec.features))
        except ValueError as error:  # orjson.JSONDecodeError is one
            return _error(400, f"bad inference request: {error}")
        scores = champion.margins(matrix)
        probabilities = platt_probabilities(scores, champion.ranker.spec.calibration)
        rows = len(matrix)
        outputs = [
            {"name": "score", "datatype": "FP32", "shape": [rows], "data": scores.tolist()},
            {
                "name": "probability",
                "datatype": "FP32",
                "shape": [rows],
                "data": probabilities.tolist(),
            },
        ]
        reply = {"model_name": name, "model_version": str(champion.version), "outputs": outputs}
        if isinstance(body.get("id"), str):
            reply["id"] = body["id"]
        return _json(reply)

    @app.get("/metrics", name="metrics")
    async def prometheus() -> Response:
        metrics.watched(watcher)
        metrics.log_state(state["log"])
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload")
    async def reload(authorization: str | None = Header(None)) -> Response:
        denied = _authorised(authorization)
        if denied:
            return denied
        # Off the event loop: loading a model takes seconds, and requests must not wait for it.
        swapped = await asyncio.to_thread(watcher.refresh)
        metrics.watched(watcher)
        return _json({"swapped": swapped, **_describe(watcher.snapshot)})

    @app.put("/admin/canary")
    async def canary(request: Request, authorization: str | None = Header(None)) -> Response:
        denied = _authorised(authorization)
        if denied:
            return denied
        try:
            share = float(orjson.loads(await request.body())["share"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, 'body must be {"share": <number between 0 and 1>}')
        try:
            await asyncio.to_thread(
                registry.set_canary_share, share, "sands serve admin", "set through /admin/canary"
            )
        except RegistryError as error:
            return _error(status_for(error), str(error))
        await asyncio.to_thread(watcher.refresh)
        metrics.watched(watcher)
        return _json(_describe(watcher.snapshot))

    @app.get("/")
    async def index() -> Response:
        return _json({"service": "shifting-sands", **_describe(watcher.snapshot)})

    return app


def _describe(snapshot: ServingSnapshot | None) -> dict[str, object]:
    if snapshot is None:
        return {"champion": None, "challenger": None, "canary_share": 0.0}
    return {
        "champion": snapshot.champion.version if snapshot.champion else None,
        "challenger": snapshot.challenger.version if snapshot.challenger else None,
        "canary_share": snapshot.canary_share,
        "data_versions": snapshot.data.versions,
    }
