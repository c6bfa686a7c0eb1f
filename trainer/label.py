"""``python -m trainer label``: teacher labels for videos and images, as COCO keypoints JSON.

Users adapt the student to their own cameras without hand labels. Per frame:
1. person boxes from the shipped NanoDet detector (fp32, 416 long side: labelling is offline);
2. MoveNet Thunder (``make teachers``) on a square crop of 1.25x the box's long side, once as is
   and once mirrored; a keypoint is kept where both are confident (>= ``min_score``) and agree
   within ``agree`` x the box's long side, at the mean of the two;
3. persons with fewer than ``min_keypoints`` kept become ignore regions (``ignore: 1``,
   ``num_keypoints: 0``, skipped by training and by COCOeval), like realpose-lab's;
4. videos: ``track_id`` from the service's PoseFlow tracker.
Frames are saved with their long side at ``max_side`` (coordinates in saved pixels); the JSON
is what ``trainer`` reads (``data.root`` = the output folder, ``data.train_ann`` = annotations.json).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from okpose.core.skeleton import COCO17
from okpose.core.types import Poses
from okpose.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, SourceError, media_files, open_source

log = logging.getLogger("trainer.label")
K = COCO17.num_keypoints  # MoveNet's schema
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LabelConfig:
    detector: Path = ROOT / "models" / "nanodet-coco-fp32.onnx"
    detector_input: int = 416
    detector_score: float = 0.3
    teacher: Path = ROOT / "models" / "teachers" / "movenet-thunder.onnx"
    min_score: float = 0.3
    agree: float = 0.05
    min_keypoints: int = 6
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class Teacher:
    """MoveNet single-pose on a square crop, plain and mirrored."""

    def __init__(self, path: Path, threads: int = 1):
        from okpose.core.runtime import open_session

        if not path.is_file():
            raise SystemExit(f"teacher model {path} missing: run `make teachers` first")
        self.sess = open_session(path, "cpu", threads)
        self.name = self.sess.get_inputs()[0].name
        self.side = int(self.sess.get_inputs()[0].shape[1])
        self.perm = COCO17.flip_index()

    def _crop(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB int32 square crop (S, S, 3) of 1.25x the box's long side, and the crop -> image affine (2, 3)."""
        x1, y1, x2, y2 = box_xyxy
        side = self.side
        s = side / (1.25 * max(x2 - x1, y2 - y1, 1.0))
        m = np.array([[s, 0, side / 2 - s * (x1 + x2) / 2], [0, s, side / 2 - s * (y1 + y2) / 2]], np.float32)
        crop = cv2.warpAffine(image_bgr, m, (side, side), flags=cv2.INTER_LINEAR)[:, :, ::-1]
        return crop.astype(np.int32), cv2.invertAffineTransform(m)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        """(K, 3) as (y, x, score), y and x in [0, 1] of the crop."""
        return np.asarray(self.sess.run(None, {self.name: crop[None]})[0][0, 0])

    @staticmethod
    def _to_image(x: np.ndarray, y: np.ndarray, score: np.ndarray, inv: np.ndarray) -> np.ndarray:
        pts = np.stack([x, y, np.ones_like(x)], 1) @ inv.T
        return np.concatenate([pts, score[:, None]], 1).astype(np.float32)

    def plain(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
        """Keypoints (K, 3) in image pixels from the plain crop only."""
        crop, inv = self._crop(image_bgr, box_xyxy)
        yxs = self._run(crop)
        return self._to_image(yxs[:, 1] * self.side, yxs[:, 0] * self.side, yxs[:, 2], inv)

    def __call__(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (K, 3) in image pixels from the plain and the mirrored crop."""
        crop, inv = self._crop(image_bgr, box_xyxy)
        side = self.side
        plain = self._run(crop)
        mirrored = self._run(np.ascontiguousarray(crop[:, ::-1]))[self.perm]  # its "left" joints are our right ones
        return (
            self._to_image(plain[:, 1] * side, plain[:, 0] * side, plain[:, 2], inv),
            self._to_image(side - mirrored[:, 1] * side, mirrored[:, 0] * side, mirrored[:, 2], inv),  # undo the mirror
        )


def agree(a: np.ndarray, b: np.ndarray, box_xyxy: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    """(K, 3) COCO keypoints x, y, v (v = 2 kept, 0 dropped) from two teacher views."""
    size = max(box_xyxy[2] - box_xyxy[0], box_xyxy[3] - box_xyxy[1], 1.0)
    close = np.linalg.norm(a[:, :2] - b[:, :2], axis=1) <= cfg.agree * size
    sure = (a[:, 2] >= cfg.min_score) & (b[:, 2] >= cfg.min_score)
    keep = close & sure
    out = np.zeros((K, 3), np.float32)
    out[keep, :2] = (a[keep, :2] + b[keep, :2]) / 2
    out[keep, 2] = 2
    return out


def frames_of(inputs: list[Path], every: int, frames: int = 0):  # noqa: ANN201 - generator of (source, index, image)
    """(file, frame index or -1 for an image, image) for each input — a video, an image or a folder of them
    (``okpose.sources.media_files``) — each video read on its own (``every``-th frame; ``frames`` > 0: only its
    first ``frames`` frames), so that every video gets its own tracker."""
    for p in inputs:
        try:
            files = media_files(p) if p.is_dir() else [p]
            for f in files:
                if f.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                    raise SourceError(f"{f}: not a video, image or folder")
                video = f.suffix.lower() in VIDEO_SUFFIXES
                limit = -(-frames // every) if frames and video else 0
                for fr in open_source(f, every=every if video else 1, max_frames=limit).frames():
                    yield f, fr.index if video else -1, fr.image
        except SourceError as e:
            raise SystemExit(str(e)) from None


def label(
    inputs: list[Path],
    out: Path,
    every: int = 1,
    max_side: int = 800,
    cfg: LabelConfig | None = None,
    frames: int = 0,
) -> dict:
    from okpose.detect.nanodet import NanoDetDetector
    from okpose.track.tracker import PoseFlowTracker

    cfg = cfg or LabelConfig()
    det = NanoDetDetector(cfg.detector, cfg.detector_score, input_size=cfg.detector_input, threads=1)
    teacher = Teacher(cfg.teacher)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    trackers: dict[Path, PoseFlowTracker] = {}
    for src, idx, img in frames_of(inputs, every, frames):
        cfg.count("frames")
        r = min(1.0, max_side / max(img.shape[:2]))
        small = cv2.resize(img, (round(img.shape[1] * r), round(img.shape[0] * r))) if r < 1 else img
        name = f"{src.stem}_f{idx:05d}.jpg" if idx >= 0 else f"{src.stem}.jpg"
        cv2.imwrite(str(out / "images" / name), small, [cv2.IMWRITE_JPEG_QUALITY, 90])
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": name,
                "width": small.shape[1],
                "height": small.shape[0],
                "source": str(src.name),
                "frame_index": idx,
            }
        )
        boxes = det(small)
        cfg.count("persons_detected", len(boxes))
        kps_all = []
        for box in boxes.xyxy:
            kps_all.append(agree(*teacher(small, box), box, cfg))
        kps = np.asarray(kps_all, np.float32).reshape(-1, K, 3)
        ids = np.full(len(kps), -1)
        if idx >= 0 and len(kps):
            tr = trackers.setdefault(src, PoseFlowTracker())
            scored = kps.copy()
            scored[..., 2] = scored[..., 2] / 2
            tracked = tr.update(Poses(scored, boxes.xyxy, boxes.scores), idx)
            ids = _match_ids(boxes.xyxy, tracked.poses.boxes, tracked.track_ids)
        for box, kp, tid in zip(boxes.xyxy, kps, ids, strict=True):
            n = int((kp[:, 2] > 0).sum())
            cfg.count("keypoints_kept", n)
            x1, y1, x2, y2 = (float(v) for v in box)
            ok = n >= cfg.min_keypoints
            cfg.count("persons_labelled" if ok else "persons_ignored")
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "ignore": int(not ok),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "num_keypoints": n if ok else 0,
                    "keypoints": (kp if ok else np.zeros_like(kp)).reshape(-1).round(2).tolist(),
                    "track_id": int(tid),
                }
            )
    cfg.count("keypoints_possible", K * cfg.counts.get("persons_detected", 0))
    coco = {
        "images": images,
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "keypoints": list(COCO17.keypoints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO17.limbs],
            }
        ],
        "info": {
            "labeller": "trainer.label",
            "detector": cfg.detector.name,
            "teacher": cfg.teacher.name,
            "filters": {"min_score": cfg.min_score, "agree": cfg.agree, "min_keypoints": cfg.min_keypoints},
            "counts": cfg.counts,
        },
    }
    (out / "annotations.json").write_text(json.dumps(coco))
    log.info("labelled %s", cfg.counts)
    return {"out": str(out), **cfg.counts}


def _match_ids(boxes: np.ndarray, tracked_boxes: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
    """Track id of each input box (the tracked output box it overlaps most; -1 if none)."""
    from okpose.core.oks import box_iou

    ids = np.full(len(boxes), -1)
    if len(boxes) and len(tracked_boxes):
        iou = box_iou(boxes, tracked_boxes)
        best = iou.argmax(1)
        ok = iou[np.arange(len(boxes)), best] > 0.5
        ids[ok] = np.asarray(track_ids)[best[ok]]
    return ids
