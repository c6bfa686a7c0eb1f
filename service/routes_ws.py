"""WS /stream: binary JPEG frames in, JSON results out; latest-frame-wins, one frame in flight.

Frames are numbered from 0 in arrival order. Each answer carries ``dropped``: ids skipped since
the previous message because a newer frame arrived while one was being processed (or while the
per-stream frame-rate limit held the next start back). Every id is answered, listed as dropped,
or answered with an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.engine import Engine
from service.imageio import ImageError
from service.pipeline import Options
from service.security import key_ok, origin_ok

router = APIRouter()
log = logging.getLogger("service.ws")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


class ControlMessage(BaseModel):
    """Text frames: ``{"type": "config", ...}``, ``{"type": "reset"}`` or ``{"type": "ping"}``."""

    model_config = ConfigDict(extra="forbid")
    type: str
    detect_interval: int | None = Field(None, ge=1, le=300)
    keypoint_threshold: float | None = Field(None, ge=0, le=1)
    pose_score_threshold: float | None = Field(None, ge=0, le=1)
    max_persons: int | None = Field(None, ge=1, le=200)


class SlowConsumer(Exception):
    """The client stopped reading its results."""


class StreamSession:
    def __init__(self, ws: WebSocket, engine: Engine):
        self.ws, self.engine = ws, engine
        self.state = engine.pipeline.new_stream()
        self.opts: Options = engine.pipeline.default_options()
        self.min_interval = 1.0 / engine.settings.max_fps
        self.next_id = 0
        self.pending: tuple[int, bytes, float] | None = None
        self.dropped: list[int] = []
        self.wake = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.closed = False

    async def send(self, msg: dict[str, Any]) -> None:
        """Send one message; a client that stops reading is cut off after ``send_timeout_s``
        (its frames were already being dropped, so nothing piles up meanwhile)."""
        async with self.send_lock:
            try:
                await asyncio.wait_for(self.ws.send_text(json.dumps(msg, separators=(",", ":"))),
                                       self.engine.settings.send_timeout_s)  # fmt: skip
            except asyncio.TimeoutError as e:
                self.engine.metrics.errors.labels("slow_consumer").inc()
                raise SlowConsumer(f"client did not read for {self.engine.settings.send_timeout_s} s") from e

    def _take_dropped(self) -> list[int]:
        d, self.dropped = self.dropped, []
        return d

    def _drop(self, frame_id: int) -> None:
        # only ever called when a newer frame replaces this one, so the newer frame's answer
        # (result or error) carries the id
        self.dropped.append(frame_id)
        self.engine.metrics.frames.labels("stream", "dropped").inc()

    async def receive_loop(self) -> None:
        limit = self.engine.settings.max_image_bytes
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data, text = msg.get("bytes"), msg.get("text")
            if data is not None:
                fid = self.next_id
                self.next_id += 1
                if self.engine.draining.is_set():
                    await self.send({"type": "error", "frame": fid, "error": "server is shutting down"})
                elif len(data) > limit:
                    self.engine.metrics.frames.labels("stream", "rejected").inc()
                    await self.send(
                        {"type": "error", "frame": fid, "error": f"frame is {len(data)} bytes, limit {limit}"}
                    )
                else:
                    if self.pending is not None:
                        self._drop(self.pending[0])
                    self.pending = (fid, data, time.perf_counter())
                    self.wake.set()
            elif text is not None:
                await self.control(text)

    async def control(self, text: str) -> None:
        try:
            msg = ControlMessage.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "message"
            await self.send({"type": "error", "error": f"invalid control message ({where}: {first['msg']})"})
            return
        if msg.type == "ping":
            await self.send({"type": "pong"})
        elif msg.type == "reset":
            self.state = self.engine.pipeline.new_stream()
            await self.send({"type": "reset_ack"})
        elif msg.type == "config":
            changes = msg.model_dump(exclude_none=True, exclude={"type"})
            for k, v in changes.items():
                setattr(self.opts, k, v)
            await self.send({"type": "config_ack", "config": self.opts.__dict__})
        else:
            await self.send({"type": "error", "error": f"unknown control type {msg.type!r} (config | reset | ping)"})

    async def work_loop(self) -> None:
        loop = asyncio.get_running_loop()
        m = self.engine.metrics
        last_start = -1e9
        while True:
            # sleep only when there is nothing to do (a wake-up that came while a frame was being
            # processed must not be lost, nor the start of a drain)
            if self.pending is None and not self.engine.draining.is_set():
                await self.wake.wait()
            self.wake.clear()
            if self.engine.draining.is_set() and self.pending is None:
                # graceful shutdown: everything accepted has been answered; say goodbye properly
                await self.send({"type": "bye", "reason": "server is shutting down", "dropped": self._take_dropped()})
                await self.ws.close(CLOSE_GOING_AWAY, "server is shutting down")
                return
            # frame-rate limit: start frames no closer than 1 / max_fps; newer frames arriving
            # meanwhile replace the pending one, so the limit drops stale frames, never the latest
            wait = self.min_interval - (time.monotonic() - last_start)
            if wait > 0:
                await asyncio.sleep(wait)
            if self.pending is None:
                continue
            last_start = time.monotonic()
            fid, data, t_arrival = self.pending
            self.pending = None
            try:
                out = await loop.run_in_executor(self.engine.executor, self.engine.answer, data, self.opts, self.state)
                out["timings_ms"] = {k: round(v, 3) for k, v in out["timings_ms"].items()}
            except ImageError as e:
                m.frames.labels("stream", "rejected").inc()
                await self.send({"type": "error", "frame": fid, "error": str(e), "dropped": self._take_dropped()})
            except Exception as e:  # noqa: BLE001 - one bad frame must not end the stream
                log.exception("frame %d failed", fid)
                m.errors.labels("frame").inc()
                m.frames.labels("stream", "failed").inc()
                await self.send({"type": "error", "frame": fid, "error": f"processing failed: {type(e).__name__}",
                                 "dropped": self._take_dropped()})  # fmt: skip
            else:
                out["timings_ms"]["queue"] = round(
                    (time.perf_counter() - t_arrival) * 1e3 - out["timings_ms"]["total"], 3
                )
                m.frames.labels("stream", "processed").inc()
                m.observe_timings(out["timings_ms"])
                m.persons.observe(len(out["persons"]))
                await self.send({"type": "result", "frame": fid, **out, "dropped": self._take_dropped()})


async def refuse(ws: WebSocket, status: int, code: int, reason: str, retry_after: int | None = None) -> None:
    """Refuse before accepting: an HTTP response (e.g. 429 + Retry-After) where the server supports
    it, else a close frame with ``code``."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        await ws.send_denial_response(JSONResponse({"detail": reason}, status, headers=headers))
    else:
        await ws.close(code, reason)


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    engine: Engine | None = getattr(ws.app.state, "engine", None)
    if engine is None or engine.draining.is_set():
        await refuse(ws, 503, CLOSE_TRY_AGAIN, "service is starting or shutting down", retry_after=5)
        return
    key = ws.headers.get("x-api-key") or ws.query_params.get("api_key")
    if not key_ok(engine.settings, key):
        await refuse(ws, 401, CLOSE_POLICY, "missing or invalid API key")
        return
    if not origin_ok(engine.settings, ws.headers.get("origin")):
        await refuse(ws, 403, CLOSE_POLICY, "origin not allowed")
        return
    client = ws.client.host if ws.client else "unknown"
    reason = engine.limiter.acquire(client)
    if reason is not None:
        await refuse(ws, 429, CLOSE_TRY_AGAIN, f"too many streams: {reason}", retry_after=5)
        return
    engine.metrics.active_streams.inc()
    session = StreamSession(ws, engine)
    tasks: list[asyncio.Task[None]] = []
    try:
        await ws.accept()
        await session.send({"type": "hello", "model": engine.info.model_dump(), "config": session.opts.__dict__})
        tasks = [asyncio.create_task(session.receive_loop()), asyncio.create_task(session.work_loop()),
                 asyncio.create_task(_wake_on_drain(engine, session))]  # fmt: skip
        done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if isinstance(exc, SlowConsumer):
                log.warning("closing stream from %s: %s", client, exc)
            elif exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                log.error("stream from %s failed: %r", client, exc)
    except (WebSocketDisconnect, SlowConsumer):
        pass
    finally:
        for t in tasks:
            t.cancel()
        engine.limiter.release(client)
        engine.metrics.active_streams.dec()


async def _wake_on_drain(engine: Engine, session: StreamSession) -> None:
    await engine.draining.wait()
    session.wake.set()
