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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.baselines import HungarianIoUTracker, IoUTracker
from bench.frames import DATA
from okpose.core.oks import box_iou
from okpose.core.skeleton import COCO17
from okpose.core.types import Poses, TrackedPoses
from okpose.track.tracker import PoseFlowTracker, TrackerConfig

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
            kps.append(np.asarray(p["keypoints"], np.float64).reshape(COCO17.num_keypoints, 3))
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
    """CLEAR-MOT and IDF1 (motmetrics, box IoU >= 0.5) and HOTA (trackeval, over IoU thresholds) of one
    clip's outputs; hypotheses on ignore regions count neither way."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for gt, out in zip(frames, outputs, strict=True):
        hyp_boxes, hyp_ids = out.poses.boxes.astype(np.float64), out.track_ids
        if len(gt.ignore) and len(hyp_boxes):
            on_ignore = box_iou(hyp_boxes, gt.ignore).max(1) > 0.5
            matched_gt = box_iou(hyp_boxes, gt.boxes).max(1) > 0.5 if len(gt.boxes) else np.zeros(len(hyp_boxes), bool)
            keep = ~on_ignore | matched_gt
            hyp_boxes, hyp_ids = hyp_boxes[keep], hyp_ids[keep]
        iou = box_iou(gt.boxes, hyp_boxes)
        dist = np.where(iou >= 0.5, 1 - iou, np.nan)
        acc.update(gt.ids.tolist(), hyp_ids.tolist(), dist)
        per_frame.append((np.asarray(gt.ids), np.asarray(hyp_ids), iou))
    mh = mm.metrics.create()
    s = mh.compute(
        acc,
        metrics=["num_switches", "num_fragmentations", "mota", "idf1", "num_false_positives", "num_misses"],
        name="x",
    )
    return {**{k: float(s[k].iloc[0]) for k in s.columns}, "hota": hota(per_frame)}


def hota(per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """HOTA (Luiten et al. 2021; ``trackeval``'s implementation) averaged over its IoU thresholds, from
    per-frame GT ids, hypothesis ids and their box IoU matrix."""
    from trackeval.metrics import HOTA

    gt_index = {g: i for i, g in enumerate(sorted({int(g) for f in per_frame for g in f[0]}))}
    hyp_index = {h: i for i, h in enumerate(sorted({int(h) for f in per_frame for h in f[1]}))}
    data = {
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(hyp_index),
        "num_gt_dets": sum(len(f[0]) for f in per_frame),
        "num_tracker_dets": sum(len(f[1]) for f in per_frame),
        "gt_ids": [np.array([gt_index[int(g)] for g in f[0]], int) for f in per_frame],
        "tracker_ids": [np.array([hyp_index[int(h)] for h in f[1]], int) for f in per_frame],
        "similarity_scores": [f[2] for f in per_frame],
    }
    return float(np.mean(HOTA().eval_sequence(data)["HOTA"]))


def run_tracker(
    make: Callable[[], object], inputs: list[Poses], frame_idx: list[int]
) -> tuple[list[TrackedPoses], float]:
    tracker = make()
    outs, t = [], 0.0
    for poses, fi in zip(inputs, frame_idx, strict=True):
        kw = {"timestamp": fi / 60.0} if isinstance(tracker, PoseFlowTracker) else {}  # the clips are 60 fps
        t0 = time.perf_counter()
        outs.append(tracker.update(poses, fi, **kw))  # type: ignore[attr-defined]
        t += time.perf_counter() - t0
    return outs, t / max(1, len(inputs)) * 1e3


@dataclass
class Recorded:
    """A clip (or scenario) as the service saw it: per frame the JPEG and the poses its frame path
    produced before tracking (what every tracker under test is fed), with the detector confidences."""

    name: str
    gt: list[GTFrame]
    fps: float
    jpegs: list[bytes]
    poses: list[Poses]
    det_scores: list[np.ndarray]
    origins: list[np.ndarray | None]  # skip frames: the id (in the recording's own tracker) each pose was cropped for
    kp_threshold: float
    tracker_config: TrackerConfig


def clip_frames(video: str, root: Path = DATA) -> list[np.ndarray]:
    from okpose.sources import open_source

    return list(open_source(root / "videos" / f"{video}.mp4"))


def scenarios(video: str, frames: list[np.ndarray], gt: list[GTFrame]) -> dict[str, tuple[list, list[GTFrame]]]:
    """Identity stress tests spliced from the real clip (full resolution):

    - ``walk on while hidden``: frames 40-51 replaced by grey frames; the people reappear where their
      walk took them (frame 52 onwards);
    - ``stop while hidden``: 12 grey frames inserted after frame 39; the people reappear where they were;
    - ``leave and re-enter``: the person with the lowest track id painted grey (their box + 15 %) in
      frames 30-69: out of view for 0.67 s, back where they walked to.
    """
    grey = np.full_like(frames[0], 128)
    empty = GTFrame(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 17, 3)), np.zeros((0, 4)))
    walk = [*frames[:40], *[grey] * 12, *frames[52:]]
    walk_gt = [*gt[:40], *[empty] * 12, *gt[52:]]
    stop = [*frames[:40], *[grey] * 12, *frames[40:]]
    stop_gt = [*gt[:40], *[empty] * 12, *gt[40:]]
    pid = int(min(int(f.ids.min()) for f in gt if len(f.ids)))
    leave, leave_gt = [], []
    for i, (img, g) in enumerate(zip(frames, gt, strict=True)):
        if 30 <= i < 70 and pid in g.ids.tolist():
            img = img.copy()
            x1, y1, x2, y2 = g.boxes[g.ids.tolist().index(pid)]
            pw, ph = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
            img[max(0, int(y1 - ph)) : int(y2 + ph), max(0, int(x1 - pw)) : int(x2 + pw)] = 128
            keep = g.ids != pid
            g = GTFrame(g.ids[keep], g.boxes[keep], g.keypoints[keep], g.ignore)
        leave.append(img)
        leave_gt.append(g)
    return {"walk on while hidden": (walk, walk_gt), "stop while hidden": (stop, stop_gt),
            "leave and re-enter": (leave, leave_gt)}  # fmt: skip


def record(
    engine: object,
    name: str,
    frames: list[np.ndarray],
    gt: list[GTFrame],
    fps: float,
    interval: int,
    rescue_score: float | None = None,
) -> Recorded:
    """Run the frames through the service's stream path (``Engine.process``, detector every ``interval``
    frames, the tracks followed in between) and keep what its pose stage produced."""
    import cv2

    from okpose.pipeline import Pipeline, Stream

    assert isinstance(engine, Pipeline)
    seen: list[tuple[Poses, np.ndarray, np.ndarray | None]] = []

    class Recorder(PoseFlowTracker):
        def update(self, poses, frame=None, timestamp=None, det_scores=None, **kw):  # noqa: ANN001, ANN003, ANN202
            dets = np.asarray(det_scores if det_scores is not None else np.ones(len(poses)))
            seen.append((poses, dets, kw.get("origins")))
            return super().update(poses, frame, None if frame is None else frame / fps, det_scores, **kw)

    state = Stream(Recorder(engine.tracker_config, engine.sigmas, engine.torso))
    opts = engine.options.replace(detect_interval=interval)  # the service's own defaults
    if rescue_score is not None:
        opts = opts.replace(rescue_score=rescue_score)
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]
    for j in jpegs:
        engine.process_bytes(j, state, options=opts)
    return Recorded(
        name,
        gt,
        fps,
        jpegs,
        [p for p, _, _ in seen],
        [d for _, d, _ in seen],
        [o for _, _, o in seen],
        opts.keypoint_threshold,
        engine.tracker_config,
    )


def replay(make: Callable[[], object], rec: Recorded, with_images: bool) -> tuple[list[TrackedPoses], float]:
    """Feed the recorded poses to a fresh tracker (our tracker also gets the frames, decoded as the
    service decodes them, for its appearance cue). Returns the outputs and ms per frame (tracker only).

    The skip frames' crop origins name tracks of the recording's tracker: a PoseFlow tracker with the
    recording's configuration and images reproduces those ids and gets them (its output is then the
    service's own); an ablation with another configuration would get wrong names, so it gets none."""
    from okpose.imageio import decode_image

    tracker = make()
    outs, t = [], 0.0
    for i, (poses, det) in enumerate(zip(rec.poses, rec.det_scores, strict=True)):
        kw: dict[str, object] = {}
        if isinstance(tracker, PoseFlowTracker):
            same = with_images and tracker.cfg == rec.tracker_config
            kw = {"timestamp": i / rec.fps, "det_scores": det, "smoothing": False, "kp_threshold": rec.kp_threshold,
                  "origins": rec.origins[i] if same else None}  # fmt: skip
            if with_images:
                d = decode_image(rec.jpegs[i], 10**9, 10**9, 960)
                kw.update(image=d.pixels, image_scale_xy=d.scale_xy)
        t0 = time.perf_counter()
        outs.append(tracker.update(poses, i, **kw))  # type: ignore[attr-defined]
        t += time.perf_counter() - t0
    return outs, t / max(1, len(rec.poses)) * 1e3


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


