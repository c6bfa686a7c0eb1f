"""In-process measurements: per-stage latency, YOLO-pose baseline, batching and detector-interval ratios."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.frames import Frame
from okpose.core.topdown import TopDown
from okpose.core.types import Detections, Poses
from okpose.detect.detectors import YoloOnnxDetector, nms_xyxy
from okpose.pipeline import STAGES, Pipeline, Result


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class ProxyDetector:
    """Runs a real (weight-free) YOLO ONNX for its *time*, returns the frame's GT boxes.

    Untrained weights find no people, so this measures the intended fast path honestly: detector
    cost from the real graph (letterbox, inference, and NMS over the 20 best candidates, as a
    trained model with a few people would produce), pose cost on the real number of people."""

    def __init__(self, yolo: YoloOnnxDetector):
        self.yolo, self.name, self.boxes = yolo, f"{yolo.name} (timing) + GT boxes", np.zeros((0, 4), np.float32)
        self.providers = yolo.providers

    def __call__(self, image: np.ndarray) -> Detections:
        out, r = self.yolo.infer(image)
        self.yolo.postprocess(out, r, (image.shape[1], image.shape[0]), max_candidates=20)
        return Detections(self.boxes, np.ones(len(self.boxes), np.float32))


def result_poses(res: Result) -> Poses:
    """A result's persons as the tracker's ``Poses`` (for accuracy and tracking analyses); invisible
    keypoints zeroed as on the wire."""
    kps = res.keypoints.copy()
    kps[~res.visible] = 0.0
    return Poses(kps, res.boxes, res.scores)


def run_pipeline(pipe: Pipeline, frames: list[Frame], interval: int, set_boxes: Callable[[Frame], None] | None):
    """The server's frame path (``Pipeline.process_bytes``: JPEG bytes -> result, what the service's engine
    runs) over the clips, one stream per clip: per-frame stage timings (+ the persons' JSON encoding the
    routes add), and the poses."""
    rows, poses = [], []
    stream, clip = None, None
    opts = pipe.options.replace(detect_interval=interval)
    for f in frames:
        if f.clip != clip:
            stream, clip = pipe.stream(), f.clip
        if set_boxes:
            set_boxes(f)
        res = pipe.process_bytes(f.jpeg, stream, options=opts)
        t1 = time.perf_counter()
        json.dumps(res.persons())
        rows.append({**res.timings_ms, "serialize": (time.perf_counter() - t1) * 1e3, "persons": len(res)})
        poses.append(result_poses(res))
    return rows, poses


def stage_table(rows: list[dict]) -> dict[str, dict[str, float]]:
    stages = (*STAGES, "total", "serialize")
    out = {s: {"p50": pct([r[s] for r in rows], 50), "p95": pct([r[s] for r in rows], 95)} for s in stages}
    out["persons"] = {"p50": pct([r["persons"] for r in rows], 50), "max": float(max(r["persons"] for r in rows))}
    return out


def per_person_vs_batched(pose: TopDown, frames: list[Frame], repeats: int = 3) -> dict[str, float]:
    """Pose stage (crop + inference + decode) with one call per frame vs one call per person (rtmlib style)."""
    batched, single, diff = [], [], 0.0
    for _ in range(repeats):
        for f in frames:
            if len(f.gt_boxes) == 0:
                continue
            t0 = time.perf_counter()
            together = pose(f.image, f.gt_boxes)
            t1 = time.perf_counter()
            alone = [pose(f.image, b[None]) for b in f.gt_boxes]
            t2 = time.perf_counter()
            batched.append((t1 - t0) * 1e3)
            single.append((t2 - t1) * 1e3)
            diff = max(diff, float(np.abs(together[..., :2] - np.concatenate(alone)[..., :2]).max()))
    # the batched call must give the per-person answers (same crops, same network)
    return {
        "batched_ms_p50": pct(batched, 50),
        "per_person_ms_p50": pct(single, 50),
        "speedup": pct(single, 50) / pct(batched, 50),
        "max_keypoint_diff_px": diff,
    }


class YoloPose:
    """Ultralytics YOLO11n-pose exported to ONNX, run with the same ORT settings and the same
    letterbox + inference as the service's YOLO detector, then keypoint decoding and NMS."""

    def __init__(self, path: Path, threads: int):
        self.yolo = YoloOnnxDetector(path, 320, 0.25, "auto", threads)

    def __call__(self, image: np.ndarray) -> int:
        out, r = self.yolo.infer(image)  # (4 + classes + 51, A)
        # random weights score every anchor; a trained model passes a handful: NMS the 20 best
        sel = np.argpartition(-out[4], 20)[:20]
        cx, cy, bw, bh = out[:4, sel]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).astype(np.float32)
        keep = nms_xyxy(boxes, out[4, sel].astype(np.float32), 0.5)
        kps = out[-51:, sel][:, keep].T.reshape(-1, 17, 3) / [r, r, 1]  # to image pixels
        return len(kps)


