"""REST routes: POST /pose, /health, /ready, /metrics."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.engine import Engine
from service.imageio import ImageError
from service.pipeline import Options
from service.schemas import ErrorResponse, PoseResponse
from service.security import key_ok

router = APIRouter()

IMAGE_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
POSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "boxes": {"type": "string", "description": "JSON list of [x1, y1, x2, y2]"},
                    },
                }
            },
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(503, "service is starting")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def require_key(engine: EngineDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    if not key_ok(engine.settings, x_api_key):
        raise HTTPException(401, "missing or invalid API key (X-API-Key header)")


def parse_boxes(raw: str | None, max_persons: int) -> np.ndarray | None:
    """``boxes`` = JSON list of [x1, y1, x2, y2] in image pixels."""
    if raw is None or raw == "":
        return None
    try:
        val = json.loads(raw)
        arr = np.asarray(val, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise HTTPException(422, "boxes must be a JSON list of [x1, y1, x2, y2]") from e
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.isfinite(arr).all():
        raise HTTPException(422, "boxes must be a JSON list of [x1, y1, x2, y2] with finite numbers")
    if len(arr) > max_persons:
        raise HTTPException(422, f"at most {max_persons} boxes")
    if ((arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])).any():
        raise HTTPException(422, "each box needs x2 > x1 and y2 > y1")
    return arr


async def read_image(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The image bytes (multipart field ``image`` or raw body) and the form's ``boxes`` if any."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, f"body is {declared} bytes, limit is {limit}")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=limit)
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - starlette raises several parse error types
            raise HTTPException(400, f"malformed multipart body: {e}") from e
        upload = form.get("image")
        boxes = form.get("boxes")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart field 'image' (a file) is required")
        data = await upload.read(limit + 1)
        return data, boxes if isinstance(boxes, str) else None
    if ctype and ctype not in IMAGE_TYPES:
        raise HTTPException(415, f"unsupported content type {ctype!r}: send image/jpeg, image/png or multipart")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks), None


@router.post(
    "/pose",
    response_model=PoseResponse,
    openapi_extra=POSE_BODY,
    responses={c: {"model": ErrorResponse} for c in (400, 401, 413, 415, 422, 429)},
    dependencies=[Depends(require_key)],
)
async def pose(
    request: Request,
    engine: EngineDep,
    keypoint_threshold: Annotated[float | None, Query(ge=0, le=1)] = None,
    pose_score_threshold: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_persons: Annotated[int | None, Query(ge=1, le=200)] = None,
    boxes: Annotated[str | None, Query(description="JSON list of [x1, y1, x2, y2]; skips the detector")] = None,
) -> dict[str, Any]:
    """Estimate poses in one JPEG/PNG image (stateless: no track ids)."""
    client = request.client.host if request.client else "unknown"
    busy = engine.rest_limiter.acquire(client)
    if busy is not None:
        raise HTTPException(429, f"too many concurrent requests: {busy}", headers={"Retry-After": "1"})
    try:
        return await _pose(request, engine, keypoint_threshold, pose_score_threshold, max_persons, boxes)
    finally:
        engine.rest_limiter.release(client)


async def _pose(
    request: Request,
    engine: Engine,
    keypoint_threshold: float | None,
    pose_score_threshold: float | None,
    max_persons: int | None,
    boxes: str | None,
) -> dict[str, Any]:
    m = engine.metrics
    data, form_boxes = await read_image(request, engine.settings.max_image_bytes)
    opts = engine.pipeline.default_options()
    opts = Options(
        keypoint_threshold if keypoint_threshold is not None else opts.keypoint_threshold,
        pose_score_threshold if pose_score_threshold is not None else opts.pose_score_threshold,
        max_persons or opts.max_persons,
    )
    user_boxes = parse_boxes(form_boxes if form_boxes is not None else boxes, opts.max_persons)

    try:
        out = await asyncio.get_running_loop().run_in_executor(
            engine.executor, engine.answer, data, opts, None, user_boxes
        )
    except ImageError as e:
        m.frames.labels("rest", "rejected").inc()
        raise HTTPException(400, str(e)) from e
    m.frames.labels("rest", "processed").inc()
    m.observe_timings(out["timings_ms"])
    m.persons.observe(len(out["persons"]))
    out["timings_ms"] = {k: round(v, 3) for k, v in out["timings_ms"].items()}
    out["model"] = engine.info.model_dump()
    return out


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Readiness: models loaded; reports the active detector backend and pose model."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        return Response(json.dumps({"status": "starting"}), status_code=503, media_type="application/json")
    body = {
        "status": "ready",
        "detector": engine.pipeline.detector.name,
        "pose_model": engine.info.model_dump(),
        "providers": engine.pipeline.pose.session.get_providers(),
        "active_streams": engine.limiter.total,
        "uptime_s": round(time.time() - engine.started, 1),
    }
    return Response(json.dumps(body), media_type="application/json")


@router.get("/metrics")
async def metrics(engine: EngineDep) -> Response:
    return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)
