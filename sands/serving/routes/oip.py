"""The Open Inference Protocol (v2) over the champion ranker: model metadata, readiness and
inference on raw feature tensors."""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from sands.models.ranking import platt_probabilities
from sands.serving.routes.common import (
    Service,
    ServiceState,
    echo,
    error_response,
    json_response,
    status_for,
)
from sands.serving.snapshot import ArmModel, ServingSnapshot

router = APIRouter()


@router.get("/v2/models/{name}")
async def model_metadata(name: str, service: Service) -> Response:
    found = _served_model(service, name)
    if isinstance(found, Response):
        return found
    snapshot, champion = found
    versions = [str(m.version) for m in (snapshot.champion, snapshot.challenger) if m]
    return json_response(
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


@router.get("/v2/models/{name}/ready")
async def model_ready(name: str, service: Service) -> Response:
    found = _served_model(service, name)
    return found if isinstance(found, Response) else json_response({"name": name, "ready": True})


@router.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request, service: Service) -> Response:
    found = _served_model(service, name)
    if isinstance(found, Response):
        return found
    _, champion = found
    # A few bodies at once (each up to 16 MiB), parsed and scored on a worker thread: a big one
    # held the event loop for a second, health probes and lists waiting behind it.
    async with service.inference_slots:
        try:
            payload = await service.body(request)
        except ValueError as error:  # BodyTooLarge (413), BodyTooSlow (408)
            return error_response(status_for(error), f"bad inference request: {error}")
        return await run_in_threadpool(_inference, name, payload, champion)


def _inference(name: str, payload: bytes, champion: ArmModel) -> Response:
    """The OIP answer to one inference body: scores and calibrated probabilities per row."""
    try:
        body = orjson.loads(payload)
        matrix = _oip_matrix(body, len(champion.ranker.spec.features))
    except ValueError as error:  # orjson.JSONDecodeError is one
        return error_response(status_for(error), f"bad inference request: {error}")
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
    return json_response(reply)


def _served_model(service: ServiceState, name: str) -> tuple[ServingSnapshot, ArmModel] | Response:
    """The snapshot and its champion when `name` is the served model, else the error answer."""
    served = service.registry.model_name
    if name != served:
        return error_response(404, f"unknown model {echo(name)}; this server serves {served!r}")
    snapshot = service.watcher.snapshot
    if snapshot is None or snapshot.champion is None:
        return error_response(503, f"model {name!r} has no champion loaded yet")
    return snapshot, snapshot.champion


def _oip_matrix(body: object, features: int) -> np.ndarray:
    """The FP32/FP64 input tensor of an Open Inference Protocol request, or ValueError."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ValueError("body must be an object with a non-empty 'inputs' list")
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict):
        raise ValueError("each input must be an object with name, shape, datatype and data")
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if datatype not in ("FP32", "FP64"):
        raise ValueError(f"datatype must be FP32 or FP64, not {echo(datatype)}")
    # `type(s) is int`: a bool is an int to Python, and [true, 35] is no shape.
    if not isinstance(shape, list) or len(shape) != 2 or any(type(s) is not int for s in shape):
        raise ValueError("shape must be [rows, features]: two integers")
    if shape[1] != features:
        raise ValueError(f"the model takes {features} features per row, not {shape[1]}")
    values = _tensor_values(tensor.get("data"), features)
    if shape[0] < 0 or values.size != shape[0] * shape[1]:
        raise ValueError(f"data holds {values.size} values; shape {shape} needs rows x {features}")
    return values.reshape(shape)


def _tensor_values(data: object, features: int) -> np.ndarray:
    """The tensor's values, flat or as rows of `features`: finite JSON numbers that fit FP32,
    or ValueError."""
    if not isinstance(data, list):
        raise ValueError("data must be a list of numbers")
    if data and all(type(row) is list for row in data):
        # Rows of other lengths would be re-cut into rows, each taking the next one's values.
        lengths = [len(row) for row in data]
        if any(n != features for n in lengths):
            row = next(i for i, n in enumerate(lengths) if n != features)
            raise ValueError(f"row {row} holds {lengths[row]} values, not {features}")
        data = [value for row in data for value in row]
    # numpy would read true as 1, null as NaN and "1.5" as 1.5: only JSON numbers are features.
    if not set(map(type, data)) <= {int, float}:
        raise ValueError("data must hold only numbers (not booleans, nulls, strings or lists)")
    with np.errstate(over="ignore"):
        values = np.asarray(data, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError("data must be numbers within FP32 range")
    return values
