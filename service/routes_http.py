"""REST routes: POST /pose, /health, /ready, /metrics. Thin: read the request, await ``Engine.run``,
return the wire model; errors are ``ErrorResponse`` (``{"detail": str}``) for every status."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.responses import PlainTextResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.formparsers import MultiPartException, MultiPartParser

from okpose.imageio import ImageError, ImageTooLarge, check_size
from service.engine import BoxError, Engine
from service.options import RestOptions
from service.schemas import ErrorResponse, ModelInfo, PoseResponse
from service.security import API_KEY_HEADER, key_ok
from service.settings import Settings

router = APIRouter()

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and a boxes field on top of the image
RAW_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
BINARY = {"schema": {"type": "string", "format": "binary"}}
POSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the image as a multipart field `image` (with an optional `boxes` field), or as the raw body",
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
            **{t: BINARY for t in RAW_TYPES},
        },
    }
}
ERRORS = {c: {"model": ErrorResponse} for c in (400, 401, 413, 415, 422, 429, 503)}

api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="required when POSE_API_KEY is set")


def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(503, "service is starting")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def require_key(request: Request, key: Annotated[str | None, Security(api_key_header)] = None) -> None:
    settings: Settings = request.app.state.settings
    if not key_ok(settings.api_key, key):
        raise HTTPException(401, f"missing or invalid API key ({API_KEY_HEADER} header)")


def parse_boxes(raw: str | None, max_persons: int) -> np.ndarray | None:
    """``boxes`` = JSON list of [x1, y1, x2, y2] in image pixels (checked against the image later)."""
    if raw is None or raw == "":
        return None
    try:
        arr = np.asarray(json.loads(raw), dtype=np.float32)
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


async def counted(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """The body, refused (``ImageTooLarge``) the moment the running byte count crosses ``limit``."""
    n = 0
    async for chunk in stream:
        n += len(chunk)
        check_size(n, limit)
        yield chunk


async def read_image(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The image bytes (multipart field ``image`` or raw body) and the form's ``boxes`` if any.

    Whatever the framing (Content-Length or chunked), at most ``limit`` (+ multipart overhead) bytes
    are read and held, in memory only; beyond that the answer is 413 at once.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body_limit = limit + MULTIPART_OVERHEAD if ctype == "multipart/form-data" else limit
    declared = request.headers.get("content-length")
    try:
        if declared is not None and declared.isdigit():
            check_size(int(declared), body_limit)
        if ctype == "multipart/form-data":
            parser = MultiPartParser(
                request.headers,
                counted(request.stream(), body_limit),
                max_files=1,
                max_fields=4,
                max_part_size=64 * 1024,
            )
            parser.spool_max_size = body_limit + 1  # never spooled to disk
            try:
                form = await parser.parse()
            except MultiPartException as e:
                raise HTTPException(400, f"malformed multipart body: {e.message}") from e
            upload, boxes = form.get("image"), form.get("boxes")
            if upload is None or isinstance(upload, str):
                raise HTTPException(422, "multipart field 'image' (a file) is required")
            return await upload.read(), boxes if isinstance(boxes, str) else None
        if ctype and ctype not in RAW_TYPES:
            raise HTTPException(415, f"unsupported content type {ctype!r}: send image/jpeg, image/png or multipart")
        return b"".join([c async for c in counted(request.stream(), limit)]), None
    except ImageTooLarge as e:
        raise HTTPException(413, str(e)) from e


@router.post(
    "/pose",
    response_model=PoseResponse,
    openapi_extra=POSE_BODY,
    responses=ERRORS,  # type: ignore[arg-type]
    dependencies=[Depends(require_key)],
)
async def pose(request: Request, engine: EngineDep, query: Annotated[RestOptions, Query()]) -> PoseResponse:
    """Estimate poses in one JPEG/PNG image (stateless: no track ids)."""
    client = request.client.host if request.client else "unknown"
    busy = engine.rest_limiter.acquire(client)
    if busy is not None:
        raise HTTPException(429, f"too many concurrent requests: {busy}", headers={"Retry-After": "1"})
    try:
        data, form_boxes = await read_image(request, engine.max_image_bytes)
        opts = engine.defaults.updated(query.update())
        boxes = parse_boxes(form_boxes if form_boxes is not None else query.boxes, opts.max_persons)
        try:
            async with engine.worker():
                answer = await engine.run(data, opts, "rest", boxes=boxes)
        except ImageTooLarge as e:
            raise HTTPException(413, str(e)) from e
        except ImageError as e:
            raise HTTPException(400, str(e)) from e
        except BoxError as e:
            raise HTTPException(422, str(e)) from e
        return PoseResponse(**dict(answer), model=engine.info)
    finally:
        engine.rest_limiter.release(client)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    detector: str
    pose_model: ModelInfo
    video_model: ModelInfo | None = Field(None, description="the video-mode model, if one is loaded")
    video_mode_default: bool = Field(description="whether streams use the video model unless they say otherwise")
    providers: list[str]
    active_streams: int
    uptime_s: float


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/ready", responses={503: {"model": ErrorResponse, "description": "starting, or draining on shutdown"}})
async def ready(request: Request) -> Ready:
    """Readiness: models loaded and not shutting down (503 from the moment a drain starts, so an
    orchestrator stops routing new clients here while open streams finish)."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(503, "service is starting")
    if engine.draining.is_set():
        raise HTTPException(503, "service is draining (shutting down)")
    return Ready(
        detector=engine.detector.name,
        pose_model=engine.info,
        video_model=engine.video_info,
        video_mode_default=engine.defaults.video_mode,
        providers=engine.providers,
        active_streams=engine.limiter.total,
        uptime_s=round(time.time() - engine.started, 1),
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        }
    },
)
async def metrics(engine: EngineDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)
