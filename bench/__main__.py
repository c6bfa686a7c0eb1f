"""python -m bench [--quick] [--out docs/bench]: the performance table, every figure from this run.

Our pipeline (detector -> batched student -> tracker) on real multi-person clips (long side 640 px),
next to Ultralytics YOLO11n-pose (ONNX, same ORT threads) and a per-person-call variant of our own
pipeline; then the real service over a loopback websocket, 1 to 8 concurrent streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench import inprocess as ip
from bench.assets import yolo_onnx
from bench.frames import load_frames
from okpose.pipeline import STAGES

log = logging.getLogger("bench")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--quick", action="store_true", help="smoke run (seconds): few frames, short streams")
    p.add_argument("--out", default="docs/bench", help="writes OUT.json and OUT.md")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--interval", type=int, default=3, help="detector interval for the skipping runs")
    p.add_argument("--no-yolo", action="store_true", help="skip the Ultralytics assets (offline machines)")
    p.add_argument("--pose", type=Path, default=None, help="another student ONNX (default: the embedded one)")
    p.add_argument("--detector-input", type=int, default=None, help="NanoDet long side (default: its spec's)")
    a = p.parse_args(argv)
    a.command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    per_clip = 8 if a.quick else 100
    frames = load_frames(per_clip)
    det_path = None if a.no_yolo else yolo_onnx("detect", 320)
    pose_paths = {} if a.no_yolo else {s: yolo_onnx("pose", s) for s in (320, 640)}
    pose, default_pipe, fast = ip.build(a.threads, det_path, a.pose, a.detector_input)
    res: dict = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads": a.threads,
            "python": platform.python_version(),
        },
        "frames": len(frames),
        "frame_size": list(frames[0].image.shape[1::-1]),
        "quick": a.quick,
    }

    # 1. per-stage latency in process: the shipped default (NanoDet), then the YOLO-timing proxy
    runs = {}
    rows1, poses1 = ip.run_pipeline(default_pipe, frames, 1, None)
    rowsk, posesk = ip.run_pipeline(default_pipe, frames, a.interval, None)
    runs["ours, NanoDet (default) every frame"] = rows1
    runs[f"ours, NanoDet (default) every {a.interval} frames"] = rowsk
    res["interval_oks_ap_vs_every_frame"] = ip.interval_accuracy(poses1, posesk)
    if fast is not None:
        fpipe, proxy = fast

        def set_boxes(f):  # noqa: ANN001, ANN202
            proxy.boxes = f.gt_boxes

        runs["ours, YOLO11n-det (timing) + GT boxes, every frame"], _ = ip.run_pipeline(fpipe, frames, 1, set_boxes)
    res["stages"] = {k: ip.stage_table(v) for k, v in runs.items()}

    res["tracker_10_people"] = ip.tracker_cost(10, 100 if a.quick else 300)
    res["decode_3_people_ms_p50"] = ip.decode_cost(pose, 3)

    # 2. baselines: per-person calls, YOLO-pose one-stage
    res["batching"] = ip.per_person_vs_batched(pose, [f for f in frames if len(f.gt_boxes) >= 2][:60])
    res["yolo_pose"] = {}
    for size, path in pose_paths.items():
        if path is not None:
            ts = ip.time_frames(ip.YoloPose(path, a.threads), frames)
            res["yolo_pose"][str(size)] = {"p50": ip.pct(ts, 50), "p95": ip.pct(ts, 95)}

    # 3. the real service over a loopback websocket
    from bench import streams as st

    settings = {"POSE_POSE_MODEL": str(a.pose.resolve())} if a.pose else {}
    if a.detector_input:
        settings["POSE_DETECTOR_INPUT"] = str(a.detector_input)
    server = st.start_server("default", det_path, per_clip, **settings)
    try:
        lat = asyncio.run(st.lockstep(server.ws, frames, a.interval))
        res["websocket_one_stream"] = {
            "p50": ip.pct(lat, 50),
            "p95": ip.pct(lat, 95),
            "fps": 1000 / float(np.mean(lat)),
        }
        # camera resolutions: full-HD (the clips' own 1088x1920) and 720p, one stream, lockstep; YOLO11n-pose
        # on the same frames (letterboxed to 640 and 320) in the same run
        res["resolutions"] = {}
        for side in (1920, 1280):
            big = load_frames(8 if a.quick else 40, long_side=side)
            lat = asyncio.run(st.lockstep(server.ws, big, a.interval))
            row = {"size": list(big[0].image.shape[1::-1]), "p50": ip.pct(lat, 50), "p95": ip.pct(lat, 95),
                   "persons_p50": float(np.median([len(f.gt_boxes) for f in big]))}  # fmt: skip
            for ysize, path in pose_paths.items():
                if path is not None:
                    ts = ip.time_frames(ip.YoloPose(path, a.threads), big)
                    row[f"yolo_pose_{ysize}_p50"] = ip.pct(ts, 50)
            res["resolutions"][str(side)] = row
        seconds = 3 if a.quick else 10
        res["concurrency"] = [st.concurrent(server, frames, n, 30, seconds, a.interval) for n in (1, 2, 4, 8)]
        res["detector_in_service"] = default_pipe.detector.name
    finally:
        server.stop()

    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(res, indent=2))
    text = render(res, a)
    Path(a.out + ".md").write_text(text)
    write_plots(res, rows_by_persons(runs), Path(a.out))
    print(text)
    return 0


def rows_by_persons(runs: dict[str, list[dict]]) -> dict[str, dict[int, float]]:
    """Median total ms per number of persons in the frame, per in-process run (for the plot)."""
    out: dict[str, dict[int, float]] = {}
    for name, rows in runs.items():
        by: dict[int, list[float]] = {}
        for row in rows:
            by.setdefault(int(row["persons"]), []).append(row["total"])
        out[name] = {k: float(np.median(v)) for k, v in sorted(by.items()) if len(v) >= 3}
    return out


def svg_lines(title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[float, float]]]) -> str:
    """A small line chart as SVG (no plotting library needed)."""
    w, h, m = 560, 320, 50
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y1 = max(p[1] for p in pts) * 1.1
    sx = lambda x: m + (x - x0) / max(x1 - x0, 1e-9) * (w - 2 * m)  # noqa: E731
    sy = lambda y: h - m - y / max(y1, 1e-9) * (h - 2 * m)  # noqa: E731
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
           f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">{xlabel}</text>',
           f'<text x="14" y="{h / 2}" text-anchor="middle" transform="rotate(-90 14 {h / 2})">{ylabel}</text>']  # fmt: skip
    for v in np.linspace(0, y1, 5):
        out.append(f'<text x="{m - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for x in sorted({p[0] for p in pts}):
        out.append(f'<text x="{sx(x):.1f}" y="{h - m + 14}" text-anchor="middle">{x:g}</text>')
    for i, (name, s) in enumerate(series.items()):
        c = colours[i % len(colours)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"/>' for x, y in s]
        out.append(f'<text x="{m + 8}" y="{m + 14 * i}" fill="{c}">{name}</text>')
    return "\n".join([*out, "</svg>"]) + "\n"


def write_plots(r: dict, by_persons: dict[str, dict[int, float]], out: Path) -> None:
    """docs/bench_streams.svg (latency vs concurrent streams) and docs/bench_people.svg (latency vs people)."""
    conc = r.get("concurrency", [])
    streams = {
        "p95 e2e ms": [(c["streams"], c["p95_ms"]) for c in conc],
        "answered fps per stream": [(c["streams"], c["fps_per_stream"]) for c in conc],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / f"{out.name}_streams.svg").write_text(
        svg_lines("websocket streams (30 fps offered each)", "concurrent streams", "ms / fps", streams)
    )
    people = {k: list(v.items()) for k, v in by_persons.items() if v}
    (out.parent / f"{out.name}_people.svg").write_text(
        svg_lines("in-process total per frame vs people in it", "people in the frame", "ms (median)", people)
    )


# the engine's stages (no queue in process) plus the JSON serialisation the routes add
TABLE_STAGES = (*[s for s in STAGES if s not in ("queue", "total")], "serialize", "total")


def render(r: dict, a: argparse.Namespace) -> str:
    m = r["machine"]
    out = [
        f"Measured {time.strftime('%Y-%m-%d')} on {m['cpu']} ({m['cores']} cores), ONNX Runtime {m['threads']} threads, "
        f"{r['frames']} frames of the realpose-lab multi-person clips at {r['frame_size'][0]}x{r['frame_size'][1]}. "
        f"Command: `{a.command}`.",
        "",
        "| in-process, ms per frame (p50 / p95) | " + " | ".join(TABLE_STAGES) + " | persons |",
        "|---" * (len(TABLE_STAGES) + 2) + "|",
    ]
    for name, s in r["stages"].items():
        cells = " | ".join(f"{s[k]['p50']:.2f} / {s[k]['p95']:.2f}" for k in TABLE_STAGES)
        out.append(f"| {name} | {cells} | {s['persons']['p50']:.0f} (max {s['persons']['max']:.0f}) |")
    out += ["", "| comparison | value |", "|---|---|"]
    stages = r["stages"]
    fast_k = next((v for k, v in stages.items() if "NanoDet" in k and "frames" in k), None)
    fast_1 = stages.get("ours, NanoDet (default) every frame")
    for size, y in r["yolo_pose"].items():
        out.append(
            f"| YOLO11n-pose {size} (ONNX, decode + letterbox + NMS), ms p50 / p95 | {y['p50']:.1f} / {y['p95']:.1f} |"
        )
        if fast_k:
            out.append(
                f"| fps ratio ours (det every {a.interval}) / YOLO11n-pose {size} | "
                f"{y['p50'] / fast_k['total']['p50']:.2f}x |"
            )
    t = r["tracker_10_people"]
    out.append(
        f"| tracker, 10 people, ms p50 / p95: PoseFlow vs box-IoU | {t['poseflow_ms_p50']:.3f} / "
        f"{t['poseflow_ms_p95']:.3f} vs {t['iou_ms_p50']:.3f} / {t['iou_ms_p95']:.3f} |"
    )
    out.append(f"| heatmap decode (DARK) + inverse affine, 3 people, ms p50 | {r['decode_3_people_ms_p50']:.3f} |")
    b = r["batching"]
    out.append(
        f"| pose stage, batched vs one call per person (p50 ms) | {b['batched_ms_p50']:.2f} vs "
        f"{b['per_person_ms_p50']:.2f} ({b['speedup']:.2f}x) |"
    )
    if fast_k and fast_1:
        out.append(
            f"| detector every {a.interval} frames / every frame, total p50 | {fast_k['total']['p50']:.2f} / "
            f"{fast_1['total']['p50']:.2f} ms ({fast_1['total']['p50'] / fast_k['total']['p50']:.2f}x) |"
        )
        out.append(
            f"| accuracy cost of skipping: OKS AP vs every-frame poses | {r['interval_oks_ap_vs_every_frame']:.3f} |"
        )
    w = r["websocket_one_stream"]
    out.append(
        f"| one stream over websocket ({r['detector_in_service']}), lockstep e2e p50 / p95 | "
        f"{w['p50']:.1f} / {w['p95']:.1f} ms ({w['fps']:.1f} fps) |"
    )
    for rr in r.get("resolutions", {}).values():
        ww, hh = rr["size"]
        yolo = " ".join(
            f"YOLO11n-pose {k.split('_')[2]}: {v:.1f} ms ({v / rr['p50']:.1f}x our time);"
            for k, v in rr.items()
            if k.startswith("yolo_pose_")
        )
        out.append(
            f"| {ww}x{hh} frames, one stream over websocket, lockstep e2e p50 / p95 ({rr['persons_p50']:.0f} people) | "
            f"{rr['p50']:.1f} / {rr['p95']:.1f} ms; {yolo} |"
        )
    out += [
        "",
        "| concurrent streams (sender paced at 30 fps) | sent fps/stream | answered fps/stream (min) | p95 ms | dropped | CPU % | RSS MB start → end |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in r["concurrency"]:
        out.append(
            f"| {c['streams']} | {c.get('sent_fps_per_stream', float('nan')):.1f} | {c['fps_per_stream']:.1f} ({c['min_fps_stream']:.1f}) | {c['p95_ms']:.0f} | "
            f"{100 * c['drop_rate']:.0f} % | {c['cpu_pct']:.0f} | {c['rss_mb_start']:.0f} → {c['rss_mb_end']:.0f} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
