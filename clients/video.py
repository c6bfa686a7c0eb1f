"""python -m clients.video in.mp4 --out out.mp4 [--json out.jsonl] [--realtime]

Streams a video file through the service: as fast as it answers (every frame processed), or at
the file's native frame rate with --realtime (the server drops what it cannot keep up with).
Writes the annotated video and per-frame JSON (with track ids).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from clients.api import PoseServiceError
from clients.streaming import Sink, add_sending_args, frames, open_source, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clients.video", description=__doc__.split("\n\n")[1])
    p.add_argument("video")
    p.add_argument("--out", required=True, help="annotated MP4")
    p.add_argument("--json", help="per-frame JSON lines")
    p.add_argument("--url", default="http://localhost:8000")
    p.add_argument("--realtime", action="store_true")
    p.add_argument("--detect-interval", type=int, default=None)
    p.add_argument("--video-mode", action="store_true", help="ask for the server's video model (docs/video.md)")
    add_sending_args(p)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cap, fps = open_source(None, a.video)
    total = cap.frame_count
    if a.frames:
        total = min(total or a.frames, a.frames)
    sink = Sink(a.out, a.json, fps, show=False)
    bar = _bar(total)
    config: dict[str, object] = {"detect_interval": a.detect_interval} if a.detect_interval else {}
    if a.video_mode:
        config["video_mode"] = True
    try:
        stats = asyncio.run(
            run(
                a.url,
                frames(cap, a.max_side, a.frames),
                sink,
                "live" if a.realtime else "lockstep",
                fps,
                a.api_key,
                config=config or None,
                on_result=lambda r: bar.update(1),
            )
        )
    except PoseServiceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
        sink.close()
        cap.close()
    print(
        f"{a.out}: {sink.frames_written} frames written, {stats.answered} answered, {stats.dropped} dropped, "
        f"{stats.errors} errors"
    )
    return 0


def _bar(total: int | None):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="frames", dynamic_ncols=True)


if __name__ == "__main__":
    raise SystemExit(main())