def time_frames(fn: Callable[[np.ndarray], object], frames: list[Frame]) -> list[float]:
    ts = []
    for f in frames:
        t0 = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        fn(img)
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def interval_accuracy(every: list, skipped: list) -> float:
    """OKS AP of the detector-every-k poses against the detector-every-frame poses (as reference)."""
    from trainer.peers import oks_ap  # the one COCO keypoint AP (pycocotools)

    images, anns, dets = [], [], []
    for i, (ref, got) in enumerate(zip(every, skipped, strict=True)):
        images.append({"id": i, "width": 1000, "height": 1000})
        for j in range(len(ref)):
            x1, y1, x2, y2 = ref.boxes[j].tolist()
            kp = ref.keypoints[j].copy()
            kp[:, 2] = np.where(kp[:, 2] > 0.2, 2, 0)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": (x2 - x1) * (y2 - y1),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "keypoints": kp.reshape(-1).tolist(),
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                }
            )
        for j in range(len(got)):
            dets.append(
                {
                    "image_id": i,
                    "category_id": 1,
                    "keypoints": got.keypoints[j].reshape(-1).tolist(),
                    "score": float(got.scores[j]),
                }
            )
    if not anns or not dets:
        return float("nan")
    return oks_ap(images, anns, dets)


def build(threads: int, yolo_detect: Path | None, pose: Path | None = None, detector_input: int | None = None):
    """The pose model, the shipped default pipeline (NanoDet; ``pose`` / ``detector_input``: another student or
    detector size, for a before/after run) and the YOLO-timing proxy pipeline."""
    from okpose.assets import DEFAULT_DETECTOR_MODEL
    from okpose.detect import DetectorConfig

    det = DetectorConfig(model=str(DEFAULT_DETECTOR_MODEL), input_size=detector_input, threads=threads)
    default = Pipeline(pose, det, threads=threads, video=False)
    fast = None
    if yolo_detect is not None:
        proxy = ProxyDetector(YoloOnnxDetector(yolo_detect, 320, 0.35, "auto", threads))
        fast = (Pipeline(default.pose, proxy, video=False), proxy)
    return default.pose, default, fast


def tracker_cost(people: int = 10, frames: int = 300) -> dict[str, float]:
    """Tracker time per frame with ``people`` persons: real GT poses of a clip, tiled side by side."""
    from bench.baselines import IoUTracker
    from bench.tracking import tiled_gt_poses
    from okpose.track.tracker import PoseFlowTracker

    seq = tiled_gt_poses(people, frames)
    out = {}
    for name, tracker in (("poseflow", PoseFlowTracker()), ("iou", IoUTracker())):
        ts = []
        for i, poses in enumerate(seq):
            t0 = time.perf_counter()
            tracker.update(poses, i)
            ts.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_ms_p50"] = pct(ts[10:], 50)
        out[f"{name}_ms_p95"] = pct(ts[10:], 95)
    return out


def decode_cost(pose: TopDown, persons: int = 3, runs: int = 200) -> float:
    """Heatmap decode (DARK) + inverse affine for ``persons`` crops, ms p50."""
    from okpose.core.topdown import heatmaps_to_image

    w, h = pose.spec.heatmap_wh
    hm = np.random.default_rng(0).random((persons, pose.spec.num_keypoints, h, w)).astype(np.float32)
    mats = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (persons, 1, 1))
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        heatmaps_to_image(hm, mats, pose.spec)
        ts.append((time.perf_counter() - t0) * 1e3)
    return pct(ts, 50)
