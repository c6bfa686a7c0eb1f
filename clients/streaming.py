"""Streaming engine shared by the webcam and video clients.

Two pacing modes:
- ``lockstep``: send a frame, wait for its answer (no frame is ever dropped; as fast as the server answers);
- ``live``: send frames at the source rate without waiting; the server keeps only the newest frame
  (latest-frame-wins) and lists skipped ids in ``dropped``, which the client counts and shows.
Reconnects with exponential backoff when the connection drops (e.g. a server restart), when the server
is busy (429) or failing (5xx); a refusal that retrying cannot fix (401 wrong key, 403 origin, 404 wrong
URL) raises ``PoseServiceError`` at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from clients.api import AsyncPoseClient, FrameResult, PoseServiceError
from clients.draw import draw_hud, draw_result
from okpose.export import VideoOut
from okpose.sources import Source, SourceError
from okpose.sources import open_source as _open_source

log = logging.getLogger("clients.stream")


def open_source(camera: int | None, video: str | None) -> tuple[Source, float]:
    """``okpose.sources`` for a camera index or a video / folder / URL; exits with the reason when it cannot."""
    try:
        src = _open_source(video if video else (camera if camera is not None else 0))
    except SourceError as e:
        raise SystemExit(f"cannot open the source: {e}") from None
    fps = src.fps or 30.0
    return src, fps if 1 <= fps <= 240 else 30.0


# The server decodes large JPEGs at a reduced scale down to a 960 px long side (POSE_DECODE_MIN_SIDE):
# sending more pixels than that costs bandwidth and client encode time and changes nothing it computes.
DEFAULT_MAX_SIDE = 960


def add_sending_args(p: argparse.ArgumentParser) -> None:
    """Options every streaming CLI shares: frame size sent, frame count, API key."""
    p.add_argument(
        "--max-side",
        "--max-width",
        dest="max_side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help="downscale frames to this long side before sending (0 = as captured)",
    )
    p.add_argument("--frames", type=int, default=0, help="stop after N frames")
    p.add_argument("--api-key", default=os.environ.get("POSE_API_KEY"))


def frames(src: Source, max_side: int, limit: int = 0) -> Iterator[np.ndarray]:
    """Frames downscaled (never up) so that the long side is at most ``max_side`` (0 = as captured)."""
    for img in itertools.islice(src, limit or None):  # never reads a frame past the limit
        h, w = img.shape[:2]
        r = max_side / max(h, w) if max_side else 1.0
        if r < 1:
            img = cv2.resize(img, (round(w * r), round(h * r)), interpolation=cv2.INTER_AREA)
        yield img


@dataclass
class Stats:
    sent: int = 0
    answered: int = 0
    dropped: int = 0
    errors: int = 0
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    sent_wh: tuple[int, int] = (0, 0)  # size of the frames sent (after downscaling)
    t0: float = field(default_factory=time.perf_counter)

    def hud(self, result: FrameResult | None) -> list[str]:
        el = max(time.perf_counter() - self.t0, 1e-6)
        lat = np.median(self.latencies_ms[-30:]) if self.latencies_ms else 0.0
        lines = [
            f"fps {self.answered / el:5.1f}  e2e {lat:5.1f} ms",
            f"sent {self.sent} ({self.sent_wh[0]}x{self.sent_wh[1]}) dropped {self.dropped}",
        ]
        if result is not None:
            t = result.timings_ms
            lines.append(" ".join(f"{k[:6]} {t[k]:.1f}" for k in ("detect", "pose", "track") if k in t))
            lines.append(f"persons {len(result.persons)}")
        return lines


class Sink:
    """Annotated MP4 and/or JSON-lines writer, and an optional live window."""

    def __init__(self, out: str | None, json_path: str | None, fps: float, show: bool):
        self.out, self.fps, self.show = out, fps, show
        self.writer = VideoOut(out, fps) if out else None
        self.jsonl = open(json_path, "w") if json_path else None  # noqa: SIM115
        self.frames_written = 0

    def record(self, msg: dict[str, Any]) -> None:
        if self.jsonl:
            self.jsonl.write(json.dumps(msg, separators=(",", ":")) + "\n")

    def frame(self, image: np.ndarray) -> bool:
        """Write/show a frame; False when the user closed the window."""
        if self.writer is not None:
            self.writer.write(image)
            self.frames_written += 1
        if self.show:
            cv2.imshow("okpose", image)
            return (cv2.waitKey(1) & 0xFF) not in (27, ord("q"))
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.jsonl:
            self.jsonl.close()
        if self.show:
            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()


async def run(
    url: str,
    source: Iterator[np.ndarray],
    sink: Sink,
    mode: str,
    fps: float,
    api_key: str | None = None,
    jpeg_quality: int = 80,
    reconnect: bool = True,
    config: dict[str, Any] | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
) -> Stats:
    """Stream ``source`` through the service until it ends. Returns the statistics."""
    stats = Stats()
    client = AsyncPoseClient(url, api_key)
    it = iter(source)
    done = False
    backoff = 0.5
    while not done:
        try:
            async with client.stream(**(config or {})) as s:
                backoff = 0.5
                if mode == "lockstep":
                    done = await _lockstep(s, it, sink, stats, jpeg_quality, on_result)
                else:
                    done = await _live(s, it, sink, stats, fps, jpeg_quality, on_result)
        except PoseServiceError as e:
            if not e.retryable:
                raise  # 401 / 403 / 404: fail fast with the server's reason
            handle_disconnect(e, reconnect, stats)
        except (TimeoutError, OSError) as e:
            handle_disconnect(e, reconnect, stats)
        except Exception as e:  # noqa: BLE001 - websockets' ConnectionClosed and friends
            if type(e).__module__.startswith("websockets"):
                handle_disconnect(e, reconnect, stats)
            else:
                raise
        if not done:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
    await client.aclose()
    return stats


def handle_disconnect(e: BaseException, reconnect: bool, stats: Stats) -> None:
    if not reconnect:
        raise SystemExit(f"connection failed: {e}")
    stats.reconnects += 1
    log.warning("connection lost (%s); reconnecting", e)


def _annotate(image: np.ndarray, result: FrameResult | None, stats: Stats, limbs: list[tuple[int, int]]) -> np.ndarray:
    if result is not None:
        draw_result(image, result, limbs) if limbs else draw_result(image, result)
    return draw_hud(image, stats.hud(result))


async def _lockstep(s, it, sink: Sink, stats: Stats, q: int, on_result) -> bool:  # noqa: ANN001
    for img in it:
        t0 = time.perf_counter()
        await s.send(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes())
        stats.sent += 1
        stats.sent_wh = (img.shape[1], img.shape[0])
        while True:
            msg = await s.receive(timeout=60)
            if msg.type in ("result", "error"):
                break
        stats.latencies_ms.append((time.perf_counter() - t0) * 1e3)
        sink.record(msg.data)
        if msg.result is None:
            stats.errors += 1
            keep_going = sink.frame(_annotate(img, None, stats, s.skeleton))
        else:
            stats.answered += 1
            if on_result:
                on_result(msg.result)
            keep_going = sink.frame(_annotate(img, msg.result, stats, s.skeleton))
        if not keep_going:
            return True
    return True


async def _live(s, it, sink: Sink, stats: Stats, fps: float, q: int, on_result) -> bool:  # noqa: ANN001
    """Sender at the source rate; the receiver draws each answer on the frame it belongs to.

    Every sent id leaves ``pending`` when it is answered, reported as an error, or listed as dropped;
    the stream ends once the source is exhausted and nothing is pending.
    """
    pending: OrderedDict[int, tuple[np.ndarray, float]] = OrderedDict()
    finished = asyncio.Event()

    async def sender() -> None:
        period, t_next = 1.0 / fps, time.perf_counter()
        for fid, img in enumerate(it):  # ids restart at 0 on each connection, as the server's do
            pending[fid] = (img, time.perf_counter())
            while len(pending) > 256:  # bounded memory if the server stops answering
                pending.popitem(last=False)
            await s.send(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes())
            stats.sent += 1
            stats.sent_wh = (img.shape[1], img.shape[0])
            t_next += period
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
        finished.set()

    send_task = asyncio.create_task(sender())
    idle_since = time.perf_counter()
    try:
        while True:
            if send_task.done() and send_task.exception() is not None:
                raise send_task.exception()  # type: ignore[misc]
            if finished.is_set() and not pending:
                return True
            try:
                msg = await s.receive(timeout=0.5)
            except TimeoutError:
                if finished.is_set() and time.perf_counter() - idle_since > 30:
                    log.warning("no answer for 30 s; %d frames unanswered", len(pending))
                    return True
                continue
            idle_since = time.perf_counter()
            for d in msg.dropped:
                stats.dropped += 1
                pending.pop(d, None)
                sink.record({"type": "dropped", "frame": d})
            fid = msg.data.get("frame")
            if msg.type == "bye":  # the server is going away: keep the notice, the reconnect follows
                sink.record(msg.data)
            if fid is None or fid not in pending:
                continue
            img, t_sent = pending.pop(fid)
            stats.latencies_ms.append((time.perf_counter() - t_sent) * 1e3)
            sink.record(msg.data)
            if msg.result is not None:
                stats.answered += 1
                if on_result:
                    on_result(msg.result)
            else:
                stats.errors += 1
            if not sink.frame(_annotate(img, msg.result, stats, s.skeleton)):
                return True
    finally:
        send_task.cancel()
