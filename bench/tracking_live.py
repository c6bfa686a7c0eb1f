"""Identities in real time, quiet and busy: the real service over a websocket, fed a clip at its frame rate.

python -m bench.tracking_live [--fps 30] [--load 2] [--out docs/tracking_live.md]

Per clip (the multi-person lab clips with GT ids, ``bench.tracking``): the frames are sent at ``--fps`` wall-clock
rate (every ``60 / fps``-th frame of the 60 fps clip), whatever the service answers; it answers the newest frame
it has and reports the ids it dropped, as a live camera client sees. Each answer is scored against the GT of the
frame it names (CLEAR-MOT / IDF1 / HOTA over the answered frames, ``bench.tracking.evaluate``). The same run is
repeated with ``--load`` CPU-bound processes (pure-Python busy loops, one per core by default) running beside the
service: identities must not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import websockets

from bench.live import ServiceProcess
from bench.tracking import VIDEOS, clip_frames, evaluate, load_gt
from okpose.core.types import Poses, TrackedPoses

CLIP_FPS = 60.0


def _burn(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


async def stream_clip(url: str, jpegs: list[bytes], fps: float) -> dict[int, dict]:
    """Send ``jpegs`` at ``fps`` (wall clock), collect every answer by frame id; returns {frame id: answer}."""
    answers: dict[int, dict] = {}
    async with websockets.connect(url, max_size=2**24) as ws:
        done = asyncio.Event()

        async def receive() -> None:
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") in ("result", "error") and "frame" in msg:
                    answers[int(msg["frame"])] = msg
                    if int(msg["frame"]) == len(jpegs) - 1:  # the newest frame is never dropped: the last answer
                        done.set()
                        return

        rx = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for i, j in enumerate(jpegs):
            await asyncio.sleep(max(0.0, t0 + i / fps - time.perf_counter()))
            await ws.send(j)
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            rx.cancel()
    return answers


def tracked(answer: dict) -> TrackedPoses:
    persons = answer.get("persons") or []
    boxes = np.array([p["box"] for p in persons], np.float32).reshape(-1, 4)
    ids = np.array([p["track_id"] or 0 for p in persons], np.int64)
    kps = np.zeros((len(persons), 17, 3), np.float32)
    return TrackedPoses(Poses(kps, boxes, np.ones(len(persons), np.float32)), ids)


def run(url: str, videos: list[str], fps: float) -> list[dict]:
    rows = []
    step = max(1, round(CLIP_FPS / fps))
    for video in videos:
        gt = load_gt(video)
        frames = clip_frames(video)[: len(gt)][::step]
        gts = gt[::step]
        jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]
        answers = asyncio.run(stream_clip(url, jpegs, fps))
        got = sorted(i for i, a in answers.items() if a.get("type") == "result")
        m = evaluate([gts[i] for i in got], [tracked(answers[i]) for i in got])
        rows.append({"video": video, "sent": len(jpegs), "answered": len(got),
                     "errors": sum(a.get("type") == "error" for a in answers.values()), **m})  # fmt: skip
        print(f"{video}: answered {len(got)}/{len(jpegs)} IDsw={m['num_switches']:.0f} IDF1={m['idf1']:.3f} "
              f"MOTA={m['mota']:.3f}", flush=True)  # fmt: skip
    return rows


def markdown(results: dict[str, list[dict]], fps: float, load: int, command: str) -> str:
    lines = [
        f"Command: `{command}`. The real service (`python -m service`, 2 threads, defaults) on loopback; each "
        f"multi-person lab clip (1088x1920, GT ids) sent at {fps:g} fps wall clock (one frame in {round(CLIP_FPS / fps)}"
        f" of the 60 fps clip), the service answering the newest frame it has; scored on the answered "
        f"frames. Busy: {load} CPU-bound processes (busy loops) beside the service for the whole run.",
        "",
        "| machine | frames answered / sent | errors | ID switches | fragmentations | MOTA | IDF1 | HOTA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        lines.append(
            f"| {name} | {sum(r['answered'] for r in rows)} / {sum(r['sent'] for r in rows)} "
            f"| {sum(r['errors'] for r in rows)} | {sum(r['num_switches'] for r in rows):.0f} "
            f"| {sum(r['num_fragmentations'] for r in rows):.0f} | {np.mean([r['mota'] for r in rows]):.3f} "
            f"| {np.mean([r['idf1'] for r in rows]):.3f} | {np.mean([r['hota'] for r in rows]):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tracking_live", description=__doc__.split("\n\n")[0])
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy-loop processes in the busy run")
    p.add_argument("--videos", nargs="+", default=list(VIDEOS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="docs/tracking_live")
    a = p.parse_args(argv)
    server = ServiceProcess(POSE_THREADS=str(a.threads)).start()
    results: dict[str, list[dict]] = {}
    try:
        url = f"ws://127.0.0.1:{server.port}/stream"
        run(url, a.videos[:1], a.fps)  # warm-up (first-call allocations), not scored
        results["quiet"] = run(url, a.videos, a.fps)
        stop = mp.Event()
        burners = [mp.Process(target=_burn, args=(stop,), daemon=True) for _ in range(a.load)]
        for b in burners:
            b.start()
        try:
            time.sleep(1.0)
            results[f"busy ({a.load} busy loops)"] = run(url, a.videos, a.fps)
        finally:
            stop.set()
            for b in burners:
                b.join(5)
    finally:
        server.stop()
    command = "python -m bench.tracking_live " + " ".join(argv if argv is not None else sys.argv[1:])
    md = markdown(results, a.fps, a.load, command.strip())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(results, indent=2))
    Path(a.out + ".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
