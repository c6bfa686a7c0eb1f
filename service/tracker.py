"""PoseFlow-style online tracker (Xiu et al., BMVC 2018), one instance per stream.

Each frame: (1) pose-flow NMS removes duplicate poses of one person; (2) every open track (seen in
the last ``max_age`` frames) is moved to the current frame by a constant-velocity model; (3) the
association score mixes box IoU and PoseFlow's keypoint-box similarity (IoU of small boxes around
each keypoint, averaged over the ``top_n`` most similar keypoints); (4) Hungarian assignment with a
minimum score; (5) matched tracks update (velocity, optional One-Euro smoothing), unmatched poses
open new tracks, tracks unseen for more than ``max_age`` frames end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from posecore.oks import box_iou, pose_nms
from posecore.types import Poses, TrackedPoses

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackerConfig:
    max_age: int = 30  # L: frames a track stays open without a match (PoseFlow: 100 at its frame rate)
    top_n: int = 7  # n most similar keypoints in the pose similarity
    kp_box_frac: float = 0.1  # keypoint box half-size as a fraction of sqrt(person box area) (PoseFlow: 30 px)
    box_weight: float = 0.5  # score = w * box IoU + (1 - w) * pose similarity
    match_threshold: float = 0.2  # PoseFlow accepts matches scoring above 0.2
    nms_oks: float = 0.7
    kp_threshold: float = 0.2
    velocity_momentum: float = 0.5
    smoothing: bool = True
    smooth_min_cutoff: float = 1.0  # One-Euro (Hz)
    smooth_beta: float = 0.05
    smooth_d_cutoff: float = 1.0
    fps: float = 30.0  # frame index -> seconds for the One-Euro filter


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) over an array of values, vectorised."""

    def __init__(self, x: F64, min_cutoff: float, beta: float, d_cutoff: float):
        self.x, self.dx = x.copy(), np.zeros_like(x)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff

    @staticmethod
    def _alpha(cutoff: F64 | float, dt: float) -> F64:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return np.asarray(1.0 / (1.0 + tau / dt), dtype=np.float64)

    def __call__(self, x: F64, dt: float) -> F64:
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + self._alpha(cutoff, dt) * (x - self.x)
        return self.x.copy()


@dataclass
class Track:
    track_id: int
    keypoints: F64  # (K, 3) last raw observation
    box: F64  # (4,)
    last_frame: int
    velocity: F64 = field(default_factory=lambda: np.zeros(2))  # px / frame of the box centre
    hits: int = 1
    filter: OneEuro | None = None

    def predicted(self, frame: int) -> tuple[F64, F64]:
        """Box and keypoints moved to ``frame`` at constant velocity."""
        shift = self.velocity * (frame - self.last_frame)
        kps = self.keypoints.copy()
        kps[:, :2] += shift
        return self.box + np.tile(shift, 2), kps


def keypoint_similarity(a: F64, b: F64, radius_a: float, top_n: int, thr: float) -> float:
    """PoseFlow pose similarity: mean IoU of ±r boxes around corresponding keypoints, top-n best.

    a, b: (K, 3). Keypoints below ``thr`` in either pose score 0.
    """
    side = 2.0 * radius_a
    d = np.abs(a[:, :2] - b[:, :2])
    inter = np.clip(side - d[:, 0], 0, None) * np.clip(side - d[:, 1], 0, None)
    iou = inter / (2 * side * side - inter)
    iou = np.where((a[:, 2] > thr) & (b[:, 2] > thr), iou, 0.0)
    n = min(top_n, len(iou))
    return float(np.sort(iou)[-n:].mean()) if n else 0.0


