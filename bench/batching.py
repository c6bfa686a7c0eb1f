"""Cross-stream micro-batching on/off against worker count: aggregate answered fps for 4 and 8 streams.

python -m bench.batching [--seconds 10]
"""

from __future__ import annotations

import argparse

from bench import streams as st
from bench.frames import load_frames
from bench.live import ServiceProcess


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.batching")
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args(argv)
    frames = load_frames(100)
    print("| workers | window | 4 streams | 8 streams | p95 (8 streams) |\n|---|---|---|---|---|")
    for workers, window in ((2, "0"), (2, "3"), (4, "0"), (4, "3")):
        srv = ServiceProcess(POSE_THREADS="2",
                             POSE_WORKERS=str(workers), POSE_BATCH_WINDOW_MS=window, POSE_MAX_STREAMS="64",
                             POSE_MAX_STREAMS_PER_CLIENT="64").start()  # fmt: skip
        try:
            r = {n: st.concurrent(srv, frames, n, 30, a.seconds, 3) for n in (4, 8)}
        finally:
            srv.stop()
        agg = {n: v["fps_per_stream"] * n for n, v in r.items()}
        label = "off" if window == "0" else f"{window} ms"
        print(f"| {workers} | {label} | {agg[4]:.1f} | {agg[8]:.1f} | {r[8]['p95_ms']:.0f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
