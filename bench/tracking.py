"""Tracking evaluation on the real multi-person videos (GT track ids in ../shared tracks/*.json).

python -m bench.tracking [--source gt|service|both] [--out docs/tracking.md]

Inputs per frame: the ground-truth poses (clean, and with noise: jittered keypoints, dropped
detections, every 2nd frame only) or the service pipeline's own per-frame output on the video.
Trackers: PoseFlow (service/tracker.py) and a box-IoU greedy baseline, on identical inputs.
Metrics (py-motmetrics, IoU >= 0.5 matching computed here because motmetrics 1.4 breaks on
NumPy 2): ID switches, fragmentations, MOTA, IDF1, and tracker time per frame.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.baselines import IoUTracker
from bench.frames import DATA
from posecore.oks import box_iou
from posecore.types import Poses, TrackedPoses
from service.tracker import PoseFlowTracker, TrackerConfig

VIDEOS = ("pose2sim_multi_cam01", "pose2sim_multi_cam02", "pose2sim_multi_cam03")


@dataclass(frozen=True)
class GTFrame:
    ids: np.ndarray  # (G,)
    boxes: np.ndarray  # (G, 4) xyxy
    keypoints: np.ndarray  # (G, 17, 3)
    ignore: np.ndarray  # (I, 4) ignore regions


def load_gt(video: str, root: Path = DATA) -> list[GTFrame]:
    d = json.loads((root / "tracks" / f"{video}.json").read_text())
    frames = []
    for f in d["frames"]:
        ids, boxes, kps, ign = [], [], [], []
        for p in f["persons"]:
            x, y, w, h = p["bbox"]
            box = [x, y, x + w, y + h]
            if p.get("ignore"):
                ign.append(box)
                continue
            ids.append(p["track_id"])
            boxes.append(box)
            kps.append(np.asarray(p["keypoints"], np.float64).reshape(17, 3))
        frames.append(
            GTFrame(
                np.asarray(ids, np.int64),
                np.asarray(boxes, np.float64).reshape(-1, 4),
                np.asarray(kps, np.float64).reshape(-1, 17, 3),
                np.asarray(ign, np.float64).reshape(-1, 4),
            )
        )
    return frames


def occlusion_mask(frames: list[GTFrame], rng: np.random.Generator, rate: float) -> list[set[int]]:
    """Per frame, the GT ids hidden by an occlusion burst: each visible person starts a burst of
    3-10 frames with probability ``rate`` per frame (a detector missing someone behind another)."""
    hidden_until: dict[int, int] = {}
    out = []
    for i, f in enumerate(frames):
        for pid in f.ids.tolist():
            if hidden_until.get(pid, -1) < i and rng.random() < rate:
                hidden_until[pid] = i + int(rng.integers(3, 11))
        out.append({pid for pid, end in hidden_until.items() if end >= i})
    return out


def gt_poses(
    frame: GTFrame,
    rng: np.random.Generator | None,
    jitter: float,
    drop: float,
    hidden: set[int] | None = None,
    box_jitter: float | None = None,
) -> Poses:
    """GT as detector output: scores 1 for labelled joints; optional keypoint and box jitter
    (fraction of the box size), randomly dropped persons and hidden (occluded) ids."""
    kps = frame.keypoints.copy()
    kps[..., 2] = (kps[..., 2] > 0).astype(np.float64)
    boxes = frame.boxes.copy()
    keep = np.array([pid not in (hidden or set()) for pid in frame.ids.tolist()], bool)
    if rng is not None:
        size = np.sqrt(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1))[:, None, None]
        kps[..., :2] += rng.normal(0, jitter, kps[..., :2].shape) * size
        boxes += rng.normal(0, box_jitter if box_jitter is not None else jitter, boxes.shape) * size[:, :, 0]
        keep &= rng.random(len(kps)) >= drop
    order = rng.permutation(int(keep.sum())) if rng is not None else np.arange(int(keep.sum()))
    return Poses(kps[keep][order], boxes[keep][order], np.ones(int(keep.sum()))[order])


def evaluate(frames: list[GTFrame], outputs: list[TrackedPoses]) -> dict[str, float]:
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for gt, out in zip(frames, outputs, strict=True):
        hyp_boxes, hyp_ids = out.poses.boxes.astype(np.float64), out.track_ids
        if len(gt.ignore) and len(hyp_boxes):  # hypotheses on ignore regions count neither way
            on_ignore = box_iou(hyp_boxes, gt.ignore).max(1) > 0.5
            matched_gt = box_iou(hyp_boxes, gt.boxes).max(1) > 0.5 if len(gt.boxes) else np.zeros(len(hyp_boxes), bool)
            keep = ~on_ignore | matched_gt
            hyp_boxes, hyp_ids = hyp_boxes[keep], hyp_ids[keep]
        iou = box_iou(gt.boxes, hyp_boxes)
        dist = np.where(iou >= 0.5, 1 - iou, np.nan)
        acc.update(gt.ids.tolist(), hyp_ids.tolist(), dist)
    mh = mm.metrics.create()
    s = mh.compute(
        acc,
        metrics=["num_switches", "num_fragmentations", "mota", "idf1", "num_false_positives", "num_misses"],
        name="x",
    )
    return {k: float(s[k].iloc[0]) for k in s.columns}


def run_tracker(
    make: Callable[[], object], inputs: list[Poses], frame_idx: list[int]
) -> tuple[list[TrackedPoses], float]:
    tracker = make()
    outs, t = [], 0.0
    for poses, fi in zip(inputs, frame_idx, strict=True):
        t0 = time.perf_counter()
        outs.append(tracker.update(poses, fi))  # type: ignore[attr-defined]
        t += time.perf_counter() - t0
    return outs, t / max(1, len(inputs)) * 1e3


def service_inputs(video: str, root: Path = DATA) -> Iterator[Poses]:
    """The service's per-frame poses (``Engine.process`` on each frame as a JPEG, stateless: detector
    every frame, no tracking; every keypoint kept) on the real clip."""
    import cv2

    from bench.inprocess import answer_poses
    from service.engine import Engine
    from service.settings import Settings

    engine = Engine.load(Settings(threads=2))
    opts = engine.defaults.model_copy(update={"keypoint_threshold": 0.0})
    cap = cv2.VideoCapture(str(root / "videos" / f"{video}.mp4"))
    while True:
        ok, img = cap.read()
        if not ok:
            break
        yield answer_poses(engine.process(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), opts))
    cap.release()
    engine.close()


SETTINGS = {
    "clean": {"jitter": 0.0, "drop": 0.0, "step": 1, "occlusion": 0.0},
    "noisy (3% jitter, 15% dropped)": {"jitter": 0.03, "drop": 0.15, "step": 1, "occlusion": 0.0},
    "noisy + occlusion bursts (3-10 frames)": {"jitter": 0.03, "drop": 0.05, "step": 1, "occlusion": 0.04},
    "noisy + occlusion, every 3rd frame": {"jitter": 0.03, "drop": 0.05, "step": 3, "occlusion": 0.04},
    "detector-like box noise (12%), 3% keypoint jitter": {
        "jitter": 0.03,
        "box_jitter": 0.12,
        "drop": 0.05,
        "step": 1,
        "occlusion": 0.0,
    },
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tracking")
    p.add_argument("--source", choices=["gt", "service", "both"], default="both")
    p.add_argument("--out", default="docs/tracking.md")
    p.add_argument("--videos", nargs="+", default=list(VIDEOS))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    trackers = {"PoseFlow (ours)": lambda: PoseFlowTracker(TrackerConfig()), "box-IoU greedy": lambda: IoUTracker()}
    rows = []
    for video in args.videos:
        gt = load_gt(video)
        runs: dict[str, tuple[list[Poses], list[int]]] = {}
        if args.source in ("gt", "both"):
            for name, cfg in SETTINGS.items():
                rng = np.random.default_rng(args.seed) if cfg["jitter"] or cfg["drop"] else None
                idx = list(range(0, len(gt), int(cfg["step"])))
                hidden = occlusion_mask(gt, np.random.default_rng(args.seed + 1), cfg["occlusion"])
                inputs = [
                    gt_poses(gt[i], rng, cfg["jitter"], cfg["drop"], hidden[i], cfg.get("box_jitter")) for i in idx
                ]
                runs[f"GT poses, {name}"] = (inputs, idx)
        if args.source in ("service", "both"):
            svc = list(service_inputs(video))
            runs["service poses (NanoDet + student)"] = (svc, list(range(len(svc))))
        for input_name, (inputs, idx) in runs.items():
            for tname, make in trackers.items():
                outs, ms = run_tracker(make, inputs, idx)
                m = evaluate([gt[i] for i in idx], outs)
                rows.append({"video": video, "input": input_name, "tracker": tname, "ms_per_frame": ms, **m})
                print(
                    f"{video:22s} {input_name:38s} {tname:16s} IDsw={m['num_switches']:3.0f} "
                    f"frag={m['num_fragmentations']:3.0f} MOTA={m['mota']:.3f} IDF1={m['idf1']:.3f} {ms:.3f} ms"
                )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=2))
    Path(args.out).write_text(render(rows, argv))
    return 0


def render(rows: list[dict], argv: list[str] | None) -> str:
    agg: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        agg.setdefault((r["input"], r["tracker"]), []).append(r)
    lines = [
        "| input | tracker | ID switches | fragmentations | MOTA | IDF1 | tracker ms/frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for (inp, tr), rs in agg.items():
        lines.append(
            f"| {inp} | {tr} | {sum(r['num_switches'] for r in rs):.0f} | {sum(r['num_fragmentations'] for r in rs):.0f} "
            f"| {np.mean([r['mota'] for r in rs]):.3f} | {np.mean([r['idf1'] for r in rs]):.3f} "
            f"| {np.mean([r['ms_per_frame'] for r in rs]):.3f} |"
        )
    cmd = "python -m bench.tracking " + " ".join(argv or [])
    return (
        f"Tracking on {', '.join(sorted({r['video'] for r in rows}))} (100 frames each, sums / means over videos).\n"
        f"Command: `{cmd.strip()}`\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