class PoseFlowTracker:
    """Online pose tracker with its own ID counter (one per stream; IDs start at 1)."""

    def __init__(self, config: TrackerConfig | None = None):
        self.cfg = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1

    def _new_track(self, kps: F64, box: F64, frame: int) -> Track:
        c = self.cfg
        filt = OneEuro(kps[:, :2], c.smooth_min_cutoff, c.smooth_beta, c.smooth_d_cutoff) if c.smoothing else None
        t = Track(self._next_id, kps.copy(), box.copy(), frame, filter=filt)
        self._next_id += 1
        return t

    def score_matrix(self, poses: Poses, frame: int) -> F64:
        """Association scores (tracks, poses) in [0, 1]."""
        c = self.cfg
        if not self.tracks or len(poses) == 0:
            return np.zeros((len(self.tracks), len(poses)))
        pred = [t.predicted(frame) for t in self.tracks]
        pboxes = np.stack([p[0] for p in pred])
        ious = box_iou(pboxes, poses.boxes)
        kps = poses.keypoints.astype(np.float64)
        sims = np.zeros_like(ious)
        for i, (box, tk) in enumerate(pred):
            r = c.kp_box_frac * math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))
            for j in range(len(poses)):
                if ious[i, j] > 0 or c.box_weight == 0:
                    sims[i, j] = keypoint_similarity(tk, kps[j], r, c.top_n, c.kp_threshold)
        return np.asarray(c.box_weight * ious + (1 - c.box_weight) * sims, dtype=np.float64)

    def update(self, poses: Poses, frame: int | None = None) -> TrackedPoses:
        """Assign track ids to this frame's poses (frame indices must increase)."""
        c = self.cfg
        frame = self._frame + 1 if frame is None else frame
        dt_frames = max(1, frame - self._frame) if self._frame >= 0 else 1
        self._frame = frame
        # 1. pose-flow NMS
        if len(poses) > 1:
            areas = np.prod(np.clip(poses.boxes[:, 2:] - poses.boxes[:, :2], 1, None), axis=1)
            keep = np.sort(pose_nms(poses.keypoints, poses.scores, areas, c.nms_oks))
            poses = poses.subset(keep)
        # 2-4. predicted tracks vs poses, Hungarian with a floor
        scores = self.score_matrix(poses, frame)
        ids = np.zeros(len(poses), np.int64)
        out_kps = poses.keypoints.astype(np.float64).copy()
        matched: set[int] = set()
        if scores.size:
            rows, cols = linear_sum_assignment(-scores)
            for r, j in zip(rows, cols, strict=True):
                if scores[r, j] <= c.match_threshold:
                    continue
                t = self.tracks[r]
                # 5a. matched: velocity from the box centre, smoothing of keypoints
                box = poses.boxes[j].astype(np.float64)
                steps = max(1, frame - t.last_frame)
                v = ((box[:2] + box[2:]) - (t.box[:2] + t.box[2:])) / 2 / steps
                t.velocity = c.velocity_momentum * t.velocity + (1 - c.velocity_momentum) * v
                t.keypoints, t.box, t.last_frame, t.hits = out_kps[j].copy(), box, frame, t.hits + 1
                if t.filter is not None:
                    out_kps[j, :, :2] = t.filter(out_kps[j, :, :2], steps / c.fps)
                ids[j] = t.track_id
                matched.add(j)
        # 5b. new tracks for unmatched poses
        for j in range(len(poses)):
            if j not in matched:
                t = self._new_track(out_kps[j], poses.boxes[j].astype(np.float64), frame)
                self.tracks.append(t)
                ids[j] = t.track_id
        # 5c. end tracks unseen for more than max_age frames
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= c.max_age]
        del dt_frames
        smoothed = Poses(out_kps.astype(np.float32), poses.boxes, poses.scores)
        return TrackedPoses(smoothed, ids)

    def predicted_boxes(self, frame: int, max_missed: int = 1) -> tuple[F64, npt.NDArray[np.int64]]:
        """Boxes (M, 4) of tracks seen within ``max_missed`` frames, moved to ``frame`` (detector-free frames)."""
        live = [t for t in self.tracks if frame - t.last_frame <= max_missed]
        if not live:
            return np.zeros((0, 4)), np.zeros(0, np.int64)
        return np.stack([t.predicted(frame)[0] for t in live]), np.array([t.track_id for t in live], np.int64)
