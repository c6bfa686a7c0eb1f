"""The websocket session protocol: binary JPEG/PNG frames in, JSON messages out; latest-frame-wins,
one frame in flight per stream.

Frames are numbered from 0 in arrival order. Every id is answered (``result``), answered with an
``error`` naming it, or listed in the ``dropped`` field of the next message (a newer frame arrived
while one was being processed, or while the per-stream frame-rate limit held the next start back).
Text frames are control messages: ``{"type": "config", ...option fields}`` (applies to frames
received after it: each frame is bound to the options current when it arrived), ``{"type": "reset"}``
(new tracker, ids restart) and ``{"type": "ping"}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import WebSocket
from pydantic import BaseModel, ConfigDict, ValidationError

from okpose.imageio import ImageError, check_size
from service.engine import BoxError, Engine
from service.options import Options, OptionsUpdate
from service.schemas import Hello, StreamError, StreamResult

log = logging.getLogger("service.ws")

CLOSE_GOING_AWAY = 1001


class ControlMessage(OptionsUpdate):
    """Text frames: ``config`` (with option fields), ``reset`` or ``ping``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["config", "reset", "ping"]


class Ack(BaseModel):
    type: Literal["config_ack", "reset_ack", "pong", "bye"]
    config: Options | None = None
    reason: str | None = None
    dropped: list[int] = []


class SlowConsumer(Exception):
    """The client stopped reading its results."""


@dataclass(frozen=True)
class Pending:
    frame: int
    data: bytes
    arrived: float  # perf_counter seconds
    options: Options  # the stream's options when the frame arrived


class StreamSession:
    def __init__(self, ws: WebSocket, engine: Engine, max_fps: float, send_timeout_s: float):
        self.ws, self.engine = ws, engine
        self.state = engine.new_stream()
        self.options: Options = engine.defaults
        self.min_interval, self.send_timeout_s = 1.0 / max_fps, send_timeout_s
        self.next_id = 0
        self.pending: Pending | None = None
        self.dropped: list[int] = []
        self.wake = asyncio.Event()
        self.send_lock = asyncio.Lock()

    async def send(self, msg: BaseModel) -> None:
        """Send one message; a client that stops reading is cut off after ``send_timeout_s``
        (its frames were already being dropped, so nothing piles up meanwhile)."""
        async with self.send_lock:
            try:
                await asyncio.wait_for(self.ws.send_text(msg.model_dump_json(exclude_none=True)), self.send_timeout_s)
            except TimeoutError as e:
                self.engine.metrics.errors.labels("slow_consumer").inc()
                raise SlowConsumer(f"client did not read for {self.send_timeout_s} s") from e

    async def hello(self) -> None:
        await self.send(
            Hello(
                model=self.engine.info,
                video_model=self.engine.video_info,
                config=self.options,
                max_frame_bytes=self.engine.max_image_bytes,
            )
        )

    def _take_dropped(self) -> list[int]:
        d, self.dropped = self.dropped, []
        return d

    async def receive_loop(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data, text = msg.get("bytes"), msg.get("text")
            if data is not None:
                await self.frame(data)
            elif text is not None:
                await self.control(text)

    async def frame(self, data: bytes) -> None:
        fid = self.next_id
        self.next_id += 1
        if self.engine.draining.is_set():
            await self.send(StreamError(frame=fid, error="server is shutting down"))
            return
        try:
            check_size(len(data), self.engine.max_image_bytes)
        except ImageError as e:
            self.engine.metrics.frames.labels("stream", "rejected").inc()
            await self.send(StreamError(frame=fid, error=str(e)))
            return
        if self.pending is not None:
            # a newer frame replaces this one: the newer frame's answer (result or error) carries the id
            self.dropped.append(self.pending.frame)
            self.engine.metrics.frames.labels("stream", "dropped").inc()
        self.pending = Pending(fid, data, time.perf_counter(), self.options)
        self.wake.set()

    async def control(self, text: str) -> None:
        try:
            msg = ControlMessage.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "message"
            got = first.get("input")
            shown = f", got {got!r}" if isinstance(got, str | int | float | bool) and len(repr(got)) < 80 else ""
            await self.send(StreamError(error=f"invalid control message ({where}: {first['msg']}{shown})"))
            return
        if msg.type == "ping":
            await self.send(Ack(type="pong"))
        elif msg.type == "reset":
            self.state = self.engine.new_stream()
            await self.send(Ack(type="reset_ack"))
        elif msg.video_mode and self.engine.video is None:
            await self.send(StreamError(error="video_mode: this server has no video model (POSE_VIDEO_MODEL)"))
        else:
            self.options = self.options.updated(msg)  # a new object; frames already received keep theirs
            await self.send(Ack(type="config_ack", config=self.options))

    async def work_loop(self) -> None:
        last_start = -1e9
        while True:
            # sleep only when there is nothing to do (a wake-up that came while a frame was being
            # processed must not be lost, nor the start of a drain)
            if self.pending is None and not self.engine.draining.is_set():
                await self.wake.wait()
            self.wake.clear()
            if self.engine.draining.is_set() and self.pending is None:
                # graceful shutdown: everything accepted has been answered; say goodbye properly
                await self.send(Ack(type="bye", reason="server is shutting down", dropped=self._take_dropped()))
                await self.ws.close(CLOSE_GOING_AWAY, "server is shutting down")
                return
            # frame-rate limit: start frames no closer than 1 / max_fps; newer frames arriving
            # meanwhile replace the pending one, so the limit drops stale frames, never the latest
            wait = self.min_interval - (time.monotonic() - last_start)
            if wait > 0:
                await asyncio.sleep(wait)
            if self.pending is None:
                continue
            try:
                # the frame is taken only once a worker is free (streams take turns, first come first
                # served): it is the newest this stream has, and it never waits in the executor behind
                # other streams' frames while newer ones arrive
                async with self.engine.worker():
                    if self.pending is None:
                        continue
                    last_start = time.monotonic()
                    p, self.pending = self.pending, None
                    answer = await self.engine.run(p.data, p.options, "stream", self.state, arrived=p.arrived)
            except (ImageError, BoxError) as e:
                await self.send(StreamError(frame=p.frame, error=str(e), dropped=self._take_dropped()))
            except Exception as e:  # noqa: BLE001 - one bad frame must not end the stream
                log.exception("frame %d failed", p.frame)
                await self.send(
                    StreamError(
                        frame=p.frame, error=f"processing failed: {type(e).__name__}", dropped=self._take_dropped()
                    )
                )
            else:
                await self.send(StreamResult(frame=p.frame, dropped=self._take_dropped(), **dict(answer)))
