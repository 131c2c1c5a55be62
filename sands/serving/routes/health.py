"""Liveness, readiness, the Prometheus scrape and the index: what orchestrators and people poll."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sands.serving.routes.common import Service, describe, json_response

router = APIRouter()


@router.get("/v2/health/live")
async def live() -> Response:
    return json_response({"live": True})


@router.get("/v2/health/ready")
async def ready(service: Service) -> Response:
    snapshot = service.watcher.snapshot
    ok = snapshot is not None and snapshot.champion is not None
    return json_response({"ready": ok}, 200 if ok else 503)


# The route name is the `endpoint` label of the request metrics, which dashboards filter on.
@router.get("/metrics", name="metrics")
async def prometheus(service: Service) -> Response:
    service.metrics.watched(service.watcher)
    service.metrics.log_state(service.log)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/")
async def index(service: Service) -> Response:
    return json_response({"service": "shifting-sands", **describe(service.watcher.snapshot)})
