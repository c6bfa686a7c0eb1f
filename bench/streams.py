"""Websocket measurements against the real service in a separate process on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import websockets

from bench.frames import Frame
from bench.live import ServiceProcess


def start_server(mode: str, yolo: Path | None, per_clip: int, threads: int = 2, **settings: str) -> ServiceProcess:
    """``python -m service`` in its own process: the shipped default detector (``mode`` default), or the YOLO-timing
    proxy plugged in through ``POSE_DETECTOR_FACTORY`` (``mode`` proxy, ``bench.serve_proxy``)."""
    plugin = {}
    if mode == "proxy":
        plugin = {"POSE_DETECTOR_FACTORY": "bench.serve_proxy:proxy_detector", "BENCH_PROXY_YOLO": str(yolo),
                  "BENCH_PROXY_PER_CLIP": str(per_clip)}  # fmt: skip
    server = ServiceProcess(POSE_THREADS=str(threads), POSE_MAX_STREAMS="64", POSE_MAX_STREAMS_PER_CLIENT="64",
                            **plugin, **settings)  # fmt: skip
    return server.start()


async def lockstep(url: str, frames: list[Frame], interval: int) -> list[float]:
    """One stream, next frame sent when the previous answer arrives: end-to-end latency per frame."""
    lat = []
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "detect_interval": interval}))
        await ws.recv()
        for f in frames:
            t0 = time.perf_counter()
            await ws.send(f.jpeg)
            while json.loads(await ws.recv())["type"] not in ("result", "error"):
                pass
            lat.append((time.perf_counter() - t0) * 1e3)
    return lat


async def live_stream(url: str, frames: list[Frame], fps: float, seconds: float, interval: int) -> dict[str, float]:
    """Send at ``fps`` without waiting; count answered / dropped, latency of answered frames."""
    sent_at: dict[int, float] = {}
    lat: list[float] = []
    answered = dropped = 0
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "config", "detect_interval": interval}))
        await ws.recv()

        async def sender() -> None:
            t_next, i = time.perf_counter(), 0
            end = t_next + seconds
            while time.perf_counter() < end:
                sent_at[i] = time.perf_counter()
                await ws.send(frames[i % len(frames)].jpeg)
                i += 1
                t_next += 1 / fps
                await asyncio.sleep(max(0.0, t_next - time.perf_counter()))

        task = asyncio.create_task(sender())
        t_start = t_last = time.perf_counter()
        # until the sender is done and every frame is answered or reported dropped (a short poll, so
        # the wait for a message that will not come never counts as streaming time)
        while not task.done() or len(sent_at) > answered + dropped:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except TimeoutError:
                if task.done() and time.perf_counter() - t_last > 5:
                    break  # frames unaccounted for: reported below
                continue
            t_last = time.perf_counter()
            dropped += len(m.get("dropped", []))
            if m.get("type") in ("result", "error") and "frame" in m:
                answered += 1
                lat.append((t_last - sent_at[m["frame"]]) * 1e3)
        elapsed = max(t_last, t_start + seconds) - t_start
    sent = len(sent_at)
    return {
        "sent": sent,
        "answered": answered,
        "dropped": dropped,
        "fps": answered / elapsed,
        "sent_fps": sent / elapsed,
        "p50_ms": float(np.percentile(lat, 50)) if lat else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat else float("nan"),
        "drop_rate": dropped / max(sent, 1),
        "unaccounted": sent - answered - dropped,
    }


def concurrent(server: ServiceProcess, frames: list[Frame], n: int, fps: float, seconds: float, interval: int) -> dict:
    cpu0, rss0, t0 = server.cpu_seconds(), server.rss_mb(), time.perf_counter()

    async def all_streams() -> list[dict[str, float]]:
        return await asyncio.gather(*[live_stream(server.ws, frames, fps, seconds, interval) for _ in range(n)])

    res = asyncio.run(all_streams())
    wall = time.perf_counter() - t0
    return {
        "streams": n,
        "fps_per_stream": float(np.mean([r["fps"] for r in res])),
        "sent_fps_per_stream": float(np.mean([r["sent_fps"] for r in res])),
        "min_fps_stream": float(min(r["fps"] for r in res)),
        "p95_ms": float(np.max([r["p95_ms"] for r in res])),
        "drop_rate": float(np.mean([r["drop_rate"] for r in res])),
        "unaccounted": int(sum(r["unaccounted"] for r in res)),
        "cpu_pct": 100 * (server.cpu_seconds() - cpu0) / wall,
        "rss_mb_start": rss0,
        "rss_mb_end": server.rss_mb(),
    }
