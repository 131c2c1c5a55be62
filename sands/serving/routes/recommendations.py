"""GET /recommendations/{user_id}: a user's list from the current snapshot, logged as an
impression."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from sands.features.offline import USER_FEATURES
from sands.models.candidates import USER_HISTORY
from sands.serving.prediction_log import RANKED, Impression
from sands.serving.routes.common import Service, echo, error_response, json_response
from sands.serving.snapshot import Recommendation, recommend

SIMULATED_CLOCK_HEADER = "X-Sands-Served-At"
# Plain ASCII digits: `int()` would also take `5_0`, ` 5`, `+5` and full-width digits.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")

router = APIRouter()


@router.get("/recommendations/{user_id}")
async def recommendations(
    user_id: str,
    service: Service,
    k: str = Query("10", description="how many artworks: a whole number from 1 to max_k"),
    served_at: str | None = Header(None, alias=SIMULATED_CLOCK_HEADER),
) -> Response:
    config, snapshot = service.config, service.watcher.snapshot
    if not _WHOLE_NUMBER.fullmatch(k) or not 1 <= int(k) <= config.max_k:
        return error_response(
            422, f"k must be a whole number from 1 to {config.max_k}, not {echo(k)}"
        )
    count = int(k)
    if snapshot is None:
        return error_response(503, f"nothing to serve yet: {service.watcher.last_error}")
    if user_id not in snapshot.data.known_users:
        return error_response(404, f"unknown user {echo(user_id)}")
    vector = service.store.get(USER_FEATURES.name, [user_id])[0]
    history = service.store.get(USER_HISTORY, [user_id])[0]
    impression_id = uuid.uuid4().hex
    # Seeded by the impression: the draw is reproducible from the log, and no generator is shared
    # between concurrent requests.
    rng = random.Random(int(impression_id, 16)) if config.exploration.rate else None
    served = recommend(
        snapshot, user_id, vector, history, count, config.candidates, config.exploration, rng
    )
    now = _serving_time(served_at if config.simulated_clock else None)
    if now is None:
        return error_response(400, f"bad {SIMULATED_CLOCK_HEADER}")
    service.log.record(
        Impression(
            impression_id,
            user_id,
            served.artwork_ids,
            served.scores,
            served.model_version,
            served.arm,
            now,
            served.strategy,
            served.propensities,
            served.explored,
            config.exploration.name,
            snapshot.data.sources,
        )
    )
    service.metrics.served(served.arm, served.strategy)
    return json_response(_body(user_id, impression_id, served))


def _serving_time(served_at: str | None) -> datetime | None:
    """Now, or the simulated time a simulation sent (None when it is no valid time)."""
    if not served_at:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(served_at).astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. year 1 at +14:00
        return None


def _body(user_id: str, impression_id: str, served: Recommendation) -> dict[str, object]:
    """The answer: who was served what, by which model and arm, items in served order."""
    return {
        "user_id": user_id,
        "impression_id": impression_id,
        "model_version": served.model_version,
        "arm": served.arm,
        "strategy": served.strategy,
        "fallback": served.strategy != RANKED,
        "items": [
            {"artwork_id": a, "score": s, "position": p, "propensity": q}
            for p, (a, s, q) in enumerate(
                zip(
                    served.artwork_ids,
                    served.scores,
                    served.propensities or [1.0] * len(served.artwork_ids),
                    strict=True,
                ),
                1,
            )
        ],
    }