def tiled_gt_poses(people: int, frames: int) -> list[Poses]:
    """``frames`` frames of ``people`` persons: a clip's real GT poses (1 % keypoint jitter), copies tiled
    1200 px apart until there are enough people (for tracker cost measurements)."""
    gt = load_gt(VIDEOS[0])
    rng = np.random.default_rng(0)
    seq = []
    for i in range(frames):
        p = gt_poses(gt[i % len(gt)], rng, 0.01, 0.0)
        reps = -(-people // max(1, len(p)))
        kps = np.concatenate([p.keypoints + [1200.0 * r, 0, 0] for r in range(reps)])[:people]
        boxes = np.concatenate([p.boxes + [1200.0 * r, 0, 1200.0 * r, 0] for r in range(reps)])[:people]
        seq.append(Poses(kps, boxes, np.ones(len(kps))))
    return seq


def tracker_cost(
    people: tuple[int, ...] = (1, 3, 10, 30), frames: int = 200, repeats: int = 3
) -> dict[str, dict[str, float]]:
    """Tracker time per frame (median, ms) with N persons: the real GT poses of a clip tiled side by side
    (with images for our appearance cue)."""
    out: dict[str, dict[str, float]] = {}
    for n in people:
        seq = tiled_gt_poses(n, frames)
        image = np.full((1920, int(1200 * (-(-n // 3)) + 1088), 3), 100, np.uint8)
        row = {}
        for name, make in (("PoseFlow (ours)", lambda: PoseFlowTracker()), ("box-IoU greedy", IoUTracker),
                           ("box-IoU Hungarian", HungarianIoUTracker)):  # fmt: skip
            ts = []
            for _ in range(repeats):
                tr = make()
                for i, poses in enumerate(seq):
                    kw = {"timestamp": i / 30, "image": image} if isinstance(tr, PoseFlowTracker) else {}
                    t0 = time.perf_counter()
                    tr.update(poses, i, **kw)  # type: ignore[attr-defined]
                    if i >= 10:
                        ts.append((time.perf_counter() - t0) * 1e3)
            row[name] = float(np.median(ts))
        out[str(n)] = row
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tracking")
    p.add_argument("--source", choices=["gt", "service", "both"], default="service")
    p.add_argument("--out", default="docs/tracking.md")
    p.add_argument("--videos", nargs="+", default=list(VIDEOS))
    p.add_argument("--interval", type=int, default=3, help="the stream's detector interval (service default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rescue-score", type=float, default=None,
                   help="the streams' rescue_score (ByteTrack's second association; 1 = off); default: the library's")  # fmt: skip
    args = p.parse_args(argv)
    trackers: dict[str, tuple[Callable[[], object], bool]] = {
        "PoseFlow (ours)": (lambda: PoseFlowTracker(TrackerConfig()), True),
        "PoseFlow, no appearance cue": (lambda: PoseFlowTracker(TrackerConfig(appearance=False)), False),
        "box-IoU greedy": (IoUTracker, False),
        "box-IoU Hungarian": (HungarianIoUTracker, False),
    }
    rows = []
    if args.source in ("service", "both"):
        from okpose.pipeline import Pipeline

        engine = Pipeline(threads=2, video=False)
        for video in args.videos:
            gt = load_gt(video)
            fps = float(json.loads((DATA / "tracks" / f"{video}.json").read_text())["fps"])
            frames = clip_frames(video)[: len(gt)]
            runs = {f"clip, detector every {args.interval}": (frames, gt, args.interval),
                    "clip, detector every frame": (frames, gt, 1)}  # fmt: skip
            for name, (fr, g) in scenarios(video, frames, gt).items():
                runs[f"scenario: {name}"] = (fr, g, args.interval)
            for input_name, (fr, g, interval) in runs.items():
                rec = record(engine, input_name, fr, g, fps, interval, args.rescue_score)
                for tname, (make, images) in trackers.items():
                    outs, ms = replay(make, rec, images)
                    m = evaluate(g, outs)
                    rows.append({"video": video, "input": input_name, "tracker": tname, "ms_per_frame": ms, **m})
                    print(f"{video:22s} {input_name:34s} {tname:28s} IDsw={m['num_switches']:3.0f} "
                          f"MOTA={m['mota']:.3f} IDF1={m['idf1']:.3f} {ms:.3f} ms", flush=True)  # fmt: skip
    if args.source in ("gt", "both"):
        for video in args.videos:
            gt = load_gt(video)
            for name, cfg in SETTINGS.items():
                rng = np.random.default_rng(args.seed) if cfg["jitter"] or cfg["drop"] else None
                idx = list(range(0, len(gt), int(cfg["step"])))
                hidden = occlusion_mask(gt, np.random.default_rng(args.seed + 1), cfg["occlusion"])
                inputs = [
                    gt_poses(gt[i], rng, cfg["jitter"], cfg["drop"], hidden[i], cfg.get("box_jitter")) for i in idx
                ]
                for tname, (make, _) in trackers.items():
                    outs, ms = run_tracker(make, inputs, idx)
                    m = evaluate([gt[i] for i in idx], outs)
                    rows.append(
                        {"video": video, "input": f"GT poses, {name}", "tracker": tname, "ms_per_frame": ms, **m}
                    )
    cost = tracker_cost()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "cost_ms": cost}, indent=2))
    Path(args.out).write_text(render(rows, cost, argv))
    print(render(rows, cost, argv))
    return 0


def render(rows: list[dict], cost: dict[str, dict[str, float]], argv: list[str] | None) -> str:
    agg: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        agg.setdefault((r["input"], r["tracker"]), []).append(r)
    lines = [
        "| input | tracker | ID switches | fragmentations | MOTA | IDF1 | HOTA | tracker ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (inp, tr), rs in agg.items():
        lines.append(
            f"| {inp} | {tr} | {sum(r['num_switches'] for r in rs):.0f} | {sum(r['num_fragmentations'] for r in rs):.0f} "
            f"| {np.mean([r['mota'] for r in rs]):.3f} | {np.mean([r['idf1'] for r in rs]):.3f} "
            f"| {np.mean([r['hota'] for r in rs]):.3f} | {np.mean([r['ms_per_frame'] for r in rs]):.3f} |"
        )
    svc = [r for r in rows if not r["input"].startswith("GT")]
    total = ["", "| tracker | ID switches, all service inputs | mean IDF1 | mean HOTA |", "|---|---|---|---|"]
    for tr in dict.fromkeys(r["tracker"] for r in svc):
        rs = [r for r in svc if r["tracker"] == tr]
        total.append(
            f"| {tr} | {sum(r['num_switches'] for r in rs):.0f} | {np.mean([r['idf1'] for r in rs]):.3f} "
            f"| {np.mean([r['hota'] for r in rs]):.3f} |"
        )
    names = list(next(iter(cost.values())))
    cost_lines = ["", "| persons | " + " | ".join(f"{n} ms" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for n, row in cost.items():
        cost_lines.append(f"| {n} | " + " | ".join(f"{row[k]:.3f}" for k in names) + " |")
    cmd = "python -m bench.tracking " + " ".join(argv or [])
    return (
        f"Tracking on {', '.join(sorted({r['video'] for r in rows}))} (100 frames each at 60 fps, full resolution "
        f"1088x1920; sums / means over videos). Service inputs: what the service's frame path produced on the "
        f"clip (NanoDet + student, reduced decode, the stream's detector interval), fed identically to every "
        f"tracker (our tracker with the recording's configuration also gets the skip frames' crop origins, as in "
        f"the service; the ablation without appearance does not, their ids being the recording tracker's). "
        f"HOTA from `trackeval`, the others from `motmetrics` (IoU >= 0.5). Tracker cost: median ms per frame "
        f"over 3 x 190 frames of real poses tiled side by side. Command: `{cmd.strip()}`\n\n"
        + "\n".join(lines + total + cost_lines)
        + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
