"""python -m clients.webcam [--url ws://host:8000] [--camera 0 | --video f.mp4] [--headless --out o.mp4 --json o.jsonl]

Streams frames without waiting for answers (the server drops stale frames; the HUD shows how
many), draws skeletons and track ids, reconnects with backoff when the server restarts.
A live window needs the GUI build of OpenCV (`pip install opencv-python` in a client-only env).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from clients.api import PoseServiceError
from clients.streaming import Sink, add_sending_args, frames, open_source, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clients.webcam", description=__doc__.split("\n\n")[1])
    p.add_argument("--url", default="http://localhost:8000", help="service base URL (http[s]:// or ws[s]://)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None)
    src.add_argument("--video")
    p.add_argument("--headless", action="store_true", help="no window (default when there is no display)")
    p.add_argument("--out", help="annotated MP4")
    p.add_argument("--json", help="per-frame JSON lines")
    p.add_argument("--fps", type=float, default=0, help="send rate (default: the source's)")
    add_sending_args(p)
    p.add_argument("--no-reconnect", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cap, src_fps = open_source(a.camera, a.video)
    show = not a.headless and bool(os.environ.get("DISPLAY") or os.name == "nt")
    sink = Sink(a.out, a.json, a.fps or src_fps, show)
    url = a.url.replace("ws://", "http://").replace("wss://", "https://").removesuffix("/stream")
    try:
        stats = asyncio.run(
            run(
                url,
                frames(cap, a.max_side, a.frames),
                sink,
                "live",
                a.fps or src_fps,
                a.api_key,
                reconnect=not a.no_reconnect,
            )
        )
    except KeyboardInterrupt:
        return 130
    except PoseServiceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        sink.close()
        cap.close()
    print(
        f"sent {stats.sent} answered {stats.answered} dropped {stats.dropped} errors {stats.errors} "
        f"reconnects {stats.reconnects}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
