"""Admin endpoints behind a bearer token: reload the snapshot now, set the canary share."""

from __future__ import annotations

import asyncio
import hmac

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from sands.models.registry import RegistryError
from sands.serving.config import ADMIN_TOKEN_ENV
from sands.serving.routes.common import (
    BodyTooLarge,
    BodyTooSlow,
    Service,
    describe,
    error_response,
    json_response,
    status_for,
)

router = APIRouter()


@router.post("/admin/reload")
async def reload(service: Service, authorization: str | None = Header(None)) -> Response:
    denied = _authorised(service.config.admin_token, authorization)
    if denied:
        return denied
    # Off the event loop: loading a model takes seconds, and requests must not wait for it.
    swapped = await asyncio.to_thread(service.watcher.refresh)
    service.metrics.watched(service.watcher)
    return json_response({"swapped": swapped, **describe(service.watcher.snapshot)})


@router.put("/admin/canary")
async def canary(
    request: Request, service: Service, authorization: str | None = Header(None)
) -> Response:
    denied = _authorised(service.config.admin_token, authorization)
    if denied:
        return denied
    try:
        share = orjson.loads(await service.body(request))["share"]
    except (BodyTooLarge, BodyTooSlow) as error:
        return error_response(status_for(error), str(error))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        share = None
    # `true` would be a share of 1 (everyone to the challenger), "0.5" a string: neither is one.
    if type(share) not in (int, float):
        return error_response(400, 'body must be {"share": <number between 0 and 1>}')
    try:
        await asyncio.to_thread(
            service.registry.set_canary_share,
            share,
            "sands serve admin",
            "set through /admin/canary",
        )
    except RegistryError as error:
        return error_response(status_for(error), str(error))
    await asyncio.to_thread(service.watcher.refresh)
    service.metrics.watched(service.watcher)
    return json_response(describe(service.watcher.snapshot))


def _authorised(admin_token: str | None, authorization: str | None) -> Response | None:
    """None when `authorization` carries the admin bearer token, else the 403 or 401 answer."""
    if not admin_token:
        return error_response(403, f"admin endpoints are disabled: set {ADMIN_TOKEN_ENV}")
    scheme, _, token = (authorization or "").partition(" ")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), admin_token.encode()
    ):
        return error_response(401, "a valid 'Authorization: Bearer <token>' header is required")
    return None
